import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The key of the test-only service `addTallyService` declares. */
export const TALLY = 'tally';
/** The key of the test-only service `addBulkService` declares. */
export const BULK = 'bulk';

/**
 * Adds `tally` to a SERVICES_DIR: it waits `seconds` (default 0), then appends one line
 * `<tag> <pid>` to the ledger file, writes `outputs/tag.txt` and metrics `{tag}`. The ledger is
 * the side effect that proves how many times each job's program really ran. Two attempts, so
 * that a job whose worker is lost once still finishes.
 */
export function addTallyService(servicesDir: string, ledger: string): void {
  const script = [
    "const fs = require('fs');",
    "const { tag, seconds } = JSON.parse(fs.readFileSync('inputs.json', 'utf8'));",
    "console.log('PROGRESS 10 started');",
    'setTimeout(() => {',
    `  fs.appendFileSync(${JSON.stringify(ledger)}, tag + ' ' + process.pid + '\\n');`,
    "  fs.writeFileSync('outputs/tag.txt', tag);",
    "  fs.writeFileSync('outputs/metrics.json', JSON.stringify({ tag }));",
    '}, (seconds ?? 0) * 1000);',
  ].join(' ');
  writeFileSync(
    join(servicesDir, `${TALLY}.yaml`),
    `key: ${TALLY}
title: Tally
description: Appends its tag to a ledger; for exactly-once tests.
version: 1.0.0
inputs:
  - name: tag
    type: string
    maxLength: 100
  - name: seconds
    type: float
    min: 0
    max: 60
    default: 0
run:
  command: [node, -e, ${JSON.stringify(script)}]
  timeoutSeconds: 60
retry:
  attempts: 2
  backoffSeconds: 0
retentionDays: 1
`,
  );
}

/** How many times the ledger says each tag ran. */
export function ledgerCounts(ledger: string): Map<string, number> {
  const counts = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(ledger, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n').filter(Boolean)) {
    const tag = line.split(' ')[0];
    counts.set(tag, (counts.get(tag) ?? 0) + 1);
  }
  return counts;
}

/** Adds `bulk` to a SERVICES_DIR: one file input of up to 1 GiB; reports its size. */
export function addBulkService(servicesDir: string): void {
  const script = [
    "const fs = require('fs');",
    "const dir = 'inputs/data';",
    'const bytes = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(dir + "/" + f).size, 0);',
    "fs.writeFileSync('outputs/metrics.json', JSON.stringify({ bytes }));",
  ].join(' ');
  writeFileSync(
    join(servicesDir, `${BULK}.yaml`),
    `key: ${BULK}
title: Bulk
description: Takes one large file and reports its size; for upload tests.
version: 1.0.0
inputs:
  - name: note
    type: string
    required: false
  - name: data
    type: file
    maxBytes: 1 GiB
run:
  command: [node, -e, ${JSON.stringify(script)}]
  timeoutSeconds: 60
retentionDays: 1
`,
  );
}
