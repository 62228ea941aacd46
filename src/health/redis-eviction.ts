import type { Redis } from 'ioredis';

/** What decides whether Redis may drop keys under memory pressure. */
export interface EvictionSettings {
  policy: string;
  /** Bytes; 0: no limit, so nothing is ever evicted whatever the policy. */
  maxmemory: number;
  /** Where they were read: CONFIG GET, or INFO when CONFIG is renamed or forbidden. */
  source: 'config' | 'info';
}

/** `key:value` lines of an INFO reply. */
export function parseInfo(reply: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of reply.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) {
      fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
    }
  }
  return fields;
}

/** The settings from a CONFIG GET reply (a flat name, value list). */
export function fromConfigReply(reply: string[]): EvictionSettings | undefined {
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2) {
    values.set(reply[i], reply[i + 1]);
  }
  const policy = values.get('maxmemory-policy');
  const maxmemory = Number(values.get('maxmemory'));
  return policy && Number.isFinite(maxmemory) ? { policy, maxmemory, source: 'config' } : undefined;
}

export function fromInfoReply(reply: string): EvictionSettings | undefined {
  const info = parseInfo(reply);
  const maxmemory = Number(info.maxmemory);
  return info.maxmemory_policy && Number.isFinite(maxmemory)
    ? { policy: info.maxmemory_policy, maxmemory, source: 'info' }
    : undefined;
}

/**
 * Reads the eviction settings with CONFIG GET; managed Redis often renames or forbids CONFIG,
 * and INFO memory carries the same two values.
 */
export async function readEvictionSettings(
  redis: Pick<Redis, 'config' | 'info'>,
): Promise<EvictionSettings | undefined> {
  try {
    const reply = (await redis.config('GET', 'maxmemory*')) as string[];
    const settings = fromConfigReply(reply);
    if (settings) {
      return settings;
    }
  } catch {
    // CONFIG renamed (unknown command) or denied by an ACL: INFO below.
  }
  return fromInfoReply(await redis.info('memory'));
}

function mebibytes(bytes: number): string {
  return `${Math.round((bytes / 1024 ** 2) * 10) / 10} MiB`;
}

/**
 * A warning when this Redis would evict keys: a memory limit with any policy but noeviction.
 * Bull keeps queued work in Redis, and an evicted key is a lost job (or a stuck queue).
 */
export function evictionWarning(settings: EvictionSettings | undefined): string | undefined {
  if (!settings || settings.policy === 'noeviction' || settings.maxmemory <= 0) {
    return undefined;
  }
  return (
    `Redis may evict keys: maxmemory-policy is ${settings.policy} with maxmemory ` +
    `${mebibytes(settings.maxmemory)}. Bull needs maxmemory-policy noeviction, or queued ` +
    'work can be lost under memory pressure.'
  );
}
