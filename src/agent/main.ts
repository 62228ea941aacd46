import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadManifests, ManifestError } from '../catalog/manifest-loader';
import type { ServiceManifest } from '../catalog/manifest';
import { Agent } from './agent';
import { AgentClient } from './agent-client';
import { parseAgentOptions, USAGE } from './options';

/**
 * The reference device agent: `npm run agent -- --url … --token …`. A plain Node program (no
 * Nest), so that an enclosure or a cluster node can be attached with a checkout and Node alone.
 * One line per event on stdout; see docs/agent-protocol.md for what it speaks.
 */
function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

function exit(code: number, message?: string): never {
  if (message) {
    process.stderr.write(`labgate-agent: ${message}\n`);
  }
  process.exit(code);
}

function loadServices(dir: string): ServiceManifest[] {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    exit(2, `--services ${dir} is not a directory`);
  }
  try {
    return loadManifests(dir);
  } catch (err) {
    if (err instanceof ManifestError) {
      exit(1, err.message);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const parsed = parseAgentOptions(process.argv.slice(2), process.env, (path) =>
    readFileSync(path, 'utf8'),
  );
  if (parsed.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    exit(0);
  }
  if (parsed.kind === 'error') {
    exit(2, `${parsed.message} (see --help)`);
  }
  const { options } = parsed;
  const services = loadServices(resolve(options.servicesDir));
  try {
    mkdirSync(options.workDir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    exit(2, `--work-dir ${options.workDir} cannot be created (${code})`);
  }
  const agent = new Agent(options, services, new AgentClient(options.url, options.token), log);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      // Programs still running are ended by the next agent start (their pids are recorded).
      exit(1, `${signal} again: quitting without waiting for running jobs`);
    }
    agent.stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const names = services.map((s) => s.key).join(', ') || 'none';
  log(
    `agent started: ${options.url}, services: ${names}, slots: ${options.once ? 1 : options.slots}${options.once ? ' (once)' : ''}`,
  );
  const code = await agent.run();
  log(`agent stopped`);
  exit(code);
}

main().catch((err: unknown) => {
  exit(1, `unexpected error: ${(err as Error)?.stack ?? String(err)}`);
});
