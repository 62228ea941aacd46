import { join } from 'node:path';
import { WatchedProcess } from './watched-process';

export interface AgentProcessOptions {
  url: string;
  token?: string;
  services?: string;
  workDir?: string;
  slots?: number;
  once?: boolean;
  /** Further arguments, as given. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

/** The reference device agent (`src/agent/main.ts`) as a real child process. */
export class AgentProcess extends WatchedProcess {
  readonly workDir?: string;

  constructor(options: AgentProcessOptions) {
    const args = ['--url', options.url];
    if (options.token !== undefined) {
      args.push('--token', options.token);
    }
    if (options.services) {
      args.push('--services', options.services);
    }
    if (options.workDir) {
      args.push('--work-dir', options.workDir);
    }
    if (options.slots !== undefined) {
      args.push('--slots', String(options.slots));
    }
    if (options.once) {
      args.push('--once');
    }
    super(join('src', 'agent', 'main.ts'), [...args, ...(options.args ?? [])], options.env ?? {});
    this.workDir = options.workDir;
  }
}
