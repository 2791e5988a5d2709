// Writes lora-emotion-codec.console.js: the codec minified so that it fits The Things Stack
// console's 40 KB payload-formatter limit. The readable lora-emotion-codec.js stays the source;
// the tests check the committed build equals what this script writes today.
'use strict';
const fs = require('fs');
const path = require('path');
const { minify } = require('terser');

const SOURCE = path.join(__dirname, 'lora-emotion-codec.js');
const TARGET = path.join(__dirname, 'lora-emotion-codec.console.js');
const PREAMBLE =
  '/* lora-emotion payload codec (format 1), TS013 decodeUplink/encodeDownlink/decodeDownlink, ' +
  'ECMAScript 5.1. Minified from codecs/js/lora-emotion-codec.js by codecs/js/build.js: read and ' +
  'edit that file. To declare user label sets, set USER_LABEL_SETS below. */';

async function build() {
  const source = fs.readFileSync(SOURCE, 'utf8');
  const result = await minify(source, {
    ecma: 5,
    // Top-level names stay: the network server calls decodeUplink etc. by name, and users
    // edit USER_LABEL_SETS.
    toplevel: false,
    compress: { ecma: 5, passes: 2 },
    mangle: true,
    format: { ecma: 5, preamble: PREAMBLE, comments: false, max_line_len: 120 },
  });
  return result.code + '\n';
}

if (require.main === module) {
  build().then((code) => {
    if (process.argv.includes('--stdout')) {
      process.stdout.write(code);
    } else {
      fs.writeFileSync(TARGET, code);
      process.stdout.write(`${TARGET}: ${Buffer.byteLength(code)} bytes\n`);
    }
  });
}

module.exports = { build };
