import {
  evictionWarning,
  fromConfigReply,
  fromInfoReply,
  parseInfo,
  readEvictionSettings,
} from './redis-eviction';

const INFO_MEMORY = [
  '# Memory',
  'used_memory:1016512',
  'used_memory_human:992.69K',
  'maxmemory:104857600',
  'maxmemory_human:100.00M',
  'maxmemory_policy:allkeys-lru',
  '',
].join('\r\n');

describe('Redis eviction settings', () => {
  it('parses INFO fields and skips section headers', () => {
    expect(parseInfo(INFO_MEMORY)).toMatchObject({
      maxmemory: '104857600',
      maxmemory_policy: 'allkeys-lru',
    });
    expect(parseInfo(INFO_MEMORY)['# Memory']).toBeUndefined();
  });

  it('reads the policy and the limit from a CONFIG GET maxmemory* reply', () => {
    const reply = ['maxmemory', '0', 'maxmemory-policy', 'noeviction', 'maxmemory-samples', '5'];
    expect(fromConfigReply(reply)).toEqual({
      policy: 'noeviction',
      maxmemory: 0,
      source: 'config',
    });
    expect(fromConfigReply([])).toBeUndefined();
  });

  it('reads them from INFO memory', () => {
    expect(fromInfoReply(INFO_MEMORY)).toEqual({
      policy: 'allkeys-lru',
      maxmemory: 104857600,
      source: 'info',
    });
    expect(fromInfoReply('# Memory\r\nused_memory:1\r\n')).toBeUndefined();
  });

  it('falls back to INFO when CONFIG is renamed or forbidden', async () => {
    const redis = {
      config: () => Promise.reject(new Error("ERR unknown command 'CONFIG'")),
      info: () => Promise.resolve(INFO_MEMORY),
    };
    await expect(readEvictionSettings(redis as never)).resolves.toMatchObject({
      policy: 'allkeys-lru',
      source: 'info',
    });
  });

  it.each([
    ['noeviction with a limit', { policy: 'noeviction', maxmemory: 1024 }, false],
    ['an evicting policy without a limit', { policy: 'allkeys-lru', maxmemory: 0 }, false],
    ['allkeys-lru with a limit', { policy: 'allkeys-lru', maxmemory: 104857600 }, true],
    ['volatile-ttl with a limit', { policy: 'volatile-ttl', maxmemory: 1 }, true],
  ])('decides whether to warn for %s', (_name, settings, warns) => {
    const warning = evictionWarning({ ...settings, source: 'config' });
    expect(warning !== undefined).toBe(warns);
  });

  it('names the policy, the limit and the fix', () => {
    expect(
      evictionWarning({ policy: 'allkeys-lru', maxmemory: 104857600, source: 'info' }),
    ).toMatch(/allkeys-lru with maxmemory 100 MiB.*maxmemory-policy noeviction/);
  });

  it('does not warn when the settings could not be read', () => {
    expect(evictionWarning(undefined)).toBeUndefined();
  });
});
