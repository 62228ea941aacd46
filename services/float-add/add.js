'use strict';
/** float-add: reads a and b from inputs.json, writes {"sum": a + b} to outputs/metrics.json. */
const fs = require('node:fs');
const path = require('node:path');

function fail(message) {
  process.stderr.write(`float-add: ${message}\n`);
  process.exit(1);
}

let inputs;
try {
  inputs = JSON.parse(fs.readFileSync('inputs.json', 'utf8'));
} catch (err) {
  fail(`cannot read inputs.json (${err.message})`);
}
for (const name of ['a', 'b']) {
  if (typeof inputs[name] !== 'number' || !Number.isFinite(inputs[name])) {
    fail(`input "${name}" is not a number: ${JSON.stringify(inputs[name])}`);
  }
}
console.log('PROGRESS 50');
const sum = inputs.a + inputs.b;
fs.writeFileSync(path.join('outputs', 'metrics.json'), `${JSON.stringify({ sum })}\n`);
console.log(`${inputs.a} + ${inputs.b} = ${sum}`);
console.log('PROGRESS 100');
