import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fillCommand,
  isSafeSegment,
  jobScript,
  parseClusterState,
  parseExternalId,
  shellQuote,
} from './ssh-script';

const HOSTILE = [
  "it's",
  "'; touch /tmp/pwned; '",
  '$(touch /tmp/pwned)',
  '`touch /tmp/pwned`',
  '${HOME}',
  'two words',
  'line one\nline two',
  '"double" \\back',
  '',
  '*',
  '-n',
  "''''",
];

/** What `sh` makes of a word: printed back by printf, one per line with a delimiter. */
function throughSh(words: string[]): string[] {
  const script = `for a in ${words.map(shellQuote).join(' ')}; do printf '%s\\0' "$a"; done`;
  const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe(shellQuote.name, () => {
  it('makes every hostile argument one literal word for sh', () => {
    expect(throughSh(HOSTILE)).toEqual(HOSTILE);
  });

  it('escapes a single quote by closing, escaping and reopening', () => {
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });

  it('refuses a NUL byte, which no argv can carry', () => {
    expect(() => shellQuote('a\0b')).toThrow('NUL');
  });
});

describe(fillCommand.name, () => {
  it('replaces each placeholder with one quoted word and leaves the template alone', () => {
    expect(fillCommand('sbatch --parsable {script}', { script: "/w/it's/job.sh" })).toBe(
      `sbatch --parsable '/w/it'\\''s/job.sh'`,
    );
    expect(fillCommand('scancel {id} {other}', { id: '12$(x)' })).toBe(`scancel '12$(x)' {other}`);
  });
});

describe(jobScript.name, () => {
  let dir: string;

  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'labgate-ssh-script-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const runScript = (argv: string[], env: Record<string, string> = {}, timeoutSeconds = 30) => {
    writeFileSync(join(dir, 'job.sh'), jobScript({ jobDir: dir, argv, env, timeoutSeconds }));
    try {
      execFileSync('/bin/sh', [join(dir, 'job.sh')], { cwd: tmpdir(), stdio: 'ignore' });
      return 0;
    } catch (err) {
      return (err as { status: number }).status;
    }
  };
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');

  it('runs the argv with hostile arguments and values passed literally', () => {
    const code = runScript(
      [
        process.execPath,
        '-e',
        'console.log(JSON.stringify([process.argv.slice(1), process.env.V]))',
        ...HOSTILE,
      ],
      { V: HOSTILE.join('|') },
    );

    expect(code).toBe(0);
    expect(JSON.parse(read('log.txt'))).toEqual([HOSTILE, HOSTILE.join('|')]);
    expect(read('exit_code')).toBe('0\n');
  });

  it('runs in the job folder, makes outputs/ and exits with the exit code it records', () => {
    const code = runScript(['sh', '-c', 'pwd; ls -d outputs; echo oops >&2; exit 7']);

    expect(code).toBe(7);
    expect(read('exit_code')).toBe('7\n');
    expect(read('log.txt')).toBe(`${dir}\noutputs\noops\n`);
  });

  it('marks a run that the time limit ended', () => {
    const code = runScript(['sleep', '5'], {}, 1);

    expect(code).toBe(124);
    expect(read('timed_out')).toBe('');
  });

  it('refuses an environment name that is not one', () => {
    expect(() =>
      jobScript({ jobDir: '/x', argv: ['a'], env: { 'A;B': '1' }, timeoutSeconds: 1 }),
    ).toThrow('not an environment variable name');
  });
});

describe(parseExternalId.name, () => {
  it.each([
    ['12345\n', '12345'],
    ['12345;cluster\n', '12345'],
    ['\n  678 extra words\n', '678'],
    ['Welcome to the cluster\n91011\n', '91011'],
    ['', undefined],
    ['  \n', undefined],
    [';cluster', undefined],
  ])('reads %j as %j', (stdout, id) => {
    expect(parseExternalId(stdout)).toBe(id);
  });
});

describe(parseClusterState.name, () => {
  it.each([
    ['RUNNING\n', 'RUNNING'],
    ['\ncompleted\n', 'COMPLETED'],
    ['CANCELLED+\n', 'CANCELLED'],
    ['CANCELLED by 1000\n', 'CANCELLED'],
    ['', ''],
  ])('reads %j as %j', (stdout, state) => {
    expect(parseClusterState(stdout)).toBe(state);
  });
});

describe(isSafeSegment.name, () => {
  it('accepts a job id and refuses anything that walks the path', () => {
    expect(isSafeSegment('0b9c-uuid_1.2')).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', '../x', 'a b', "a'b"]) {
      expect(isSafeSegment(bad)).toBe(false);
    }
  });
});
