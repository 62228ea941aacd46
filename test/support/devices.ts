import type { SshSettings } from '../../src/devices/device.entity';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import request from 'supertest';
import { bearer, mintAccessToken } from './auth';
import type { TestEnvironment } from './test-app';

/** Entitlements that make a caller admin or operator; merge into `startTestApp`'s env. */
export const ROLE_ENV = {
  ADMIN_ENTITLEMENTS: 'urn:mace:labgate.test:role=admin',
  OPERATOR_ENTITLEMENTS: 'urn:mace:labgate.test:role=operator',
};

export type Headers = Record<string, string>;

export interface RoleHeaders {
  admin: Headers;
  operator: Headers;
  /** Two plain users, e.g. for "another user's job". */
  user: Headers;
  other: Headers;
}

/** Bearer headers of four distinct users (own `sub`), valid for an hour. */
export async function roleHeaders(env: TestEnvironment): Promise<RoleHeaders> {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const mint = async (sub: string, entitlements: string[]) =>
    bearer(
      await mintAccessToken(env, {
        sub,
        exp,
        email: `${sub}@labgate.test`,
        name: sub,
        [env.config.auth.entitlementClaim]: entitlements,
      }),
    );
  return {
    admin: await mint('test-admin', [ROLE_ENV.ADMIN_ENTITLEMENTS]),
    operator: await mint('test-operator', [ROLE_ENV.OPERATOR_ENTITLEMENTS]),
    user: await mint('test-user', ['urn:mace:labgate.test:member']),
    other: await mint('test-other', ['urn:mace:labgate.test:member']),
  };
}

export interface DeviceOverrides {
  name: string;
  kind: string;
  runner: string;
  services: string[];
  slots: number;
  location: string;
  labels: Record<string, string>;
  ssh: Partial<SshSettings> | Record<string, unknown>;
}

/**
 * Registers a device (an agent workstation offering every service unless overridden).
 * `body` is the 201 answer: the device and its token.
 */
export async function createDevice(
  http: Server,
  admin: Headers,
  overrides: Partial<DeviceOverrides> = {},
) {
  const res = await request(http)
    .post('/api/v1/devices')
    .set(admin)
    .send({
      name: `device-${randomBytes(5).toString('hex')}`,
      kind: 'workstation',
      runner: 'agent',
      services: ['*'],
      slots: 1,
      ...overrides,
    });
  if (res.status !== 201) {
    throw new Error(`POST /api/v1/devices: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return { id: res.body.id as string, token: res.body.token as string, body: res.body };
}

export function deviceHeaders(token: string): Headers {
  return { Authorization: `Bearer ${token}` };
}

/** One heartbeat of the device's agent; returns the reply (commands, heartbeatSeconds). */
export async function heartbeat(http: Server, token: string, body: Record<string, unknown> = {}) {
  const res = await request(http)
    .post('/api/v1/agent/heartbeat')
    .set(deviceHeaders(token))
    .send(body);
  if (res.status !== 200) {
    throw new Error(`POST /api/v1/agent/heartbeat: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}
