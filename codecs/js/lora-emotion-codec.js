/*
 * lora-emotion payload codec (format version 1) for LoRaWAN network servers.
 *
 * LoRaWAN Payload Codec API (TS013): decodeUplink, encodeDownlink, decodeDownlink.
 * Written for ECMAScript 5.1 (The Things Stack's formatter runtime); runs unchanged in
 * ChirpStack v4. The wire format is docs/payload-format.md and docs/downlink.md of
 * lora-emotion; the Python package lora_emotion is the reference and the golden vectors in
 * its tests/vectors are this file's tests.
 *
 * decodeUplink gives {data: {records: [...]}}: the SenML records (RFC 8428, relative, no base
 * name) that lora_emotion.uplink.decode_uplink gives, with the same names, units and values.
 * Anything wrong gives {errors: ["byte 0 (reading): ..."]}; nothing is thrown.
 *
 * User label sets (ids 6..23): set input.variables.labelSets (ChirpStack device variable, a
 * JSON string or object) to the labels-file document {"label_sets": [{"id": 6, "name": ...,
 * "labels": [...]}]}, or add them to USER_LABEL_SETS below before pasting into a console.
 *
 * Payload integers exceed 53 bits (a summary needs up to 408), so they are handled as arrays
 * of 16-bit limbs, least significant first: ES5.1 has no BigInt.
 */

/* Edit to declare user label sets for consoles without device variables (TTN). */
var USER_LABEL_SETS = [];

