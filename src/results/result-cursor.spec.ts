import { ProblemException } from '../common/problem';
import { decodeResultCursor, encodeResultCursor } from './result-cursor';

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe(decodeResultCursor.name, () => {
  it('reads back a cursor given out for the same sort', () => {
    const cursor = { sort: '-metrics.sum', value: 3, id: ID };
    expect(decodeResultCursor(encodeResultCursor(cursor), '-metrics.sum')).toEqual(cursor);
  });

  it('names the sort of a cursor from another sort, cut short when it is long (crafted)', () => {
    const sort = `metrics.${'a'.repeat(5000)}`;
    let error: unknown;
    try {
      decodeResultCursor(encodeResultCursor({ sort, value: 1, id: ID }), '-createdAt');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProblemException);
    expect((error as Error).message).toBe(
      `The cursor belongs to sort=${sort.slice(0, 100)}…, not sort=-createdAt.`,
    );
  });
});
