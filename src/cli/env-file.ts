import { randomBytes } from 'node:crypto';
import { VARIABLES, VariableSpec } from '../config/config.schema';

/** Secrets config:init makes up; everything else the operator chooses. */
export interface FreshSecrets {
  metricsToken: string;
  /** For the commented DATABASE_URL: the password to give labgate's PostgreSQL role. */
  databasePassword: string;
}

export function freshSecrets(): FreshSecrets {
  return {
    metricsToken: randomBytes(32).toString('base64url'),
    databasePassword: randomBytes(24).toString('hex'),
  };
}

const WIDTH = 100;

/** `# `-prefixed lines of at most WIDTH characters. */
function comment(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length + 1 + word.length > WIDTH && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

function defaultOf(spec: VariableSpec): string | undefined {
  return typeof spec.default === 'function'
    ? spec.default({ nodeEnv: 'development' })
    : spec.default;
}

/**
 * The lines of one variable: its description, then the value config:init sets, or else the
 * default (or an example) commented out, as in `.env.example`.
 */
function variable(spec: VariableSpec, secrets: FreshSecrets): string[] {
  const about = spec.secret
    ? `${spec.description} A secret: it may also be read from the file that ${spec.name}_FILE names.`
    : spec.description;
  const lines = comment(about);
  switch (spec.name) {
    case 'METRICS_TOKEN':
      lines.push(`${spec.name}=${secrets.metricsToken}`);
      break;
    case 'DATABASE_URL':
      lines.push(
        '# A fresh password: create the role with it, then uncomment (required in production).',
        `# ${spec.name}=postgres://labgate:${secrets.databasePassword}@127.0.0.1:5432/labgate`,
      );
      break;
    case 'OIDC_CLIENT_SECRET':
      lines.push(
        '# Issued by your identity provider when labgate is registered there as a client.',
        `# ${spec.name}=`,
      );
      break;
    default:
      lines.push(`# ${spec.name}=${defaultOf(spec) ?? ''}`);
  }
  return lines;
}

/**
 * A `.env` for a new installation: every variable labgate reads (config.schema.ts, nothing
 * else), each documented, with freshly generated secrets set and every other value left at
 * its default (commented out, so the code's default applies).
 */
export function renderEnvFile(secrets: FreshSecrets, writtenAt = new Date()): string {
  const head = [
    `# labgate configuration, written by \`npm run cli -- config:init\` on ${writtenAt.toISOString()}.`,
    '# Real environment variables win over this file. Commented lines show the default.',
    '# This file holds secrets: keep it out of version control and readable by labgate only.',
  ];
  const body = VARIABLES.flatMap((spec) => ['', ...variable(spec, secrets)]);
  return `${[...head, ...body].join('\n')}\n`;
}
