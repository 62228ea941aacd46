'use strict';
/**
 * echo: the runner starts this in a fresh work dir holding inputs.json, inputs/ and an empty
 * outputs/; whatever is in outputs/ at exit is the result.
 */
const fs = require('node:fs');
const path = require('node:path');

function fail(message) {
  process.stderr.write(`echo: ${message}\n`);
  process.exit(1);
}

let inputs;
try {
  inputs = JSON.parse(fs.readFileSync('inputs.json', 'utf8'));
} catch (err) {
  fail(`cannot read inputs.json (${err.message})`);
}
if (typeof inputs.message !== 'string') {
  fail('inputs.json has no string "message"');
}
console.log('PROGRESS 10');
fs.writeFileSync(path.join('outputs', 'message.txt'), inputs.message);
console.log('PROGRESS 50');

if (inputs.file !== undefined) {
  const inputsDir = path.resolve('inputs');
  const source = path.resolve(String(inputs.file));
  if (!source.startsWith(inputsDir + path.sep)) {
    fail(`file ${JSON.stringify(inputs.file)} is not in inputs/`);
  }
  const name = path.basename(source);
  // The message owns message.txt; an upload of that name keeps a prefix.
  const target = name === 'message.txt' ? 'file-message.txt' : name;
  fs.copyFileSync(source, path.join('outputs', target));
  console.log(`copied ${name}`);
}
console.log('PROGRESS 100');
