import type { DevicePrincipal, UserPrincipal } from './principal';
import { rateLimitBucket } from './rate-limit';

const user: UserPrincipal = {
  kind: 'user',
  userId: '7d1f5c1e-0000-4000-8000-000000000001',
  issuer: 'https://idp.example.org',
  subject: 'alice',
  entitlements: [],
  roles: ['user'],
  via: 'bearer',
};
const device: DevicePrincipal = {
  kind: 'device',
  deviceId: '7d1f5c1e-0000-4000-8000-000000000002',
  name: 'gpu-1',
};
const limits = { rateLimitUserPerMinute: 1200, rateLimitIpPerMinute: 600 };

describe(rateLimitBucket.name, () => {
  it('counts a signed-in user by user id, whatever the address', () => {
    expect(rateLimitBucket(user, '10.0.0.1', limits)).toEqual({
      key: `user:${user.userId}`,
      limit: 1200,
      who: 'each user',
    });
    expect(rateLimitBucket(user, '10.0.0.2', limits)?.key).toBe(`user:${user.userId}`);
  });

  it('counts a device by device id under the user limit', () => {
    expect(rateLimitBucket(device, '10.0.0.1', limits)).toMatchObject({
      key: `device:${device.deviceId}`,
      limit: 1200,
    });
  });

  it('counts a call without credentials by client address under the IP limit', () => {
    expect(rateLimitBucket(undefined, '192.0.2.7', limits)).toEqual({
      key: 'ip:192.0.2.7',
      limit: 600,
      who: 'each address',
    });
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 address', () => {
    expect(rateLimitBucket(undefined, '::ffff:192.0.2.7', limits)?.key).toBe('ip:192.0.2.7');
  });

  it('counts an IPv6 client by its /64, so that rotating addresses does not escape', () => {
    const a = rateLimitBucket(undefined, '2001:db8:1:2::a', limits)?.key;
    const b = rateLimitBucket(undefined, '2001:db8:1:2:ffff::b', limits)?.key;
    expect(a).toBe('ip:2001:db8:1:2::/64');
    expect(b).toBe(a);
  });

  it('still counts a request whose address is unknown', () => {
    expect(rateLimitBucket(undefined, undefined, limits)?.key).toBe('ip:unknown');
  });

  it('applies no limit where the limit is 0', () => {
    const off = { rateLimitUserPerMinute: 0, rateLimitIpPerMinute: 0 };
    expect(rateLimitBucket(user, '10.0.0.1', off)).toBeUndefined();
    expect(rateLimitBucket(device, '10.0.0.1', off)).toBeUndefined();
    expect(rateLimitBucket(undefined, '10.0.0.1', off)).toBeUndefined();
    expect(rateLimitBucket(undefined, '10.0.0.1', { ...off, rateLimitIpPerMinute: 5 })?.limit).toBe(
      5,
    );
    expect(rateLimitBucket(user, '10.0.0.1', { ...off, rateLimitIpPerMinute: 5 })).toBeUndefined();
  });
});
