import { commandAction, CommandInbox } from './command-inbox';

describe(commandAction.name, () => {
  it('stops the job named by args.jobId', () => {
    expect(commandAction({ id: 'c1', type: 'stop', args: { jobId: 'j1' } })).toEqual({
      kind: 'stop',
      jobId: 'j1',
    });
  });

  it.each([
    ['start', {}, /does not understand "start"/],
    ['restart', {}, /does not understand "restart"/],
    ['custom', { action: 'calibrate' }, /does not understand "custom"/],
    ['reboot', {}, /unknown command type "reboot"/],
    ['stop', {}, /needs args\.jobId/],
    ['stop', { jobId: 42 }, /needs args\.jobId/],
    ['stop', { jobId: '' }, /needs args\.jobId/],
  ])('answers %s %j with ok: false and says why', (type, args, why) => {
    const action = commandAction({ id: 'c1', type, args });
    expect(action).toEqual({ kind: 'refuse', ack: { ok: false, message: expect.any(String) } });
    expect(action.kind === 'refuse' && action.ack.message).toMatch(why);
  });
});

describe(CommandInbox.name, () => {
  it('acts on an id the first time only, however often it is delivered', () => {
    const inbox = new CommandInbox();
    expect(inbox.receive('c1')).toBe('act');
    expect(inbox.receive('c1')).toBe('wait');
    expect(inbox.receive('c1')).toBe('wait');
    inbox.answered('c1', { ok: true, message: 'stopped' });
    expect(inbox.receive('c1')).toEqual({ ok: true, message: 'stopped' });
    expect(inbox.receive('c1')).toEqual({ ok: true, message: 'stopped' });
  });

  it('keeps ids apart', () => {
    const inbox = new CommandInbox();
    expect(inbox.receive('c1')).toBe('act');
    expect(inbox.receive('c2')).toBe('act');
    inbox.answered('c2', { ok: false, message: 'no' });
    expect(inbox.receive('c1')).toBe('wait');
    expect(inbox.receive('c2')).toEqual({ ok: false, message: 'no' });
  });

  it('ignores an answer for an id it never received', () => {
    const inbox = new CommandInbox();
    inbox.answered('c9', { ok: true, message: 'x' });
    expect(inbox.receive('c9')).toBe('act');
  });

  it('forgets the oldest answered ids beyond its capacity, never one still being acted on', () => {
    const inbox = new CommandInbox(3);
    inbox.receive('acting');
    inbox.receive('a');
    inbox.answered('a', { ok: true, message: 'a' });
    inbox.receive('b');
    inbox.answered('b', { ok: true, message: 'b' });
    inbox.receive('c'); // over capacity: 'a' goes, 'acting' stays
    expect(inbox.receive('acting')).toBe('wait');
    expect(inbox.receive('b')).toEqual({ ok: true, message: 'b' });
    expect(inbox.receive('a')).toBe('act');
  });
});
