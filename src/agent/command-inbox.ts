import type { AgentCommand } from './agent-client';

export interface Ack {
  ok: boolean;
  message: string;
}

export type CommandAction = { kind: 'stop'; jobId: string } | { kind: 'refuse'; ack: Ack };

/** What this agent does with a command: it can stop a job, and says so for anything else. */
export function commandAction(command: AgentCommand): CommandAction {
  const jobId = command.args?.jobId;
  if (command.type === 'stop') {
    if (typeof jobId === 'string' && jobId) {
      return { kind: 'stop', jobId };
    }
    return refuse('this agent stops jobs only: a stop command needs args.jobId');
  }
  if (['start', 'restart', 'custom'].includes(command.type)) {
    return refuse(`this agent does not understand "${command.type}" commands`);
  }
  return refuse(`unknown command type ${JSON.stringify(command.type)}`);
}

function refuse(message: string): CommandAction {
  return { kind: 'refuse', ack: { ok: false, message } };
}

/**
 * Commands stay in every heartbeat answer until acknowledged, so one can arrive many times
 * (also while it is still being acted on, or when its ack was lost): each id is acted on once,
 * and its answer is kept to be sent again. Remembers the last `capacity` ids.
 */
export class CommandInbox {
  private readonly answers = new Map<string, Ack | 'acting'>();

  constructor(private readonly capacity = 1000) {}

  /** `act` the first time an id arrives, `wait` while that action runs, then its answer. */
  receive(id: string): 'act' | 'wait' | Ack {
    const known = this.answers.get(id);
    if (known === 'acting') {
      return 'wait';
    }
    if (known) {
      return known;
    }
    this.answers.set(id, 'acting');
    this.forgetOldest();
    return 'act';
  }

  answered(id: string, ack: Ack): void {
    if (this.answers.has(id)) {
      this.answers.set(id, ack);
    }
  }

  private forgetOldest(): void {
    for (const [id, state] of this.answers) {
      if (this.answers.size <= this.capacity) {
        return;
      }
      if (state !== 'acting') {
        this.answers.delete(id);
      }
    }
  }
}
