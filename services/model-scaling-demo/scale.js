'use strict';
/**
 * model-scaling-demo: parses the header of an OpenSim .trc marker file and writes
 * outputs/scaling.json (markers, frames, rate, scale factor) and outputs/metrics.json.
 *
 * TRC layout (tab-separated): line 1 `PathFileType 4 (X/Y/Z) <name>`; line 2 the header names
 * (DataRate, CameraRate, NumFrames, NumMarkers, Units, …); line 3 their values; line 4
 * `Frame# Time <marker> <blank> <blank> <marker> …`; line 5 the X1 Y1 Z1 … axes; then data.
 */
const fs = require('node:fs');
const path = require('node:path');

const MODEL_HEIGHT_M = 1.75;
const UNIT_METRES = { mm: 0.001, cm: 0.01, m: 1 };

function fail(message) {
  process.stderr.write(`model-scaling-demo: ${message}\n`);
  process.exit(2);
}

function readInputs() {
  try {
    return JSON.parse(fs.readFileSync('inputs.json', 'utf8'));
  } catch (err) {
    return fail(`cannot read inputs.json (${err.message})`);
  }
}

function parseTrc(text, name) {
  const malformed = (why) => fail(`malformed TRC file ${name}: ${why}`);
  const lines = text.split(/\r?\n/);
  if (!lines[0] || !lines[0].startsWith('PathFileType')) {
    malformed('line 1 does not start with PathFileType');
  }
  if (lines.length < 5) {
    malformed(`it has ${lines.length} lines, a TRC header has 5`);
  }
  const names = lines[1].split('\t').map((s) => s.trim());
  const values = lines[2].split('\t').map((s) => s.trim());
  const header = Object.fromEntries(names.map((n, i) => [n, values[i]]));
  for (const field of ['DataRate', 'CameraRate', 'NumFrames', 'NumMarkers', 'Units']) {
    if (header[field] === undefined || header[field] === '') {
      malformed(`line 2/3 has no ${field}`);
    }
  }
  const dataRate = Number(header.DataRate);
  const cameraRate = Number(header.CameraRate);
  const numFrames = Number(header.NumFrames);
  const numMarkers = Number(header.NumMarkers);
  if (!(dataRate > 0) || !(cameraRate > 0)) {
    malformed(`DataRate/CameraRate "${header.DataRate}"/"${header.CameraRate}" are not positive`);
  }
  if (!Number.isInteger(numFrames) || numFrames < 0) {
    malformed(`NumFrames "${header.NumFrames}" is not a whole number`);
  }
  if (!Number.isInteger(numMarkers) || numMarkers < 1) {
    malformed(`NumMarkers "${header.NumMarkers}" is not a positive whole number`);
  }
  const units = header.Units;
  if (!(units in UNIT_METRES)) {
    malformed(`Units "${units}" is not one of ${Object.keys(UNIT_METRES).join(', ')}`);
  }
  const columns = lines[3].split('\t').map((s) => s.trim());
  if (columns[0] !== 'Frame#' || columns[1] !== 'Time') {
    malformed('line 4 does not start with Frame# and Time');
  }
  const markers = columns.slice(2).filter(Boolean);
  if (markers.length !== numMarkers) {
    malformed(`line 4 names ${markers.length} markers, NumMarkers says ${numMarkers}`);
  }
  const rows = lines
    .slice(5)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t').map(Number));
  return { dataRate, cameraRate, numFrames, numMarkers, units, markers, rows };
}

/** Vertical (Y) extent of the markers in the first frame, in metres: a rough body height. */
function markerSpan(trc) {
  const first = trc.rows[0];
  if (!first) {
    return undefined;
  }
  const ys = trc.markers.map((_, i) => first[2 + 3 * i + 1]).filter(Number.isFinite);
  return ys.length ? (Math.max(...ys) - Math.min(...ys)) * UNIT_METRES[trc.units] : undefined;
}

const inputs = readInputs();
if (typeof inputs.trc !== 'string') {
  fail('inputs.json has no "trc" file');
}
for (const name of ['height', 'mass']) {
  if (typeof inputs[name] !== 'number') {
    fail(`input "${name}" is not a number`);
  }
}
console.log('PROGRESS 10');
const trcName = path.basename(inputs.trc);
const trc = parseTrc(fs.readFileSync(inputs.trc, 'latin1'), trcName);
if (trc.rows.length !== trc.numFrames) {
  process.stderr.write(
    `model-scaling-demo: warning: NumFrames is ${trc.numFrames}, the file holds ${trc.rows.length} rows\n`,
  );
}
console.log('PROGRESS 60');

const scaleFactor = inputs.height / MODEL_HEIGHT_M;
const scaling = {
  file: trcName,
  method: inputs.method ?? 'height-ratio',
  subject: { height: inputs.height, mass: inputs.mass },
  modelHeight: MODEL_HEIGHT_M,
  scaleFactor,
  dataRate: trc.dataRate,
  cameraRate: trc.cameraRate,
  numFrames: trc.numFrames,
  numMarkers: trc.numMarkers,
  units: trc.units,
  markers: trc.markers,
  markerSpan: markerSpan(trc),
};
fs.writeFileSync(path.join('outputs', 'scaling.json'), `${JSON.stringify(scaling, null, 2)}\n`);
const metrics = {
  numFrames: trc.numFrames,
  numMarkers: trc.numMarkers,
  dataRate: trc.dataRate,
  scaleFactor,
};
fs.writeFileSync(path.join('outputs', 'metrics.json'), `${JSON.stringify(metrics)}\n`);
console.log(`${trc.numMarkers} markers, ${trc.numFrames} frames at ${trc.dataRate} Hz`);
console.log(`scale factor ${scaleFactor.toFixed(4)} (${scaling.method})`);
console.log('PROGRESS 100');
