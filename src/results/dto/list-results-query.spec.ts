import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { flattenValidationErrors } from '../../common/validation';
import { ListResultsQuery } from './result.dto';

/** The query as the global ValidationPipe makes it: transformed, then every rule checked. */
function read(query: Record<string, unknown>) {
  const value = plainToInstance(ListResultsQuery, query);
  const errors = flattenValidationErrors(
    validateSync(value, { whitelist: true, forbidNonWhitelisted: true }),
  );
  return { value, errors };
}

describe(ListResultsQuery.name, () => {
  it("takes a cursor longer than PageQuery's 500 characters, up to 8000", () => {
    expect(read({ cursor: 'c'.repeat(8000) }).errors).toEqual([]);
    expect(read({ cursor: 'c'.repeat(8001) }).errors).toEqual([
      { field: 'cursor', message: 'cursor must be shorter than or equal to 8000 characters' },
    ]);
  });

  it('keeps the rest of the cursor rules of PageQuery', () => {
    expect(read({ cursor: ['a', 'b'] }).errors).toContainEqual({
      field: 'cursor',
      message: 'cursor must be a string',
    });
    expect(read({ cursor: undefined }).errors).toEqual([]);
  });

  it("inherits PageQuery's limit: 50 by default, a whole number from 1 to 200", () => {
    expect(read({}).value.limit).toBe(50);
    expect(read({ limit: '20' }).value.limit).toBe(20);
    expect(read({ limit: '0' }).errors).toEqual([
      { field: 'limit', message: 'limit must not be less than 1' },
    ]);
    expect(read({ limit: '2.5' }).errors).toEqual([
      { field: 'limit', message: 'limit must be an integer number' },
    ]);
  });
});
