import { MailDeliveryError, messageIdLeft, toMailDeliveryError } from './mailer';

describe(messageIdLeft.name, () => {
  it('keeps letters, digits, - and _ and encodes everything else', () => {
    expect(messageIdLeft('3f2a-9c_1')).toBe('labgate.3f2a-9c_1');
    expect(messageIdLeft('delivery:1')).toBe('labgate.delivery=3A1');
    expect(messageIdLeft('../../etc/passwd')).toBe('labgate.=2E=2E=2F=2E=2E=2Fetc=2Fpasswd');
    expect(messageIdLeft('<a@b>')).toBe('labgate.=3Ca=40b=3E');
  });

  it('gives different ids for keys that differ only in punctuation', () => {
    const ids = ['a:b', 'a-b', 'a_b', 'a/b', 'a=b', 'a=3Ab'].map(messageIdLeft);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is the same for the same key (retries keep their Message-ID)', () => {
    expect(messageIdLeft('ünïcode key')).toBe(messageIdLeft('ünïcode key'));
    expect(messageIdLeft('ünïcode key')).toMatch(/^[A-Za-z0-9_=.-]+$/);
  });

  it('refuses an empty key', () => {
    expect(() => messageIdLeft('')).toThrow(/needs a messageId/);
  });

  it('hashes long keys into a short id', () => {
    const id = messageIdLeft('x'.repeat(500));
    expect(id).toMatch(/^labgate\+sha256-[0-9a-f]{64}$/);
    expect(messageIdLeft('y'.repeat(500))).not.toBe(id);
  });
});

describe(toMailDeliveryError.name, () => {
  it.each([
    [{ code: 'ECONNECTION', message: 'connect ECONNREFUSED' }, false],
    [{ code: 'ETIMEDOUT', message: 'Greeting never received' }, false],
    [{ code: 'EMESSAGE', responseCode: 451, message: '451 Try again later' }, false],
    [{ code: 'EENVELOPE', responseCode: 452, message: '452 Mailbox full' }, false],
    [{ code: 'EMESSAGE', responseCode: 421, message: '421 Closing' }, false],
    [{ code: 'EMESSAGE', responseCode: 550, message: '550 Rejected' }, true],
    [{ code: 'EENVELOPE', responseCode: 553, message: '553 Bad mailbox' }, true],
    [{ code: 'EAUTH', responseCode: 535, message: '535 Invalid login' }, true],
    [{ code: 'EENVELOPE', message: 'No recipients defined' }, true],
    [new Error('socket hang up'), false],
  ])('classifies %p as permanent: %p', (err, permanent) => {
    const error = toMailDeliveryError(err);
    expect(error).toBeInstanceOf(MailDeliveryError);
    expect(error.permanent).toBe(permanent);
    expect(error.message).toContain((err as Error).message);
  });

  it('keeps the SMTP reply code and the cause', () => {
    const cause = { code: 'EMESSAGE', responseCode: 550, message: '550 Rejected' };
    const error = toMailDeliveryError(cause);
    expect(error).toMatchObject({ responseCode: 550, code: 'EMESSAGE', cause });
  });
});
