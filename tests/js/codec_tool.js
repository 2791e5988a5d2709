// Test driver for codecs/js: runs codec calls for the Python tests, one node process per batch.
//
//   node codec_tool.js            JSON requests, one per line on stdin; one answer line each
//   node codec_tool.js FILE       FILE holds a JSON array of requests; prints a JSON array
//
// A request is {"build": "source" | "console", "fn": "decodeUplink" | "encodeDownlink" |
// "decodeDownlink", "input": {...}}, or {"fn": "parseES5", "build": ...} (acorn, ecmaVersion 5),
// or {"fn": "yamlExamples", "path": ...} (js-yaml reads the codec YAML as TTN's tooling does and
// every example runs through the file its fileName names, or through "build" if given).
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

const CODEC_DIR = path.resolve(__dirname, '..', '..', 'codecs', 'js');
const modules = path.join(CODEC_DIR, 'node_modules');
const acorn = require(path.join(modules, 'acorn'));
const yaml = require(path.join(modules, 'js-yaml'));

const FILES = {
  source: path.join(CODEC_DIR, 'lora-emotion-codec.js'),
  console: path.join(CODEC_DIR, 'lora-emotion-codec.console.js'),
};
const codecs = {};

function codec(build) {
  if (!codecs[build]) {
    codecs[build] = require(FILES[build]);
  }
  return codecs[build];
}

function yamlExamples(file, build) {
  const doc = yaml.load(fs.readFileSync(file, 'utf8'));
  const results = [];
  for (const section of ['uplinkDecoder', 'downlinkEncoder', 'downlinkDecoder']) {
    const part = doc[section];
    const fn = { uplinkDecoder: 'decodeUplink', downlinkEncoder: 'encodeDownlink', downlinkDecoder: 'decodeDownlink' }[section];
    // The build named in the request replaces the fileName (the console build must pass too).
    const impl = build ? codec(build) : require(path.join(path.dirname(file), part.fileName));
    for (const example of part.examples || []) {
      results.push({ section, description: example.description, expected: example.output, actual: impl[fn](example.input) });
    }
  }
  return { fileNames: ['uplinkDecoder', 'downlinkEncoder', 'downlinkDecoder'].map((s) => doc[s].fileName), results };
}

// ES2015+ library functions an ECMAScript 5.1 runtime lacks; acorn sees syntax only.
const LATER_BUILTINS = {
  Object: ['assign', 'entries', 'values', 'fromEntries', 'getOwnPropertySymbols'],
  Array: ['from', 'of'],
  'Array.prototype': ['find', 'findIndex', 'fill', 'includes', 'entries', 'keys', 'values', 'flat', 'flatMap', 'copyWithin'],
  Number: ['isInteger', 'isFinite', 'isNaN', 'isSafeInteger', 'parseFloat', 'parseInt', 'EPSILON', 'MAX_SAFE_INTEGER'],
  Math: ['trunc', 'sign', 'log2', 'log10', 'clz32', 'fround', 'imul', 'cbrt', 'hypot', 'expm1', 'log1p'],
  'String.prototype': ['padStart', 'padEnd', 'repeat', 'startsWith', 'endsWith', 'includes', 'codePointAt', 'normalize'],
  String: ['fromCodePoint', 'raw'],
};
const LATER_GLOBALS = ['Map', 'Set', 'WeakMap', 'WeakSet', 'Symbol', 'Promise', 'Proxy', 'Reflect', 'BigInt',
  'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array',
  'Float64Array', 'ArrayBuffer', 'DataView', 'TextDecoder', 'TextEncoder', 'Buffer', 'globalThis'];

// Runs the build in a fresh context stripped of the ES2015+ library, on every input given.
function es5Sandbox(build, calls) {
  const vm = require('vm');
  const context = vm.createContext({});
  const strip = [];
  for (const [owner, names] of Object.entries(LATER_BUILTINS)) {
    for (const name of names) {
      strip.push(`delete ${owner}.${name};`);
    }
  }
  for (const name of LATER_GLOBALS) {
    strip.push(`delete this.${name};`);
  }
  vm.runInContext(strip.join('\n'), context);
  const check = vm.runInContext(
    "[typeof Map, typeof Object.assign, typeof Array.from, typeof Math.trunc, typeof ''.padStart].join()",
    context
  );
  // Strict mode too: a host may run the formatter so, and sloppy code can fail there.
  vm.runInContext('"use strict";\n' + fs.readFileSync(FILES[build], 'utf8'), context, { filename: FILES[build] });
  context.__calls = JSON.stringify(calls);
  const out = vm.runInContext(
    'JSON.stringify(JSON.parse(__calls).map(function (c) { return this[c.fn](c.input); }, this))',
    context
  );
  return { stripped: check, answers: JSON.parse(out) };
}

// Runs the build in JS-Interpreter, an ECMAScript 5 interpreter written in JavaScript with
// its own ES5 built-ins: a real ES5 engine, and a slow one like TTN's.
function es5Interpreter(build, calls) {
  const Interpreter = require(path.join(modules, 'js-interpreter'));
  const program =
    fs.readFileSync(FILES[build], 'utf8') +
    '\nvar __out = JSON.stringify(JSON.parse(__calls).map(function (c) { return this[c.fn](c.input); }, this));';
  const interpreter = new Interpreter(program, (engine, scope) => {
    engine.setProperty(scope, '__calls', JSON.stringify(calls));
  });
  interpreter.run();
  return JSON.parse(interpreter.getProperty(interpreter.globalObject, '__out'));
}

function answer(request) {
  try {
    if (request.fn === 'parseES5') {
      const text = fs.readFileSync(FILES[request.build], 'utf8');
      acorn.parse(text, { ecmaVersion: 5, sourceType: 'script' });
      // A host may run formatters in strict mode: no with, octal literals, reserved names.
      acorn.parse('"use strict";\n' + text, { ecmaVersion: 5, sourceType: 'script' });
      return { ok: true };
    }
    if (request.fn === 'es5Interpreter') {
      return es5Interpreter(request.build, request.calls);
    }
    if (request.fn === 'es5Sandbox') {
      return es5Sandbox(request.build, request.calls);
    }
    if (request.fn === 'yamlExamples') {
      return yamlExamples(request.path, request.build);
    }
    return codec(request.build || 'source')[request.fn](request.input);
  } catch (e) {
    return { thrown: String(e && e.stack ? e.stack : e) };
  }
}

if (process.argv[2]) {
  const requests = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  process.stdout.write(JSON.stringify(requests.map(answer)));
} else {
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim()) {
      process.stdout.write(JSON.stringify(answer(JSON.parse(line))) + '\n');
    }
  });
}
