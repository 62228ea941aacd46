import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import type { AppConfig } from '../config';
import type { OidcClient } from './oidc-client';
import { TokenVerifier, VERIFIED_TOKEN_TTL_MS } from './token-verifier';

const AUDIENCE = 'labgate-api';

/** A provider's key set served over real HTTP on loopback, as the verifier fetches it. */
async function jwksServer(): Promise<{
  server: Server;
  issuer: string;
  sign: (claims: Record<string, unknown>, expiresAt: number) => Promise<string>;
}> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sign = (claims: Record<string, unknown>, expiresAt: number) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('someone')
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(privateKey);
  return { server, issuer, sign };
}

describe(TokenVerifier.name, () => {
  let provider: Awaited<ReturnType<typeof jwksServer>>;
  let verifier: TokenVerifier;

  beforeAll(async () => {
    provider = await jwksServer();
  });
  afterAll(() => new Promise((resolve) => provider.server.close(resolve)));

  beforeEach(() => {
    // Only the clock is ours: timers, promises and sockets stay real.
    jest.useFakeTimers({
      now: Date.now(),
      doNotFake: [
        'nextTick',
        'setImmediate',
        'queueMicrotask',
        'setTimeout',
        'setInterval',
        'clearTimeout',
        'clearInterval',
        'performance',
        'hrtime',
      ],
    });
    verifier = new TokenVerifier(
      {
        metadata: { issuer: provider.issuer, jwks_uri: `${provider.issuer}/jwks` },
      } as unknown as OidcClient,
      { oidc: { audience: AUDIENCE, clockSkewSeconds: 5 } } as unknown as AppConfig,
    );
  });
  afterEach(() => jest.useRealTimers());

  it('takes a token it verified again, and refuses it once it expires (skew included)', async () => {
    const token = await provider.sign({ n: 1 }, Date.now() + 10_000);
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'someone', n: 1 });
    jest.setSystemTime(Date.now() + 14_000); // expired 4 s ago: within the skew
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'someone' });
    jest.setSystemTime(Date.now() + 2_000); // 6 s past exp
    await expect(verifier.verify(token)).rejects.toThrow(/exp/);
  });

  it('checks a token again once a verification is a minute old', async () => {
    const token = await provider.sign({}, Date.now() + 10 * 60_000);
    await verifier.verify(token);
    // A verifier that has seen the token refuses it, like one that has not, after a minute
    // when the provider's key set no longer verifies it (here: the issuer no longer matches).
    (verifier as unknown as { oidc: { metadata: { issuer: string } } }).oidc.metadata.issuer =
      'https://elsewhere.example';
    jest.setSystemTime(Date.now() + VERIFIED_TOKEN_TTL_MS - 1_000);
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'someone' });
    jest.setSystemTime(Date.now() + 2_000);
    await expect(verifier.verify(token)).rejects.toThrow(/iss/);
  });

  it('never answers for a token by one it verified before (a changed signature is refused)', async () => {
    const token = await provider.sign({}, Date.now() + 60_000);
    await verifier.verify(token);
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    await expect(verifier.verify(tampered)).rejects.toThrow(/signature/);
    const otherPayload = Buffer.from(JSON.stringify({ sub: 'admin', aud: AUDIENCE })).toString(
      'base64url',
    );
    await expect(verifier.verify(`${header}.${otherPayload}.${signature}`)).rejects.toThrow(
      /signature/,
    );
  });
});
