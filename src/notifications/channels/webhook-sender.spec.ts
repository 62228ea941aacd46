import { LookupAddress } from 'node:dns';
import { checkWebhookTarget, checkWebhookUrl } from './webhook-sender';

function staticDns(table: Record<string, string[]>) {
  return (hostname: string): Promise<LookupAddress[]> => {
    const addresses = table[hostname];
    if (!addresses) {
      return Promise.reject(
        Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }),
      );
    }
    return Promise.resolve(
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

describe(checkWebhookUrl.name, () => {
  it.each([
    ['http://127.0.0.1/hook', /must use https:, not http:/],
    ['file:///etc/passwd', /must use https:, not file:/],
    ['ftp://hooks.example.org/', /must use https:/],
    ['javascript:alert(1)', /must use https:/],
    ['not a url', /not a valid URL/],
    ['https://user:secret@hooks.example.org/', /credentials/],
    ['https://user@hooks.example.org/', /credentials/],
    ['https://127.0.0.1/hook', /127\.0\.0\.1, a loopback address/],
    ['https://localhost/hook', /localhost resolves to .*, a loopback address/],
    ['https://[::1]/hook', /::1, a loopback address/],
    ['https://[::ffff:127.0.0.1]/hook', /::ffff:7f00:1, a loopback address/],
    ['https://10.0.0.1/', /10\.0\.0\.1, a private address/],
    ['https://192.168.0.10/', /a private address/],
    ['https://169.254.169.254/latest/meta-data/', /a link-local address/],
    ['https://100.64.1.1/', /a shared \(CGNAT\) address/],
    ['https://0.0.0.0/', /an? unspecified address/],
    ['https://[fd00::1]/', /a unique-local address/],
    ['https://0x7f.1/', /127\.0\.0\.1, a loopback address/],
    ['https://2130706433/', /127\.0\.0\.1, a loopback address/],
  ])('refuses %s', async (url, reason) => {
    expect(await checkWebhookUrl(url, false)).toMatch(reason);
  });

  it('allows https to a public address', async () => {
    expect(await checkWebhookUrl('https://93.184.216.34/hook', false)).toBeUndefined();
    expect(await checkWebhookUrl('https://[2606:4700::1111]:8443/hook', false)).toBeUndefined();
  });

  it('refuses a host when ANY of its addresses is internal', async () => {
    const dns = staticDns({ 'hooks.example.org': ['93.184.216.34', '10.1.2.3'] });
    expect(await checkWebhookUrl('https://hooks.example.org/', false, dns)).toBe(
      'hooks.example.org resolves to 10.1.2.3, a private address',
    );
  });

  it('refuses a host that does not resolve, as retryable', async () => {
    const dns = staticDns({});
    expect(await checkWebhookTarget('https://gone.example.org/', false, dns)).toEqual({
      refused: 'cannot resolve gone.example.org (ENOTFOUND)',
      retryable: true,
    });
    expect(await checkWebhookTarget('https://gone.example.org/', true, dns)).toMatchObject({
      retryable: true,
    });
  });

  it('allows http and internal addresses when private targets are allowed', async () => {
    expect(await checkWebhookUrl('http://127.0.0.1:8080/hook', true)).toBeUndefined();
    expect(await checkWebhookUrl('http://localhost/hook', true)).toBeUndefined();
    expect(await checkWebhookUrl('https://10.0.0.1/', true)).toBeUndefined();
    // Still no other schemes and no credentials.
    expect(await checkWebhookUrl('file:///etc/passwd', true)).toMatch(/must use https: or http:/);
    expect(await checkWebhookUrl('http://u:p@127.0.0.1/', true)).toMatch(/credentials/);
  });

  it('gives the checked addresses, for the connection to use', async () => {
    const dns = staticDns({ 'hooks.example.org': ['93.184.216.34'] });
    const target = await checkWebhookTarget('https://hooks.example.org/x', false, dns);
    expect(target.refused).toBeUndefined();
    expect(target).toMatchObject({ addresses: [{ address: '93.184.216.34', family: 4 }] });
  });
});