var LE_BUILTIN_SETS = [
  [0, 'fer2013', ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral']],
  [1, 'ferplus', ['neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt']],
  [2, 'physio3', ['angry', 'happy', 'sad']],
  [3, 'valence3', ['pleasant', 'unpleasant', 'neutral']],
  [4, 'ravdess', ['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']],
  [5, 'tess', ['anger', 'disgust', 'fear', 'happiness', 'pleasant_surprise', 'sadness', 'neutral']]
];

var LE_MAX_PAYLOAD = 51;
var LE_STEPS = 101; /* confidence 0..100 % */
var LE_WINDOW_RADIX = 65536;
var LE_SKIN_RADIX = 10002;
var LE_HEART_RADIX = 252;
var LE_GAP_RADIX = 4096;
var LE_SUMMARY_MAX = 65535;
var LE_MAX_SET_ID = 23;
var LE_MAX_CLASSES = 64;
var LE_NO_FACE = 'none';
var LE_COMMAND_PORT = 3;
var LE_RELAY_MAX_CLASSES = 16;
var LE_MODES = ['reading', 'distribution', 'summary', 'vitals'];
var LE_COMMAND_STATUS = ['none', 'applied', 'rejected', 'unknown_command'];
var LE_STATUS_RADICES = [16, 16, 64, 64, 102, 1048576, 65536, 65536, 4, 1024, 24, 65536, 256, 4];
var LE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/* -- errors ------------------------------------------------------------------------------ */

/* A decode failure worded as lora_emotion.errors.DecodeError words it. */
function LeError(message, field, offset) {
  var where = [];
  if (offset !== undefined && offset !== null) {
    where.push('byte ' + offset);
  }
  if (field !== undefined && field !== null) {
    where.push(where.length ? '(' + field + ')' : field);
  }
  this.message = where.length ? where.join(' ') + ': ' + message : message;
}

function leFail(message, field, offset) {
  throw new LeError(message, field, offset);
}

/* -- big integers: little-endian arrays of 16-bit limbs, no leading zero limb ---------------- */

var LIMB = 65536;

function bnTrim(a) {
  while (a.length && a[a.length - 1] === 0) {
    a.pop();
  }
  return a;
}

function bnFromNumber(n) {
  var a = [];
  while (n > 0) {
    a.push(n % LIMB);
    n = Math.floor(n / LIMB);
  }
  return a;
}

function bnFromBytes(bytes, start, end) {
  var a = [];
  var i;
  for (i = end; i - 2 >= start; i -= 2) {
    a.push(bytes[i - 2] * 256 + bytes[i - 1]);
  }
  if (i - 1 >= start) {
    a.push(bytes[i - 1]);
  }
  return bnTrim(a);
}

/* Only for values known to be below 2^53. */
function bnToNumber(a) {
  var n = 0;
  for (var i = a.length - 1; i >= 0; i--) {
    n = n * LIMB + a[i];
  }
  return n;
}

function bnCmp(a, b) {
  if (a.length !== b.length) {
    return a.length < b.length ? -1 : 1;
  }
  for (var i = a.length - 1; i >= 0; i--) {
    if (a[i] !== b[i]) {
      return a[i] < b[i] ? -1 : 1;
    }
  }
  return 0;
}

function bnAdd(a, b) {
  var out = [];
  var carry = 0;
  var n = Math.max(a.length, b.length);
  for (var i = 0; i < n; i++) {
    var s = (a[i] || 0) + (b[i] || 0) + carry;
    out.push(s % LIMB);
    carry = s >= LIMB ? 1 : 0;
  }
  if (carry) {
    out.push(carry);
  }
  return out;
}

/* a - b for a >= b. */
function bnSub(a, b) {
  var out = [];
  var borrow = 0;
  for (var i = 0; i < a.length; i++) {
    var d = a[i] - (b[i] || 0) - borrow;
    borrow = d < 0 ? 1 : 0;
    out.push(d < 0 ? d + LIMB : d);
  }
  return bnTrim(out);
}

/* a * m for a whole number 0 <= m < 2^36. */
function bnMulSmall(a, m) {
  var out = [];
  var carry = 0;
  for (var i = 0; i < a.length; i++) {
    var p = a[i] * m + carry;
    out.push(p % LIMB);
    carry = Math.floor(p / LIMB);
  }
  while (carry > 0) {
    out.push(carry % LIMB);
    carry = Math.floor(carry / LIMB);
  }
  return bnTrim(out);
}

function bnMul(a, b) {
  if (!a.length || !b.length) {
    return [];
  }
  var out = [];
  var i;
  var j;
  for (i = 0; i < a.length + b.length; i++) {
    out.push(0);
  }
  for (i = 0; i < a.length; i++) {
    var carry = 0;
    for (j = 0; j < b.length; j++) {
      var t = out[i + j] + a[i] * b[j] + carry;
      out[i + j] = t % LIMB;
      carry = Math.floor(t / LIMB);
    }
    var k = i + b.length;
    while (carry > 0) {
      var u = out[k] + carry;
      out[k] = u % LIMB;
      carry = Math.floor(u / LIMB);
      k++;
    }
  }
  return bnTrim(out);
}

/* [quotient, remainder (a number)] of a / d for a whole number 0 < d < 2^36, so that
   remainder * LIMB + limb stays below 2^53. */
function bnDivSmall(a, d) {
  var q = [];
  var r = 0;
  for (var i = a.length - 1; i >= 0; i--) {
    var cur = r * LIMB + a[i];
    var digit = Math.floor(cur / d);
    q[i] = digit;
    r = cur - digit * d;
  }
  return [bnTrim(q), r];
}

function bnBitLength(a) {
  if (!a.length) {
    return 0;
  }
  var top = a[a.length - 1];
  var bits = 0;
  while (top > 0) {
    bits++;
    top = Math.floor(top / 2);
  }
  return (a.length - 1) * 16 + bits;
}

function bnShiftLeft1(a) {
  var carry = 0;
  for (var i = 0; i < a.length; i++) {
    var v = a[i] * 2 + carry;
    a[i] = v & 65535;
    carry = v >> 16;
  }
  if (carry) {
    a.push(carry);
  }
  return a;
}

/* [quotient, remainder] of a / b (b > 0), both big integers. */
function bnDivmod(a, b) {
  if (b.length <= 2) {
    var small = bnDivSmall(a, bnToNumber(b));
    return [small[0], bnFromNumber(small[1])];
  }
  if (bnCmp(a, b) < 0) {
    return [[], a.slice()];
  }
  /* Binary long division: few calls (batches of distributions) on at most ~400 bits. */
  var q = [];
  var r = [];
  for (var bit = bnBitLength(a) - 1; bit >= 0; bit--) {
    bnShiftLeft1(r);
    if ((a[bit >> 4] >> (bit & 15)) & 1) {
      if (r.length) {
        r[0] |= 1;
      } else {
        r.push(1);
      }
    }
    if (bnCmp(r, b) >= 0) {
      r = bnSub(r, b);
      while (q.length <= bit >> 4) {
        q.push(0);
      }
      q[bit >> 4] |= 1 << (bit & 15);
    }
  }
  return [bnTrim(q), r];
}

function bnPow(a, n) {
  var out = [1];
  for (var i = 0; i < n; i++) {
    out = bnMul(out, a);
  }
  return out;
}

/* Bytes needed to hold any of `states` values: the smallest L >= 1 with 256^L >= states. */
function bnByteLength(states) {
  var bits = bnBitLength(bnSub(states, [1]));
  return Math.max(1, Math.ceil(bits / 8));
}

/* Binomials repeat within a decode and across uplinks; the cache is bounded because a summary
   of a large set touches thousands of distinct ones and a server process lives long. */
var combCache = {};
var combCacheSize = 0;
var COMB_CACHE_LIMIT = 20000;

/* C(n, k) as a big integer: C = C * (n - k + j) / j is exact at every step. */
function bnComb(n, k) {
  if (k < 0 || n < 0 || k > n) {
    return [];
  }
  if (k > n - k) {
    k = n - k;
  }
  var key = n + ',' + k;
  var known = combCache[key];
  if (known) {
    return known;
  }
  var c = [1];
  for (var j = 1; j <= k; j++) {
    c = bnDivSmall(bnMulSmall(c, n - k + j), j)[0];
  }
  if (combCacheSize >= COMB_CACHE_LIMIT) {
    combCache = {};
    combCacheSize = 0;
  }
  combCache[key] = c;
  combCacheSize++;
  return c;
}

/* -- ranking compositions (docs/payload-format.md section 4) -------------------------------- */

/* Inverse of ranking (docs/payload-format.md section 4). For each part, the largest c with
   C(R - c + m, m) >= C(R + m, m) - rank is found by stepping c up from 0, each step one small
   multiplication and division (C(x - 1 + m, m) = C(x + m, m) * x / (x + m)), so the cost
   follows the counts rather than the number of parts times a binary search of binomials; a
   part that would take many steps is binary-searched instead. */
function unrankComposition(rank, total, parts) {
  var vector = [];
  var remaining = total;
  var top = bnComb(total + parts - 1, parts - 1); /* C(remaining + m, m) */
  for (var i = 0; i < parts - 1; i++) {
    var m = parts - 1 - i;
    var target = bnSub(top, rank);
    var c = 0;
    var cur = top; /* C(remaining - c + m, m) */
    /* A step costs about 3 limb operations, a binary search about 2 m log2(R): step while
       that is cheaper, then search. */
    var budget = Math.floor((2 * m * Math.log(remaining + 1)) / (3 * Math.LN2)) + 1;
    while (c < remaining) {
      if (budget-- === 0) {
        var low = c;
        var high = remaining;
        while (low < high) {
          var mid = Math.floor((low + high + 1) / 2);
          if (bnCmp(bnComb(remaining - mid + m, m), target) >= 0) {
            low = mid;
          } else {
            high = mid - 1;
          }
        }
        c = low;
        cur = bnComb(remaining - c + m, m);
        break;
      }
      var x = remaining - c;
      var next = bnDivSmall(bnMulSmall(cur, x), x + m)[0];
      if (bnCmp(next, target) < 0) {
        break;
      }
      cur = next;
      c++;
    }
    rank = bnSub(rank, bnSub(top, cur));
    vector.push(c);
    remaining -= c;
    /* C(remaining + m - 1, m - 1) from C(remaining + m, m). */
    top = bnDivSmall(bnMulSmall(cur, m), remaining + m)[0];
  }
  vector.push(remaining);
  return vector;
}

/* C(n, k) as a number, for results far enough below 2^53 that every step is exact. */
function numComb(n, k) {
  if (k < 0 || n < 0 || k > n) {
    return 0;
  }
  if (k > n - k) {
    k = n - k;
  }
  var c = 1;
  for (var j = 1; j <= k; j++) {
    c = (c * (n - k + j)) / j;
  }
  return c;
}

/* unrankComposition for ranks below 2^45 (distributions of up to 9 classes): plain numbers. */
function unrankCompositionSmall(rank, total, parts) {
  var vector = [];
  var remaining = total;
  for (var i = 0; i < parts - 1; i++) {
    var m = parts - 1 - i;
    var top = numComb(remaining + m, m);
    var low = 0;
    var high = remaining;
    while (low < high) {
      var mid = Math.floor((low + high + 1) / 2);
      if (top - numComb(remaining - mid + m, m) <= rank) {
        low = mid;
      } else {
        high = mid - 1;
      }
    }
    rank -= top - numComb(remaining - low + m, m);
    vector.push(low);
    remaining -= low;
  }
  vector.push(remaining);
  return vector;
}

/* Percentages of a distribution rank (a big integer below the number of distributions). */
function unrankShares(rank, states, classes) {
  if (bnBitLength(states) <= 45) {
    return unrankCompositionSmall(bnToNumber(rank), 100, classes);
  }
  return unrankComposition(rank, 100, classes);
}

/* Counts by graded rank (smaller sums first), or null when the sum would exceed maxTotal.
   The sum n is the largest with C(n - 1 + parts, parts) <= rank, found by stepping n up
   (C(n + parts, parts) = C(n - 1 + parts, parts) * (n + parts) / n) while that is cheaper
   than a binary search of binomials, as in unrankComposition. */
function unrankBounded(rank, parts, maxTotal) {
  if (bnCmp(rank, bnComb(maxTotal + parts, parts)) >= 0) {
    return null;
  }
  var n = 0;
  var below = []; /* C(n - 1 + parts, parts) */
  var budget = Math.floor((2 * parts * Math.log(maxTotal + 1)) / (3 * Math.LN2)) + 1;
  while (n < maxTotal) {
    if (budget-- === 0) {
      var low = n;
      var high = maxTotal;
      while (low < high) {
        var mid = Math.floor((low + high + 1) / 2);
        if (bnCmp(bnComb(mid - 1 + parts, parts), rank) <= 0) {
          low = mid;
        } else {
          high = mid - 1;
        }
      }
      n = low;
      below = bnComb(n - 1 + parts, parts);
      break;
    }
    var next = n === 0 ? [1] : bnDivSmall(bnMulSmall(below, n + parts), n)[0];
    if (bnCmp(next, rank) > 0) {
      break;
    }
    below = next;
    n++;
  }
  return unrankComposition(bnSub(rank, below), n, parts);
}

/* Byte length of a payload of n elements for n = 0, 1, ... while it fits 51 bytes. */
function sequenceLengths(elementStates) {
  var lengths = [];
  var states = [1];
  for (;;) {
    var length = bnByteLength(states);
    if (lengths.length && length <= lengths[lengths.length - 1]) {
      length = lengths[lengths.length - 1] + 1;
    }
    if (length > LE_MAX_PAYLOAD) {
      return lengths;
    }
    lengths.push(length);
    states = bnMul(states, elementStates);
  }
}

/* -- label sets ------------------------------------------------------------------------------ */

function crc16(text) {
  var crc = 0xffff;
  for (var i = 0; i < text.length; i++) {
    crc ^= text.charCodeAt(i) << 8;
    for (var b = 0; b < 8; b++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

function makeSet(id, name, labels) {
  return { id: id, name: name, labels: labels, memo: {}, lengths: {} };
}

var LE_BUILTIN = {};
(function () {
  for (var i = 0; i < LE_BUILTIN_SETS.length; i++) {
    var s = LE_BUILTIN_SETS[i];
    LE_BUILTIN[s[0]] = makeSet(s[0], s[1], s[2]);
  }
})();

/* A user set as lora_emotion.labels.LabelSet validates it; throws LeError. */
function checkUserSet(entry, where, sets) {
  if (entry === null || typeof entry !== 'object' || entry instanceof Array) {
    leFail('expected an object', where);
  }
  var id = entry.id;
  var name = entry.name;
  var labels = entry.labels;
  if (typeof id !== 'number' || Math.floor(id) !== id) {
    leFail("'id' must be an integer", where + '.id');
  }
  if (typeof name !== 'string') {
    leFail("'name' must be a string", where + '.name');
  }
  if (!(labels instanceof Array)) {
    leFail("'labels' must be a list of strings", where + '.labels');
  }
  if (id < 0 || id > LE_MAX_SET_ID) {
    leFail(id + ' is not a set id in 0..' + LE_MAX_SET_ID, where + '.id');
  }
  if (!LE_NAME.test(name)) {
    leFail(JSON.stringify(name) + ' must match [A-Za-z0-9][A-Za-z0-9._-]*', where + '.name');
  }
  if (labels.length < 2 || labels.length > LE_MAX_CLASSES) {
    leFail(labels.length + ' classes; a set needs 2..' + LE_MAX_CLASSES, where + '.labels');
  }
  var seen = {};
  for (var i = 0; i < labels.length; i++) {
    var label = labels[i];
    if (typeof label !== 'string' || !LE_NAME.test(label)) {
      leFail('must match [A-Za-z0-9][A-Za-z0-9._-]*', where + '.labels[' + i + ']');
    }
    if (label === LE_NO_FACE) {
      leFail("'none' is reserved for 'no face' and cannot be a class", where + '.labels[' + i + ']');
    }
    if (seen.hasOwnProperty(label)) {
      leFail('duplicate class name', where + '.labels');
    }
    seen[label] = true;
  }
  for (var key in sets) {
    if (sets.hasOwnProperty(key) && sets[key].name === name && sets[key].id !== id) {
      leFail('name ' + JSON.stringify(name) + ' is already id ' + sets[key].id, where + '.name');
    }
  }
  var existing = sets[id];
  if (existing && (existing.name !== name || existing.labels.join('\n') !== labels.join('\n'))) {
    leFail('id ' + id + ' is already ' + JSON.stringify(existing.name), where + '.id');
  }
  return makeSet(id, name, labels.slice());
}

var registryCache = { key: null, sets: null };

/* Built-in sets plus USER_LABEL_SETS plus input.variables.labelSets; throws LeError. */
function registryOf(variables) {
  var declared = variables && variables.labelSets !== undefined ? variables.labelSets : null;
  var key = typeof declared === 'string' ? declared : JSON.stringify(declared);
  if (registryCache.key === key && registryCache.sets) {
    return registryCache.sets;
  }
  var sets = {};
  var id;
  for (id in LE_BUILTIN) {
    if (LE_BUILTIN.hasOwnProperty(id)) {
      sets[id] = LE_BUILTIN[id];
    }
  }
  var i;
  for (i = 0; i < USER_LABEL_SETS.length; i++) {
    var own = checkUserSet(USER_LABEL_SETS[i], 'USER_LABEL_SETS[' + i + ']', sets);
    sets[own.id] = own;
  }
  if (declared !== null) {
    var doc = declared;
    if (typeof declared === 'string') {
      try {
        doc = JSON.parse(declared);
      } catch (e) {
        leFail('not JSON: ' + e.message, 'variables.labelSets');
      }
    }
    if (doc === null || typeof doc !== 'object' || !(doc.label_sets instanceof Array)) {
      leFail("expected an object with a 'label_sets' list", 'variables.labelSets');
    }
    for (i = 0; i < doc.label_sets.length; i++) {
      var user = checkUserSet(doc.label_sets[i], 'label_sets[' + i + ']', sets);
      sets[user.id] = user;
    }
  }
  registryCache = { key: key, sets: sets };
  return sets;
}

/* -- compact messages (docs/payload-format.md section 3) ------------------------------------ */

function recEmotion(prefix, label, t) {
  var r = { n: prefix + 'emotion', vs: label === null ? LE_NO_FACE : label };
  if (t !== null) {
    r.t = t;
  }
  return r;
}

function recValue(name, unit, value, t) {
  var r = { n: name };
  if (unit !== null) {
    r.u = unit;
  }
  r.v = value;
  if (t !== null) {
    r.t = t;
  }
  return r;
}

function pushReading(records, prefix, label, confidence, t) {
  records.push(recEmotion(prefix, label, t));
  if (confidence !== null) {
    records.push(recValue(prefix + 'confidence', '/', confidence, t));
  }
}

function exactLength(bytes, expected, field) {
  if (bytes.length < expected) {
    leFail('payload truncated: expected ' + expected + ' bytes, got ' + bytes.length, field, 0);
  }
  if (bytes.length > expected) {
    leFail(
      bytes.length - expected + ' unexpected trailing bytes (a ' + field + ' is ' + expected + ' bytes)',
      field,
      expected
    );
  }
}

function requireBelow(value, states, field) {
  if (bnCmp(value, states) >= 0) {
    leFail('value ' + bnToDecimal(value) + ' is out of range (the field has ' + bnToDecimal(states) + ' values)', field, 0);
  }
}

function countFromLength(bytes, lengths, field) {
  for (var i = 0; i < lengths.length; i++) {
    if (lengths[i] === bytes.length) {
      return i;
    }
  }
  leFail(
    bytes.length + ' bytes is not a valid length (valid: ' + lengths.slice(0, 8).join(', ') + ', ...)',
    field,
    0
  );
}

/* [label or null, confidence or null] of a reading state (class * 101 + %, or K * 101). */
function stateLabel(set, state) {
  var index = Math.floor(state / LE_STEPS);
  if (index === set.labels.length) {
    return [null, null];
  }
  return [set.labels[index], (state % LE_STEPS) / 100];
}

function readingLength(classes) {
  return classes * LE_STEPS + 1 <= 256 ? 1 : 2;
}

function decodeReading(bytes, set, records) {
  var classes = set.labels.length;
  exactLength(bytes, readingLength(classes), 'reading');
  var state = bytes.length === 1 ? bytes[0] : bytes[0] * 256 + bytes[1];
  var index = Math.floor(state / LE_STEPS);
  var percent = state % LE_STEPS;
  if (index < classes) {
    pushReading(records, '', set.labels[index], percent / 100, null);
  } else if (index === classes && percent === 0) {
    pushReading(records, '', null, null, null);
  } else {
    leFail('value ' + state + ' is out of range (the field has ' + (classes * LE_STEPS + 1) + ' values)', 'reading', 0);
  }
}

function distributionStates(classes) {
  return bnComb(100 + classes - 1, classes - 1);
}

function cachedLength(set, key, make) {
  var known = set.lengths[key];
  if (known === undefined) {
    known = set.lengths[key] = make();
  }
  return known;
}

function distributionShares(bytes, set) {
  var classes = set.labels.length;
  var states = distributionStates(classes);
  exactLength(
    bytes,
    cachedLength(set, 'distribution', function () {
      return bnByteLength(states);
    }),
    'distribution'
  );
  var rank = bnFromBytes(bytes, 0, bytes.length);
  requireBelow(rank, states, 'distribution');
  return unrankShares(rank, states, classes);
}

function pushDistribution(records, set, shares, t) {
  var best = 0;
  for (var i = 1; i < shares.length; i++) {
    if (shares[i] > shares[best]) {
      best = i;
    }
  }
  pushReading(records, '', set.labels[best], shares[best] / 100, t);
  for (var j = 0; j < shares.length; j++) {
    records.push(recValue('probability:' + set.labels[j], '/', shares[j] / 100, t));
  }
}

function decodeFaces(bytes, set, records) {
  var classes = set.labels.length;
  var states = classes * LE_STEPS;
  var lengths = cachedLength(set, 'faces', function () {
    return sequenceLengths(bnFromNumber(states));
  });
  var count = countFromLength(bytes, lengths, 'faces');
  var value = bnFromBytes(bytes, 0, bytes.length);
  requireBelow(value, bnPow(bnFromNumber(states), count), 'faces');
  var faces = [];
  for (var i = count - 1; i >= 0; i--) {
    var qr = bnDivSmall(value, states);
    faces[i] = qr[1];
    value = qr[0];
  }
  records.push(recValue('faces', null, count, null));
  for (var f = 0; f < count; f++) {
    var lc = stateLabel(set, faces[f]);
    pushReading(records, 'face:' + f + ':', lc[0], lc[1], null);
  }
}

function decodeSummary(bytes, set, records) {
  if (!bytes.length) {
    leFail('payload truncated: expected 1 bytes, got 0', 'summary', 0);
  }
  if (bytes.length > 1 && bytes[0] === 0) {
    leFail('leading zero byte (not the shortest encoding)', 'summary', 0);
  }
  var value = bnFromBytes(bytes, 0, bytes.length);
  var qr = bnDivSmall(value, LE_STEPS);
  var percent = qr[1];
  qr = bnDivSmall(qr[0], LE_WINDOW_RADIX);
  var window = qr[1];
  var classes = set.labels.length;
  var vector = unrankBounded(qr[0], classes + 1, LE_SUMMARY_MAX);
  if (vector === null) {
    leFail('counts exceed ' + LE_SUMMARY_MAX + ' readings', 'summary', 0);
  }
  var best = -1;
  var total = 0;
  for (var i = 0; i <= classes; i++) {
    total += vector[i];
    if (i < classes && vector[i] > 0 && (best < 0 || vector[i] > vector[best])) {
      best = i;
    }
  }
  if (best < 0 && percent) {
    leFail('mean confidence given but no class counted', 'summary', 0);
  }
  if (bytes.length > LE_MAX_PAYLOAD) {
    leFail('needs ' + bytes.length + ' bytes, more than the 51-byte limit', 'summary', 0);
  }
  pushReading(records, '', best < 0 ? null : set.labels[best], best < 0 ? null : percent / 100, null);
  records.push(recValue('window', 's', window + 1, null));
  records.push(recValue('readings', null, total, null));
  for (var j = 0; j < classes; j++) {
    records.push(recValue('count:' + set.labels[j], null, vector[j], null));
  }
  records.push(recValue('count:' + LE_NO_FACE, null, vector[classes], null));
}

function vitalsLabelRadix(classes) {
  return classes * LE_STEPS + 2;
}

function vitalsLength(classes) {
  /* (101K + 2) * 10002 * 252 stays below 2^53 for K <= 64. */
  return bnByteLength(bnFromNumber(vitalsLabelRadix(classes) * LE_SKIN_RADIX * LE_HEART_RADIX));
}

/* Vitals from their value (a number below 2^53); throws on neither heart rate nor skin. */
function pushVitals(records, set, value, t) {
  var heart = value % LE_HEART_RADIX;
  value = (value - heart) / LE_HEART_RADIX;
  var skin = value % LE_SKIN_RADIX;
  var label = (value - skin) / LE_SKIN_RADIX;
  if (!skin && !heart) {
    leFail('neither heart rate nor skin conductance present', 'vitals', 0);
  }
  if (label) {
    var lc = stateLabel(set, label - 1);
    pushReading(records, '', lc[0], lc[1], t);
  }
  if (heart) {
    records.push(recValue('heartRate', 'beat/min', heart - 1, t));
  }
  if (skin) {
    records.push(recValue('skinConductance', 'S', (skin - 1) / 100000000, t));
  }
}

function decodeVitals(bytes, set, records) {
  var classes = set.labels.length;
  exactLength(bytes, vitalsLength(classes), 'vitals');
  var value = 0;
  for (var i = 0; i < bytes.length; i++) {
    value = value * 256 + bytes[i];
  }
  if (value >= vitalsLabelRadix(classes) * LE_SKIN_RADIX * LE_HEART_RADIX) {
    leFail('value ' + value + ' is out of range', 'vitals', 0);
  }
  pushVitals(records, set, value, null);
}

var LE_STATUS_STATES = (function () {
  var product = [1];
  for (var i = 0; i < LE_STATUS_RADICES.length; i++) {
    product = bnMulSmall(product, LE_STATUS_RADICES[i]);
  }
  return product;
})();

function decodeStatus(bytes, sets, records, warnings) {
  exactLength(bytes, 16, 'status');
  var value = bnFromBytes(bytes, 0, bytes.length);
  requireBelow(value, LE_STATUS_STATES, 'status');
  var d = [];
  for (var j = LE_STATUS_RADICES.length - 1; j >= 0; j--) {
    var qr = bnDivSmall(value, LE_STATUS_RADICES[j]);
    d[j] = qr[1];
    value = qr[0];
  }
  var fingerprint = d[11].toString(16);
  while (fingerprint.length < 4) {
    fingerprint = '0' + fingerprint;
  }
  records.push(recValue('protocolVersion', null, d[0], null));
  records.push({ n: 'firmwareVersion', vs: d[1] + '.' + d[2] + '.' + d[3] });
  if (d[4]) {
    records.push(recValue('batteryLevel', '%EL', d[4] - 1, null));
  }
  records.push(recValue('uptime', 's', d[5] * 60, null));
  records.push(recValue('droppedReadings', null, d[6], null));
  records.push(recValue('windowLength', 's', d[7] + 1, null));
  records.push({ n: 'mode', vs: LE_MODES[d[8]] });
  records.push(recValue('dailyBudget', 's', d[9] + 1, null));
  records.push(recValue('labelSetId', null, d[10], null));
  records.push({ n: 'labelSetFingerprint', vs: fingerprint });
  records.push(recValue('commandSeq', null, d[12], null));
  records.push({ n: 'commandStatus', vs: LE_COMMAND_STATUS[d[13]] });
  var known = sets[d[10]];
  if (!known) {
    warnings.push('label set id ' + d[10] + ' is not declared here: its messages will not decode');
  } else if (crc16(known.labels.join('\n')) !== d[11]) {
    warnings.push(
      'label set id ' + d[10] + ': the device reports fingerprint ' + fingerprint +
        ', this decoder has ' + known.name + ' (' + crc16(known.labels.join('\n')).toString(16) +
        '): its labels may not match the device'
    );
  }
}

function batchElementStates(type, classes) {
  if (type === 5) {
    return bnFromNumber(classes * LE_STEPS + 1);
  }
  if (type === 6) {
    return distributionStates(classes);
  }
  return bnFromNumber(vitalsLabelRadix(classes) * LE_SKIN_RADIX * LE_HEART_RADIX);
}

function decodeBatch(bytes, set, type, records) {
  var classes = set.labels.length;
  var states = batchElementStates(type, classes);
  var element = bnMulSmall(states, LE_GAP_RADIX);
  var lengths = cachedLength(set, 'batch' + type, function () {
    return sequenceLengths(element);
  });
  var count = countFromLength(bytes, lengths, 'batch');
  if (count === 0) {
    leFail('a batch needs at least one entry', 'batch', 0);
  }
  var value = bnFromBytes(bytes, 0, bytes.length);
  requireBelow(value, bnPow(element, count), 'batch');
  var gaps = [];
  var items = [];
  for (var i = count - 1; i >= 0; i--) {
    var qr = bnDivmod(value, states);
    items[i] = qr[1];
    qr = bnDivSmall(qr[0], LE_GAP_RADIX);
    gaps[i] = qr[1];
    value = qr[0];
  }
  var age = 0;
  for (var e = 0; e < count; e++) {
    age += gaps[e];
    var t = age ? -age : null;
    if (type === 5) {
      var lc = stateLabel(set, bnToNumber(items[e]));
      pushReading(records, '', lc[0], lc[1], t);
    } else if (type === 6) {
      var rank = items[e];
      requireBelow(rank, states, 'distribution');
      pushDistribution(records, set, unrankShares(rank, states, classes), t);
    } else {
      pushVitals(records, set, bnToNumber(items[e]), t);
    }
  }
}

function decodeCompact(bytes, fPort, sets, warnings) {
  var records = [];
  if (fPort === 2) {
    decodeStatus(bytes, sets, records, warnings);
    return records;
  }
  if (typeof fPort !== 'number' || Math.floor(fPort) !== fPort || fPort < 16 || fPort > 207) {
    leFail('port ' + fPort + ' carries no compact emotion message', 'fport');
  }
  var setId = Math.floor((fPort - 16) / 8);
  var type = (fPort - 16) % 8;
  var set = sets[setId];
  if (!set) {
    leFail(
      'port ' + fPort + ' is label set id ' + setId +
        ', which this decoder does not know; declare it (labels file) rather than guess',
      'fport'
    );
  }
  if (type === 0) {
    decodeReading(bytes, set, records);
  } else if (type === 1) {
    pushDistribution(records, set, distributionShares(bytes, set), null);
  } else if (type === 2) {
    decodeFaces(bytes, set, records);
  } else if (type === 3) {
    decodeSummary(bytes, set, records);
  } else if (type === 4) {
    decodeVitals(bytes, set, records);
  } else {
    decodeBatch(bytes, set, type, records);
  }
  return records;
}

/* -- ThingsML: SenML CBOR with KPN's measurement index (port 1) ------------------------------ */

var CBOR_MAX_DEPTH = 64;
var CBOR_INT_LIMIT = 18446744073709551615;
/* RFC 8428 section 6 labels -> [JSON name, kind]. */
var SENML_LABELS = {
  '-2': ['bn', 'text'], '-3': ['bt', 'number'], '-4': ['bu', 'text'], '-5': ['bv', 'number'],
  '-6': ['bs', 'number'], '-1': ['bver', 'int'], '0': ['n', 'text'], '1': ['u', 'text'],
  '2': ['v', 'number'], '3': ['vs', 'text'], '4': ['vb', 'bool'], '8': ['vd', 'bytes'],
  '5': ['s', 'number'], '6': ['t', 'number'], '7': ['ut', 'number']
};
var SENML_ORDER = ['bn', 'bt', 'bu', 'bv', 'bs', 'bver', 'n', 'u', 'v', 'vs', 'vb', 'vd', 's', 't', 'ut'];
var THINGSML_INDEX = {
  '-24': ['temperature', 'Cel'], '-23': ['humidity', '%RH'], '-22': ['latitude', 'lat'],
  '-21': ['longitude', 'lon'], '-20': ['altitude', 'm'], '-19': ['power', 'W'],
  '-18': ['pressure', 'Pa'], '-17': ['angle', 'rad'], '-16': ['length', 'm'],
  '-15': ['breadth', 'm'], '-14': ['height', 'm'], '-13': ['weight', 'kg'],
  '-12': ['thickness', 'm'], '-11': ['distance', 'm'], '-10': ['area', 'm2'],
  '-9': ['volume', 'm3'], '-8': ['velocity', 'm/s'], '-7': ['electricCurrent', 'A'],
  '-6': ['electricPotential', 'V'], '-5': ['electricResistance', 'Ohm'],
  '-4': ['illuminance', 'lx'], '-3': ['accelerationX', 'm/s2'], '-2': ['accelerationY', 'm/s2'],
  '-1': ['accelerationZ', 'm/s2'], '0': ['heading', 'rad'], '1': ['COConcentration', 'ppm'],
  '2': ['CO2Concentration', 'ppm'], '3': ['sound', 'dB'], '4': ['frequency', 'Hz'],
  '5': ['batteryLevel', '%EL'], '6': ['batteryVoltage', 'V'], '7': ['radius', 'm'],
  '8': ['batteryLevelLow', '/'], '9': ['compassX', 'T'], '10': ['compassY', 'T'],
  '11': ['compassZ', 'T'], '12': ['readSwitch', '/'], '13': ['presence', null],
  '14': ['counter', null]
};

/* Decoded CBOR items: numbers for integers, CborFloat for floats (SenML tells them apart),
   strings, CborBytes, arrays, CborMap (keys kept in order), booleans and null. Tags,
   undefined, other simple values and non-finite floats are rejected while reading: the
   Python decoder rejects them wherever they can appear in a pack. */
function CborFloat(value) {
  this.value = value;
}
function CborBytes(bytes) {
  this.bytes = bytes;
}
function CborMap() {
  this.keys = [];
  this.values = [];
}
/* An integer beyond 2^53 keeps its exact text for duplicate checks and output. */
function CborBigInt(value, text) {
  this.value = value;
  this.text = text;
}

function cborError(message, offset) {
  leFail('invalid CBOR: ' + message + (offset === undefined ? '' : ' at byte ' + offset));
}

function CborReader(bytes) {
  this.bytes = bytes;
  this.pos = 0;
}

CborReader.prototype.need = function (n) {
  if (this.pos + n > this.bytes.length) {
    cborError('premature end of stream', this.pos);
  }
};

CborReader.prototype.uint = function (n) {
  this.need(n);
  var v = 0;
  for (var i = 0; i < n; i++) {
    v = v * 256 + this.bytes[this.pos + i];
  }
  this.pos += n;
  return v;
};

/* [value, exact decimal text or null] of an argument; text only when above 2^53. */
CborReader.prototype.argument = function (info) {
  if (info < 24) {
    return [info, null];
  }
  if (info === 24) {
    return [this.uint(1), null];
  }
  if (info === 25) {
    return [this.uint(2), null];
  }
  if (info === 26) {
    return [this.uint(4), null];
  }
  if (info === 27) {
    this.need(8);
    var big = bnFromBytes(this.bytes, this.pos, this.pos + 8);
    this.pos += 8;
    if (bnBitLength(big) <= 53) {
      return [bnToNumber(big), null];
    }
    return [bnToNumber(big), bnToDecimal(big)];
  }
  cborError('invalid additional information ' + info, this.pos - 1);
};

function bnToDecimal(a) {
  var text = '';
  var rest = a;
  while (rest.length) {
    var qr = bnDivSmall(rest, 10000000);
    var chunk = String(qr[1]);
    rest = qr[0];
    if (rest.length) {
      while (chunk.length < 7) {
        chunk = '0' + chunk;
      }
    }
    text = chunk + text;
  }
  return text || '0';
}

function halfToNumber(h) {
  var exp = (h >> 10) & 31;
  var mant = h & 1023;
  var value;
  if (exp === 0) {
    value = mant * Math.pow(2, -24);
  } else if (exp === 31) {
    value = mant ? NaN : Infinity;
  } else {
    value = (mant + 1024) * Math.pow(2, exp - 25);
  }
  return h & 32768 ? -value : value;
}

function singleToNumber(bytes, p) {
  var bits = ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>> 0;
  var exp = (bits >>> 23) & 255;
  var mant = bits & 0x7fffff;
  var value;
  if (exp === 0) {
    value = mant * Math.pow(2, -149);
  } else if (exp === 255) {
    value = mant ? NaN : Infinity;
  } else {
    value = (mant + 0x800000) * Math.pow(2, exp - 150);
  }
  return bits >>> 31 ? -value : value;
}

function doubleToNumber(bytes, p) {
  var hi = ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>> 0;
  var lo = ((bytes[p + 4] << 24) | (bytes[p + 5] << 16) | (bytes[p + 6] << 8) | bytes[p + 7]) >>> 0;
  var exp = (hi >>> 20) & 2047;
  var mant = (hi & 0xfffff) * 4294967296 + lo;
  var value;
  if (exp === 0) {
    value = mant * Math.pow(2, -1074);
  } else if (exp === 2047) {
    value = mant ? NaN : Infinity;
  } else {
    /* 1.mantissa first, then the exponent: both steps are exact. */
    value = (mant + 4503599627370496) * Math.pow(2, -52) * Math.pow(2, exp - 1023);
  }
  return hi >>> 31 ? -value : value;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), as Python's. */
function utf8Decode(bytes, start, end) {
  var out = '';
  var i = start;
  while (i < end) {
    var b = bytes[i];
    var cp;
    var extra;
    var min;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      cp = b & 0x1f;
      extra = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      cp = b & 0x0f;
      extra = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      cp = b & 0x07;
      extra = 3;
      min = 0x10000;
    } else {
      cborError('text string is not UTF-8', i);
    }
    if (i + extra >= end) {
      cborError('text string is not UTF-8', i);
    }
    for (var k = 1; k <= extra; k++) {
      var c = bytes[i + k];
      if ((c & 0xc0) !== 0x80) {
        cborError('text string is not UTF-8', i);
      }
      cp = cp * 64 + (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      cborError('text string is not UTF-8', i);
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023));
    } else {
      out += String.fromCharCode(cp);
    }
    i += extra + 1;
  }
  return out;
}

CborReader.prototype.chunk = function (major, info) {
  var n = this.argument(info)[0];
  this.need(n);
  var start = this.pos;
  this.pos += n;
  return major === 2 ? this.bytes.slice(start, start + n) : utf8Decode(this.bytes, start, start + n);
};

CborReader.prototype.isBreak = function () {
  this.need(1);
  if (this.bytes[this.pos] === 0xff) {
    this.pos++;
    return true;
  }
  return false;
};

function mapKeyIdentity(key) {
  if (typeof key === 'number') {
    return 'i' + key;
  }
  if (key instanceof CborBigInt) {
    return 'i' + key.text;
  }
  if (typeof key === 'string') {
    return 's' + key;
  }
  return null;
}

CborReader.prototype.item = function (depth) {
  this.need(1);
  var start = this.pos;
  var initial = this.bytes[this.pos++];
  var major = initial >> 5;
  var info = initial & 31;
  var arg;
  if (major === 0 || major === 1) {
    arg = this.argument(info);
    if (major === 0) {
      return arg[1] === null ? arg[0] : new CborBigInt(arg[0], arg[1]);
    }
    if (arg[1] === null) {
      return -1 - arg[0];
    }
    if (arg[0] >= CBOR_INT_LIMIT && arg[1] === '18446744073709551615') {
      leFail('integer out of range (magnitude must be below 2**64)');
    }
    return new CborBigInt(-1 - arg[0], '-' + bnToDecimal(bnAdd(bnFromBytes(this.bytes, this.pos - 8, this.pos), [1])));
  }
  if (major === 2 || major === 3) {
    if (info !== 31) {
      var whole = this.chunk(major, info);
      return major === 2 ? new CborBytes(whole) : whole;
    }
    var parts = major === 2 ? [] : '';
    while (!this.isBreak()) {
      var head = this.bytes[this.pos++];
      if (head >> 5 !== major || (head & 31) === 31) {
        cborError('non-matching chunk in an indefinite length string', this.pos - 1);
      }
      var piece = this.chunk(major, head & 31);
      parts = parts.concat(piece);
    }
    return major === 2 ? new CborBytes(parts) : parts;
  }
  if (major === 4 || major === 5) {
    if (depth >= CBOR_MAX_DEPTH) {
      cborError('maximum container nesting depth (64) exceeded', start);
    }
    var indefinite = info === 31;
    var count = indefinite ? -1 : this.argument(info)[0];
    if (major === 4) {
      var list = [];
      for (var i = 0; indefinite ? !this.isBreak() : i < count; i++) {
        list.push(this.item(depth + 1));
      }
      return list;
    }
    var map = new CborMap();
    var seen = {};
    for (var j = 0; indefinite ? !this.isBreak() : j < count; j++) {
      var key = this.item(depth + 1);
      var identity = mapKeyIdentity(key);
      if (identity === null) {
        leFail('map key must be an integer or text label', 'record');
      }
      if (seen.hasOwnProperty(identity)) {
        cborError('duplicate map key', start);
      }
      seen[identity] = true;
      map.keys.push(key);
      map.values.push(this.item(depth + 1));
    }
    return map;
  }
  if (major === 6) {
    leFail('invalid CBOR: CBOR tags are not allowed in SenML');
  }
  /* major 7 */
  if (info === 20 || info === 21) {
    return info === 21;
  }
  if (info === 22) {
    return null;
  }
  var value;
  if (info === 25) {
    value = halfToNumber(this.uint(2));
  } else if (info === 26) {
    this.need(4);
    value = singleToNumber(this.bytes, this.pos);
    this.pos += 4;
  } else if (info === 27) {
    this.need(8);
    value = doubleToNumber(this.bytes, this.pos);
    this.pos += 8;
  } else if (info === 31) {
    cborError('break outside an indefinite length item', start);
  } else {
    if (info === 24) {
      this.uint(1);
    } else if (info >= 28) {
      cborError('invalid additional information ' + info, start);
    }
    leFail('unsupported value (undefined or a simple value)');
  }
  if (value !== value || value === Infinity || value === -Infinity) {
    leFail('expected a finite number, got ' + value);
  }
  return new CborFloat(value);
};

function cborTypeName(value) {
  if (value === null) {
    return 'null';
  }
  if (typeof value === 'boolean') {
    return 'boolean';
  }
  if (typeof value === 'number' || value instanceof CborFloat || value instanceof CborBigInt) {
    return 'number';
  }
  if (typeof value === 'string') {
    return 'string';
  }
  if (value instanceof CborBytes) {
    return 'byte string';
  }
  if (value instanceof CborMap) {
    return 'object';
  }
  return 'array';
}

function isCborInt(value) {
  return typeof value === 'number' || value instanceof CborBigInt;
}

function base64url(bytes) {
  var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  var out = '';
  for (var i = 0; i < bytes.length; i += 3) {
    var n = bytes[i] * 65536 + (bytes[i + 1] || 0) * 256 + (bytes[i + 2] || 0);
    out += alphabet.charAt(n >> 18) + alphabet.charAt((n >> 12) & 63);
    if (i + 1 < bytes.length) {
      out += alphabet.charAt((n >> 6) & 63);
    }
    if (i + 2 < bytes.length) {
      out += alphabet.charAt(n & 63);
    }
  }
  return out;
}

/* Plain JSON of a decoded value: byte strings as base64url (as SenML JSON writes vd). */
/* Sets a key even when it is "__proto__" (an extension field may be named anything). */
function setOwn(target, key, value) {
  Object.defineProperty(target, key, { value: value, enumerable: true, writable: true, configurable: true });
}

function cborToJson(value) {
  if (value instanceof CborFloat || value instanceof CborBigInt) {
    return value.value;
  }
  if (value instanceof CborBytes) {
    return base64url(value.bytes);
  }
  if (value instanceof CborMap) {
    var out = {};
    for (var i = 0; i < value.keys.length; i++) {
      var key = value.keys[i];
      setOwn(out, key instanceof CborBigInt ? key.text : String(key), cborToJson(value.values[i]));
    }
    return out;
  }
  if (value instanceof Array) {
    var list = [];
    for (var j = 0; j < value.length; j++) {
      list.push(cborToJson(value[j]));
    }
    return list;
  }
  return value;
}

function checkKind(kind, value, where) {
  var ok;
  if (kind === 'text') {
    ok = typeof value === 'string';
  } else if (kind === 'number') {
    ok = typeof value === 'number' || value instanceof CborFloat || value instanceof CborBigInt;
  } else if (kind === 'int') {
    ok = isCborInt(value);
  } else if (kind === 'bool') {
    ok = typeof value === 'boolean';
  } else {
    ok = value instanceof CborBytes;
  }
  if (!ok) {
    leFail('expected a' + (kind === 'int' ? 'n integer' : ' ' + kind) + ', got ' + cborTypeName(value), where);
  }
}

/* One ThingsML record (a CBOR map) as a SenML JSON record, checked as lora_emotion does. */
function thingsmlRecord(index, item) {
  if (!(item instanceof CborMap)) {
    leFail('expected a map, got ' + cborTypeName(item), 'record ' + index);
  }
  var known = {};
  var extraKeys = [];
  var extraValues = [];
  var measurement = [];
  for (var i = 0; i < item.keys.length; i++) {
    var key = item.keys[i];
    var value = item.values[i];
    var where = 'record ' + index + ' field ' + JSON.stringify(String(key instanceof CborBigInt ? key.text : key));
    if (key === 23 || key === 'i_') {
      measurement.push(value);
    } else if (isCborInt(key)) {
      var label = typeof key === 'number' ? SENML_LABELS[String(key)] : undefined;
      if (!label) {
        leFail('unknown integer label', where);
      }
      checkKind(label[1], value, where);
      known[label[0]] = label[1] === 'bytes' ? base64url(value.bytes) : cborToJson(value);
    } else {
      for (var n = 0; n < SENML_ORDER.length; n++) {
        if (SENML_ORDER[n] === key) {
          leFail('label must be the integer label, not text', where);
        }
      }
      if (key.charAt(key.length - 1) === '_') {
        leFail('must-understand field (RFC 8428 section 4.4) is not supported', where);
      }
      extraKeys.push(key);
      extraValues.push(cborToJson(value));
    }
  }
  if (measurement.length > 1) {
    leFail("measurement index given twice (23 and 'i_')", 'record ' + index + " field 'i_'");
  }
  if (measurement.length) {
    var raw = measurement[0];
    if (typeof raw !== 'number') {
      leFail('expected an integer measurement index, got ' + cborTypeName(raw), 'record ' + index + " field 'i_'");
    }
    var meaning = THINGSML_INDEX[String(raw)];
    if (!meaning) {
      leFail('unknown measurement index ' + raw, 'record ' + index + " field 'i_'");
    }
    if (known.n !== undefined) {
      leFail('record has both a name and a measurement index', 'record ' + index + " field 'n'");
    }
    known.n = meaning[0];
    if (known.u === undefined && meaning[1] !== null) {
      known.u = meaning[1];
    }
  }
  var record = {};
  for (var f = 0; f < SENML_ORDER.length; f++) {
    if (known[SENML_ORDER[f]] !== undefined) {
      record[SENML_ORDER[f]] = known[SENML_ORDER[f]];
    }
  }
  for (var x = 0; x < extraKeys.length; x++) {
    if (!Object.prototype.hasOwnProperty.call(record, extraKeys[x])) {
      setOwn(record, extraKeys[x], extraValues[x]);
    }
  }
  return record;
}

function decodeThingsml(bytes) {
  var reader = new CborReader(bytes);
  var pack = reader.item(0);
  if (reader.pos !== bytes.length) {
    leFail(bytes.length - reader.pos + ' bytes of trailing data after the CBOR item', null, reader.pos);
  }
  if (!(pack instanceof Array)) {
    leFail('expected a CBOR array of records, got ' + cborTypeName(pack));
  }
  var records = [];
  for (var i = 0; i < pack.length; i++) {
    records.push(thingsmlRecord(i, pack[i]));
  }
  return records;
}

/* -- downlink commands (docs/downlink.md) ---------------------------------------------------- */

var LE_OPS = {
  1: ['set_window', 2],
  2: ['set_mode', 1],
  3: ['set_daily_budget', 2],
  4: ['set_label_set', 4],
  5: ['send_status', 0],
  6: ['set_status_interval', 2]
};

function checkInt(value, low, high, field) {
  if (typeof value !== 'number' || Math.floor(value) !== value || value < low || value > high) {
    leFail(JSON.stringify(value) + ' is not an integer in ' + low + '..' + high, field);
  }
  return value;
}

/* What the relay will say to a set_label_set command that the wire format allows. */
function labelSetWarning(command, where) {
  var builtin = LE_BUILTIN[command.set_id];
  if (builtin) {
    var fingerprint = crc16(builtin.labels.join('\n'));
    if (builtin.labels.length !== command.classes || fingerprint !== command.fingerprint) {
      return where + ': the relay will reject this: built-in set ' + command.set_id + ' (' + builtin.name +
        ') has ' + builtin.labels.length + ' classes and fingerprint ' + fingerprint;
    }
  } else if (command.classes > LE_RELAY_MAX_CLASSES) {
    return where + ': the relay will reject this: it keeps sums for at most ' + LE_RELAY_MAX_CLASSES + ' classes';
  }
  return null;
}

function decodeCommands(bytes, warnings) {
  if (!bytes.length) {
    leFail('payload truncated: expected 1 bytes, got 0', 'seq', 0);
  }
  var commands = [];
  var offset = 1;
  while (offset < bytes.length) {
    var op = LE_OPS[bytes[offset]];
    if (!op) {
      leFail('unknown opcode ' + bytes[offset], 'opcode', offset);
    }
    var size = op[1];
    if (offset + 1 + size > bytes.length) {
      leFail('payload truncated: expected ' + size + ' bytes, got ' + (bytes.length - offset - 1), op[0], offset + 1);
    }
    var a = offset + 1;
    var u16 = size === 2 ? bytes[a] * 256 + bytes[a + 1] : 0;
    var command = { op: op[0] };
    if (op[0] === 'set_window') {
      command.window_s = u16 + 1;
    } else if (op[0] === 'set_mode') {
      if (bytes[a] > 3) {
        leFail(bytes[a] + ' is not a Mode', 'mode', a);
      }
      command.mode = LE_MODES[bytes[a]];
    } else if (op[0] === 'set_daily_budget') {
      command.budget_s = checkAt(u16 + 1, 1, 1024, 'budget_s', a);
    } else if (op[0] === 'set_label_set') {
      command.set_id = checkAt(bytes[a], 0, LE_MAX_SET_ID, 'set_id', a);
      command.classes = checkAt(bytes[a + 1], 2, LE_MAX_CLASSES, 'classes', a);
      command.fingerprint = bytes[a + 2] * 256 + bytes[a + 3];
      var warning = labelSetWarning(command, 'commands[' + commands.length + ']');
      if (warning) {
        warnings.push(warning);
      }
    } else if (op[0] === 'set_status_interval') {
      command.interval_min = checkAt(u16, 1, 65535, 'interval_min', a);
    }
    commands.push(command);
    offset += 1 + size;
  }
  return { seq: bytes[0], commands: commands };
}

function checkAt(value, low, high, field, offset) {
  if (value < low || value > high) {
    leFail(value + ' is not an integer in ' + low + '..' + high, field, offset);
  }
  return value;
}

function encodeCommands(data, warnings) {
  if (data === null || typeof data !== 'object') {
    leFail('expected an object {seq, commands}', 'data');
  }
  var bytes = [checkInt(data.seq, 0, 255, 'seq')];
  var commands = data.commands === undefined ? [] : data.commands;
  if (!(commands instanceof Array)) {
    leFail('expected a list of commands', 'commands');
  }
  for (var i = 0; i < commands.length; i++) {
    var c = commands[i];
    var where = 'commands[' + i + ']';
    if (c === null || typeof c !== 'object') {
      leFail('expected an object with an op', where);
    }
    if (c.op === 'set_window') {
      var w = checkInt(c.window_s, 1, 65536, where + '.window_s') - 1;
      bytes.push(1, w >> 8, w & 255);
    } else if (c.op === 'set_mode') {
      var mode = typeof c.mode === 'string' ? LE_MODES.indexOf(c.mode) : -1;
      if (mode < 0) {
        leFail(JSON.stringify(c.mode) + ' is not a mode (' + LE_MODES.join(', ') + ')', where + '.mode');
      }
      bytes.push(2, mode);
    } else if (c.op === 'set_daily_budget') {
      var b = checkInt(c.budget_s, 1, 1024, where + '.budget_s') - 1;
      bytes.push(3, b >> 8, b & 255);
    } else if (c.op === 'set_label_set') {
      var command = {
        op: c.op,
        set_id: checkInt(c.set_id, 0, LE_MAX_SET_ID, where + '.set_id'),
        classes: checkInt(c.classes, 2, LE_MAX_CLASSES, where + '.classes'),
        fingerprint: checkInt(c.fingerprint, 0, 65535, where + '.fingerprint')
      };
      var warning = labelSetWarning(command, where);
      if (warning) {
        warnings.push(warning);
      }
      bytes.push(4, command.set_id, command.classes, command.fingerprint >> 8, command.fingerprint & 255);
    } else if (c.op === 'send_status') {
      bytes.push(5);
    } else if (c.op === 'set_status_interval') {
      var m = checkInt(c.interval_min, 1, 65535, where + '.interval_min');
      bytes.push(6, m >> 8, m & 255);
    } else {
      leFail(
        'unknown op ' + JSON.stringify(c.op) +
          ' (set_window, set_mode, set_daily_budget, set_label_set, send_status, set_status_interval)',
        where + '.op'
      );
    }
  }
  if (bytes.length > LE_MAX_PAYLOAD) {
    leFail('needs ' + bytes.length + ' bytes, more than the 51-byte limit', 'commands');
  }
  return bytes;
}

/* -- TS013 entry points ------------------------------------------------------------------- */

function inputBytes(input) {
  var bytes = input && input.bytes;
  if (!bytes || typeof bytes.length !== 'number') {
    leFail('input.bytes must be an array of byte values', 'bytes');
  }
  var out = [];
  for (var i = 0; i < bytes.length; i++) {
    var b = bytes[i];
    if (typeof b !== 'number' || Math.floor(b) !== b || b < 0 || b > 255) {
      leFail('input.bytes[' + i + '] is not a byte value', 'bytes');
    }
    out.push(b);
  }
  return out;
}

function outcome(build) {
  var warnings = [];
  try {
    var result = build(warnings);
    if (warnings.length) {
      result.warnings = warnings;
    }
    return result;
  } catch (e) {
    if (e instanceof LeError) {
      return { errors: [e.message] };
    }
    /* A bug here must still not take the network server's formatter down. */
    return { errors: ['internal error: ' + (e && e.message ? e.message : String(e))] };
  }
}

/* Uplink bytes and FPort -> {data: {records: [SenML records]}} or {errors: [...]}. */
function decodeUplink(input) {
  return outcome(function (warnings) {
    var bytes = inputBytes(input);
    var fPort = input.fPort;
    var records;
    if (fPort === 1) {
      records = decodeThingsml(bytes);
    } else {
      records = decodeCompact(bytes, fPort, registryOf(input.variables), warnings);
    }
    return { data: { records: records } };
  });
}

/* {data: {seq, commands: [{op, ...}]}} -> {bytes, fPort: 3} or {errors: [...]}. */
function encodeDownlink(input) {
  return outcome(function (warnings) {
    return { bytes: encodeCommands(input ? input.data : undefined, warnings), fPort: LE_COMMAND_PORT };
  });
}

/* Downlink bytes on FPort 3 -> {data: {seq, commands}} or {errors: [...]}. */
function decodeDownlink(input) {
  return outcome(function (warnings) {
    var bytes = inputBytes(input);
    if (input.fPort !== LE_COMMAND_PORT) {
      leFail('port ' + input.fPort + ' carries no command; commands go on port 3', 'fport');
    }
    return { data: decodeCommands(bytes, warnings) };
  });
}

/* Node and other CommonJS hosts; network-server runtimes just call the functions above. */
if (typeof module !== 'undefined' && module.exports) {
  module.exports = {
    decodeUplink: decodeUplink,
    encodeDownlink: encodeDownlink,
    decodeDownlink: decodeDownlink
  };
}
