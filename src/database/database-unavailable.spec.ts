import { DriverException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { isDatabaseUnavailable, whenDatabaseIsBack } from './database-unavailable';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe(isDatabaseUnavailable.name, () => {
  it.each([
    ['nothing listens', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    [
      'the server is stopping',
      withCode('terminating connection due to administrator command', '57P01'),
    ],
    ['the server is starting', withCode('the database system is starting up', '57P03')],
    ['no connection slot', withCode('sorry, too many clients already', '53300')],
    ['a connection exception (class 08)', withCode('connection failure', '08006')],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    [
      'a full pool',
      Object.assign(new Error('Timeout acquiring a connection'), { name: 'KnexTimeoutError' }),
    ],
    [
      'one wrapped by MikroORM',
      new DriverException(withCode('connect ECONNREFUSED', 'ECONNREFUSED')),
    ],
    ['one kept as the cause', new Error('query failed', { cause: withCode('x', '57P01') })],
    [
      'a statement of a transaction whose BEGIN met a broken connection (knex)',
      new DriverException(
        new Error('Transaction query already complete, run with DEBUG=knex:tx for more info'),
      ),
    ],
  ])('says yes for %s', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    [
      'a constraint violation',
      new UniqueConstraintViolationException(withCode('duplicate key', '23505')),
    ],
    ['a syntax error', withCode('syntax error at or near "selec"', '42601')],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['not an error', 'ECONNREFUSED'],
  ])('says no for %s', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
  });
});

describe(whenDatabaseIsBack.name, () => {
  it('runs the work again while the database is unavailable, and warns once', async () => {
    let calls = 0;
    const warnings: string[] = [];
    const result = await whenDatabaseIsBack(
      () => {
        calls++;
        return calls < 3
          ? Promise.reject(withCode('connect ECONNREFUSED', 'ECONNREFUSED'))
          : Promise.resolve('recorded');
      },
      (err) => warnings.push(err.message),
    );
    expect(result).toBe('recorded');
    expect(calls).toBe(3);
    expect(warnings).toEqual(['connect ECONNREFUSED']);
  });

  it('passes any other error on at once', async () => {
    let calls = 0;
    const work = () => {
      calls++;
      return Promise.reject(new Error('a bug'));
    };
    await expect(whenDatabaseIsBack(work, () => {})).rejects.toThrow('a bug');
    expect(calls).toBe(1);
  });

  it('gives up once the wait would pass its limit', async () => {
    const down = withCode('connect ECONNREFUSED', 'ECONNREFUSED');
    await expect(
      whenDatabaseIsBack(
        () => Promise.reject(down),
        () => {},
        600,
      ),
    ).rejects.toBe(down);
  });
});
