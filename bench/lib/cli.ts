/**
 * The flags every bench understands. `bench/run.ts` passes its whole command line to each
 * bench, so a flag is declared once here and every bench accepts (and may ignore) it.
 */
export interface BenchFlags {
  /** Jobs submitted in the queue throughput measurement. */
  jobs: number;
  /** Requests in flight at once from the load client. */
  clientConcurrency: number;
  /** WORKER_CONCURRENCY of the labgate worker and the raw Bull baselines. */
  workerConcurrency: number;
  /** Sequential submissions in the submit→running latency measurement. */
  latencySamples: number;
  /** Size of the streamed upload, MiB. */
  uploadMb: number;
  /** Sections of a bench to run (each bench names its own); empty: all. */
  sections: string[];
  /** run.ts: only these benches (file names without `.ts`); empty: all. */
  only: string[];
  /** run.ts: do not append the figures to bench/RESULTS.md. */
  noRecord: boolean;
}

const DEFAULTS: BenchFlags = {
  jobs: 200,
  clientConcurrency: 16,
  workerConcurrency: 4,
  latencySamples: 30,
  uploadMb: 1024,
  sections: [],
  only: [],
  noRecord: false,
};

type Kind = 'int' | 'list' | 'bool';

const FLAGS: Record<string, { key: keyof BenchFlags; kind: Kind; help: string }> = {
  '--jobs': { key: 'jobs', kind: 'int', help: 'echo jobs in the throughput run (200)' },
  '--client-concurrency': {
    key: 'clientConcurrency',
    kind: 'int',
    help: 'requests in flight from the client (16)',
  },
  '--worker-concurrency': {
    key: 'workerConcurrency',
    kind: 'int',
    help: 'WORKER_CONCURRENCY, also of the raw Bull baselines (4)',
  },
  '--latency-samples': {
    key: 'latencySamples',
    kind: 'int',
    help: 'sequential submissions for submit→running latency (30)',
  },
  '--upload-mb': {
    key: 'uploadMb',
    kind: 'int',
    help: 'size of the streamed upload in MiB (1024)',
  },
  '--sections': {
    key: 'sections',
    kind: 'list',
    help: 'comma-separated sections to run, e.g. throughput,latency,upload (all)',
  },
  '--only': { key: 'only', kind: 'list', help: 'run.ts: comma-separated benches to run (all)' },
  '--no-record': { key: 'noRecord', kind: 'bool', help: 'run.ts: do not write bench/RESULTS.md' },
};

export function usage(): string {
  return [
    'usage: npm run bench -- [flags]',
    ...Object.entries(FLAGS).map(([name, f]) => `  ${name.padEnd(22)} ${f.help}`),
  ].join('\n');
}

/** Parses `--name value`, `--name=value` and boolean `--name`; throws on anything unknown. */
export function parseFlags(argv: string[]): BenchFlags {
  const flags: BenchFlags = { ...DEFAULTS, sections: [], only: [] };
  const out = flags as unknown as Record<string, unknown>;
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s, 2);
    if (name === '--help' || name === '-h') {
      throw new Error(usage());
    }
    const spec = FLAGS[name];
    if (!spec) {
      throw new Error(`unknown argument ${argv[i]}\n${usage()}`);
    }
    if (spec.kind === 'bool') {
      out[spec.key] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) {
      throw new Error(`${name} needs a value\n${usage()}`);
    }
    if (spec.kind === 'int') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1) {
        throw new Error(`${name} must be a positive whole number, not ${value}`);
      }
      out[spec.key] = n;
    } else {
      out[spec.key] = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    }
  }
  return flags;
}

/** Whether a bench should run `section` (every section when --sections is not given). */
export function wants(flags: BenchFlags, section: string): boolean {
  return flags.sections.length === 0 || flags.sections.includes(section);
}
