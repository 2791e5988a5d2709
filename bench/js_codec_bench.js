// One round of the JavaScript codec benchmark: times decodeUplink on each case and prints
// microseconds per call as JSON. Called by bench/js_codec_bench.py, which interleaves these
// rounds with the Python ones and reports medians.
//   node bench/js_codec_bench.js CODEC_FILE CASES_JSON LOOPS
'use strict';
const codec = require(require('path').resolve(process.argv[2]));
const cases = JSON.parse(process.argv[3]);
const loops = Number(process.argv[4]);

const result = {};
for (const c of cases) {
  const input = { bytes: c.bytes, fPort: c.fport };
  const first = codec.decodeUplink(input);
  if (!first.data) {
    throw new Error(`${c.name} does not decode: ${JSON.stringify(first)}`);
  }
  for (let i = 0; i < loops; i++) {
    codec.decodeUplink(input); // warm-up: let the JIT settle before timing
  }
  const start = process.hrtime.bigint();
  for (let i = 0; i < loops; i++) {
    codec.decodeUplink(input);
  }
  result[c.name] = Number(process.hrtime.bigint() - start) / 1000 / loops;
}
process.stdout.write(JSON.stringify(result));
