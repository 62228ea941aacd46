import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO_SERVICES = join(__dirname, '..', '..', 'services');

/**
 * A SERVICES_DIR with the shipped example services plus a few test-only ones: `sleep` (runs
 * until cancelled or timed out, writing its pid first) and `fail` (exits non-zero).
 */
export function testServicesDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'labgate-services-'));
  cpSync(REPO_SERVICES, dir, { recursive: true });
  writeFileSync(
    join(dir, 'sleep.yaml'),
    `key: sleep
title: Sleep
description: Sleeps; for cancel and timeout tests.
version: 1.0.0
inputs:
  - name: seconds
    type: int
    min: 1
    max: 600
run:
  command: [node, -e, "require('fs').writeFileSync('outputs/pid', String(process.pid)); console.log('PROGRESS 10 sleeping'); const { spawn } = require('child_process'); spawn('sleep', [String(JSON.parse(require('fs').readFileSync('inputs.json')).seconds)], { stdio: 'inherit' }).on('exit', (c) => process.exit(c ?? 1));"]
  timeoutSeconds: 3
retentionDays: 1
`,
  );
  writeFileSync(
    join(dir, 'fail.yaml'),
    `key: fail
title: Fail
description: Always fails.
version: 1.0.0
inputs: []
run:
  command: [node, -e, "console.error('boom'); process.exit(3)"]
retry:
  attempts: 1
retentionDays: 1
`,
  );
  writeFileSync(
    join(dir, 'ticker.yaml'),
    `key: ticker
title: Ticker
description: Prints five lines, one every 200 ms; for log streaming tests.
version: 1.0.0
inputs: []
run:
  command: [node, -e, "let i = 0; const t = setInterval(() => { console.log('tick ' + i); if (++i === 5) { clearInterval(t); } }, 200);"]
retentionDays: 1
`,
  );
  return dir;
}
