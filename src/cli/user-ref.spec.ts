import { LOCAL_ISSUER, parseUserRef } from './user-ref';

describe(parseUserRef.name, () => {
  it('reads a UUID as a user id', () => {
    expect(parseUserRef('0F8FAD5B-D9CB-469F-A165-70867728950E')).toEqual({
      kind: 'id',
      id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    });
  });

  it('reads an address as an email', () => {
    expect(parseUserRef('ada@example.org')).toEqual({ kind: 'email', email: 'ada@example.org' });
  });

  it('splits issuer:subject at the last colon, so URLs with ports stay whole', () => {
    expect(parseUserRef('https://login.example.org:8443/realms/lab:4f2a')).toEqual({
      kind: 'identity',
      issuer: 'https://login.example.org:8443/realms/lab',
      subject: '4f2a',
    });
    expect(parseUserRef(`${LOCAL_ISSUER}:admin`)).toEqual({
      kind: 'identity',
      issuer: LOCAL_ISSUER,
      subject: 'admin',
    });
  });

  it.each(['admin', 'urn:x:', ':sub', ''])('refuses %j, naming the accepted forms', (ref) => {
    expect(() => parseUserRef(ref)).toThrow(/user id \(UUID\), an email, or issuer:subject/);
  });
});
