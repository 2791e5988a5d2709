// LoraEmotionCore.cpp - encoders, fixed-capacity integer, airtime and ledger.
// Port of src/lora_emotion/{_radix,messages,airtime,budget}.py; see LoraEmotionCore.h.
#include "LoraEmotionCore.h"

#include <string.h>

namespace lora_emotion {

namespace {

bool valid_set(const LabelSet& set) {
  return set.classes >= 2 && set.classes <= kMaxWireClasses && set.id <= kMaxSetId;
}

uint8_t port_for(const LabelSet& set, MessageType type) {
  return static_cast<uint8_t>(kSetBlockBase + kSetBlockSize * set.id + static_cast<uint8_t>(type));
}

// 0 .. 101*K: a class with its confidence, or 101*K for "no face".
bool label_state(const LabelSet& set, uint8_t label, uint8_t confidence_pct, uint32_t& state) {
  if (label == kNoFace) {
    state = static_cast<uint32_t>(set.classes) * kConfidenceSteps;
    return true;
  }
  state = static_cast<uint32_t>(label) * kConfidenceSteps + confidence_pct;
  return label < set.classes && confidence_pct <= 100;
}

Result emit(const BigUint& value, uint8_t length, uint8_t port, Payload& out) {
  if (length > kMaxPayload || !value.write_be(out.bytes, length)) return Result::kTooLarge;
  out.port = port;
  out.size = length;
  return Result::kOk;
}

// A Vitals payload's digits (label, skin conductance, heart rate, most significant first)
// folded into value (Horner), and their radices into states.
bool fold_vitals(const LabelSet& set, const VitalsFields& v, BigUint& value, BigUint& states) {
  uint32_t label = 0;
  if (v.label != kNoReading) {
    if (!label_state(set, v.label, v.confidence_pct, label)) return false;
    ++label;
  }
  // Absent (negative) is digit 0, a value v is v + 1.
  const uint32_t skin = v.skin_conductance_centi_us < 0 ? 0u : 1u + static_cast<uint32_t>(v.skin_conductance_centi_us);
  const uint32_t heart = v.heart_rate_bpm < 0 ? 0u : 1u + static_cast<uint32_t>(v.heart_rate_bpm);
  if ((skin | heart) == 0 || skin >= kSkinRadix || heart >= kHeartRateRadix) return false;
  const uint32_t digits[] = {label, skin, heart};
  const uint32_t radices[] = {static_cast<uint32_t>(set.classes) * kConfidenceSteps + 2, kSkinRadix, kHeartRateRadix};
  for (uint8_t i = 0; i < 3; ++i) {
    value.mul_add(radices[i], digits[i]);
    states.mul_small(radices[i]);
  }
  return true;
}

// Shares summing to 100 widened for rank_composition.
bool distribution_shares(const LabelSet& set, const uint8_t* percent, uint16_t* shares) {
  uint32_t total = 0;
  for (uint8_t i = 0; i < set.classes; ++i) total += shares[i] = percent[i];
  return total == kDistributionTotal;
}

// Length of a variable-size payload of n elements: strictly growing with n so that the
// receiver learns n from the length (_radix.sequence_lengths). Returns 0xFF past 51 bytes.
uint8_t next_sequence_length(const BigUint& states, uint8_t previous) {
  uint8_t length = length_for_states(states);
  if (length <= previous) length = static_cast<uint8_t>(previous + 1);
  return length;
}

}  // namespace

bool builtin_label_set(uint8_t id, LabelSet& out) {
  // Class counts and fingerprints of labels.BUILTIN_SETS; the tests compare them with the
  // label_sets of tests/vectors/messages.json.
  static const uint8_t kClasses[] = {7, 8, 3, 3, 8, 7};
  static const uint16_t kFingerprints[] = {65306, 34894, 63836, 13019, 60765, 57382};
  if (id >= sizeof(kClasses)) return false;
  out.id = id;
  out.classes = kClasses[id];
  out.fingerprint = kFingerprints[id];
  return true;
}

uint8_t bytes_for_states(uint32_t states) {
  uint32_t top = states - 1;
  uint8_t length = 1;
  while (top > 0xFF) {
    top >>= 8;
    ++length;
  }
  return length;
}

// ---- BigUint ------------------------------------------------------------------------------

void BigUint::set(uint32_t value) {
  memset(digits_, 0, kBytes);
  memcpy(digits_, &value, 4);  // every target of this library is little-endian
  overflow_ = false;
}

void BigUint::mul_add(uint32_t factor, uint32_t addend) {
  uint32_t carry = addend;
  for (unsigned i = 0; i < kBytes; ++i) {
    // 255 * (2^24 - 1) + (2^24 - 1) < 2^32: a byte limb keeps this within 32 bits, so the
    // Cortex-M0+ needs no 64-bit multiply helper.
    const uint32_t t = digits_[i] * factor + carry;
    digits_[i] = static_cast<uint8_t>(t);
    carry = t >> 8;
  }
  if (carry != 0) overflow_ = true;
}

void BigUint::add_or_sub(const BigUint& other, bool subtract) {
  // Subtraction adds the two's complement: the inverted digits plus one.
  const uint8_t invert = subtract ? 0xFF : 0;
  uint32_t carry = subtract;
  for (unsigned i = 0; i < kBytes; ++i) {
    const uint32_t t = digits_[i] + static_cast<uint8_t>(other.digits_[i] ^ invert) + carry;
    digits_[i] = static_cast<uint8_t>(t);
    carry = t >> 8;
  }
  // A sum carries out on overflow; a difference carries out unless it went below zero, which
  // the callers rule out.
  if (carry != subtract || other.overflow_) overflow_ = true;
}

void BigUint::decrement() {
  for (unsigned i = 0; i < kBytes; ++i) {
    if (digits_[i]-- != 0) return;
  }
}

uint16_t BigUint::div_small(uint16_t divisor) {
  uint32_t remainder = 0;
  for (unsigned i = kBytes; i-- > 0;) {
    const uint32_t t = (remainder << 8) | digits_[i];
    digits_[i] = static_cast<uint8_t>(t / divisor);
    remainder = t % divisor;
  }
  return static_cast<uint16_t>(remainder);
}

void BigUint::mul_binomial(uint32_t n, uint32_t k) {
  if (k > n) {
    set(0);
    return;
  }
  if (k > n - k) k = n - k;
  for (uint32_t j = 1; j <= k; ++j) {
    mul_small(n - k + j);
    div_small(static_cast<uint16_t>(j));
  }
}

int BigUint::compare(const BigUint& other) const {
  for (unsigned i = kBytes; i-- > 0;) {
    if (digits_[i] != other.digits_[i]) return digits_[i] < other.digits_[i] ? -1 : 1;
  }
  return 0;
}

uint8_t BigUint::length() const {
  uint8_t length = kBytes;
  while (length > 0 && digits_[length - 1] == 0) --length;
  return length;
}

bool BigUint::write_be(uint8_t* out, uint8_t len) const {
  if (overflow_ || length() > len) return false;
  for (uint8_t i = 0; i < len; ++i) out[len - 1 - i] = digits_[i];
  return true;
}

uint8_t length_for_states(const BigUint& states) {
  if (states.overflowed()) return 0xFF;
  BigUint top = states;
  top.decrement();
  const uint8_t length = top.length();
  return length == 0 ? 1 : length;
}

void rank_composition(const uint16_t* vector, uint8_t parts, bool graded, BigUint& rank, BigUint& count) {
  // Counted from the end, lexicographic order ranks v among the vectors of its total n as
  // C(n + p - 1, p - 1) - 1 - sum over j = 1..p-1 of C(T_j + j - 1, j), with T_j the sum of
  // the last j entries (Pascal's rule telescopes _radix.rank_composition's differences into
  // this). Graded order puts the C(n - 1 + p, p) vectors of smaller totals first, which
  // turns the leading term into C(n + p, p).
  BigUint term;
  uint32_t tail = 0;
  rank.set(0);
  for (uint8_t j = 1; j < parts; ++j) {
    tail += vector[parts - j];
    term.set(1);
    term.mul_binomial(tail + j - 1, j);
    rank.add(term);
  }
  tail += vector[0];
  const uint32_t k = parts - 1u + graded;
  count.set(1);
  count.mul_binomial(tail + k, k);
  term = count;
  term.decrement();
  term.sub(rank);
  rank = term;
}

// ---- encoders -----------------------------------------------------------------------------

Result encode_reading(const LabelSet& set, uint8_t label, uint8_t confidence_pct, Payload& out) {
  uint32_t state;
  if (!valid_set(set) || !label_state(set, label, confidence_pct, state)) {
    return Result::kBadArgument;
  }
  const uint8_t length = bytes_for_states(static_cast<uint32_t>(set.classes) * kConfidenceSteps + 1);
  return emit(BigUint(state), length, port_for(set, MessageType::kReading), out);
}

Result encode_distribution(const LabelSet& set, const uint8_t* percent, Payload& out) {
  uint16_t shares[kMaxWireClasses];
  if (!valid_set(set) || !distribution_shares(set, percent, shares)) return Result::kBadArgument;
  BigUint rank;
  BigUint count;
  rank_composition(shares, set.classes, false, rank, count);
  return emit(rank, length_for_states(count), port_for(set, MessageType::kDistribution), out);
}

Result encode_faces(const LabelSet& set, const Face* faces, uint8_t count, Payload& out) {
  if (!valid_set(set)) return Result::kBadArgument;
  const uint32_t element = static_cast<uint32_t>(set.classes) * kConfidenceSteps;
  BigUint value;
  BigUint states(1);
  uint8_t length = 1;
  for (uint8_t i = 0; i < count; ++i) {
    uint32_t state;
    if (faces[i].label == kNoFace || !label_state(set, faces[i].label, faces[i].confidence_pct, state)) {
      return Result::kBadArgument;
    }
    value.mul_add(element, state);
    states.mul_small(element);
    length = next_sequence_length(states, length);
    if (length > kMaxPayload) return Result::kTooLarge;
  }
  return emit(value, length, port_for(set, MessageType::kFaces), out);
}

Result encode_summary(const LabelSet& set, uint32_t window_s, const uint16_t* counts,
                      uint16_t no_face, uint8_t mean_confidence_pct, Payload& out) {
  if (!valid_set(set) || window_s - 1 >= kWindowRadix || mean_confidence_pct > 100) {
    return Result::kBadArgument;
  }
  uint16_t vector[kMaxWireClasses + 1];
  uint32_t total = no_face;
  uint32_t counted = 0;
  for (uint8_t i = 0; i < set.classes; ++i) counted += vector[i] = counts[i];
  vector[set.classes] = no_face;
  if (total + counted > kSummaryMaxReadings || (counted == 0 && mean_confidence_pct != 0)) {
    return Result::kBadArgument;
  }
  // Graded rank: the vectors with a smaller sum come first (_radix.rank_bounded).
  BigUint value;
  BigUint count;
  rank_composition(vector, static_cast<uint8_t>(set.classes + 1), true, value, count);
  value.mul_add(kWindowRadix, window_s - 1);
  value.mul_add(kConfidenceSteps, mean_confidence_pct);
  const uint8_t length = value.length();
  if (value.overflowed()) return Result::kTooLarge;
  return emit(value, length == 0 ? 1 : length, port_for(set, MessageType::kSummary), out);
}

Result encode_vitals(const LabelSet& set, const VitalsFields& vitals, Payload& out) {
  BigUint value;
  BigUint states(1);
  if (!valid_set(set) || !fold_vitals(set, vitals, value, states)) return Result::kBadArgument;
  return emit(value, length_for_states(states), port_for(set, MessageType::kVitals), out);
}

Result encode_status(const StatusFields& s, Payload& out) {
  // Radices, most significant first (messages._STATUS_FIELDS), as powers of two up to 2^20
  // (the exponent) or as themselves (24 label sets, 102 battery states).
  static const uint8_t kRadices[] = {4, 4, 6, 6, 102, 20, 16, 16, 2, 10, kMaxSetId + 1u, 16, 8, 2};
  const uint32_t uptime_min = s.uptime_s / 60;
  const uint32_t digits[] = {
      s.protocol_version,
      s.firmware[0],
      s.firmware[1],
      s.firmware[2],
      static_cast<uint32_t>(s.battery_percent + 1),  // 0 unknown, else 1 + percent
      uptime_min < (1u << 20) ? uptime_min : (1u << 20) - 1,
      s.dropped < 65535 ? s.dropped : 65535,
      s.window_s - 1,
      static_cast<uint32_t>(s.mode),
      s.daily_budget_s - 1u,
      s.label_set_id,
      s.label_set_fingerprint,
      s.command_seq,
      static_cast<uint32_t>(s.command_status),
  };
  BigUint value;
  for (uint8_t i = 0; i < sizeof(kRadices); ++i) {
    const uint32_t radix = kRadices[i] <= 20 ? 1u << kRadices[i] : kRadices[i];
    // Unsigned wrap-around turns battery -2 and window or budget 0 into huge values too.
    if (digits[i] >= radix) return Result::kBadArgument;
    value.mul_add(radix, digits[i]);
  }
  return emit(value, kStatusLength, kStatusPort, out);
}

Result quantise_weights(const uint32_t* weights, uint8_t count, uint8_t* percent_out) {
  // shares = floor(100 * w / sum); the shortfall goes one percent at a time to the largest
  // remainders, lower index first on ties. Exact, unlike the float version it mirrors.
  if (count - 1u >= kMaxWireClasses) return Result::kBadArgument;
  const uint32_t kMaxSum = 0xFFFFFFFFu / kDistributionTotal;
  uint32_t sum = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (weights[i] > kMaxSum - sum) return Result::kBadArgument;
    sum += weights[i];
  }
  if (sum == 0) return Result::kBadArgument;
  uint32_t remainders[kMaxWireClasses];
  uint32_t shortfall = kDistributionTotal;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t scaled = weights[i] * kDistributionTotal;
    percent_out[i] = static_cast<uint8_t>(scaled / sum);
    remainders[i] = scaled % sum;
    shortfall -= percent_out[i];
  }
  // The remainders add up to sum * shortfall with each below sum, so more than `shortfall`
  // of them are non-zero: zeroing a picked one never makes it eligible again.
  for (; shortfall > 0; --shortfall) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < count; ++i) {
      if (remainders[i] > remainders[best]) best = i;
    }
    ++percent_out[best];
    remainders[best] = 0;
  }
  return Result::kOk;
}

// ---- batches ------------------------------------------------------------------------------

BatchEncoder::BatchEncoder(const LabelSet& set, MessageType kind)
    : set_(set), kind_(kind), count_(0), error_(Result::kOk), previous_age_s_(0), value_() {
  if (!valid_set(set) || (kind != MessageType::kBatchReadings &&
                          kind != MessageType::kBatchDistributions &&
                          kind != MessageType::kBatchVitals)) {
    error_ = Result::kBadArgument;
  }
}

Result BatchEncoder::fail(Result error) {
  if (error_ == Result::kOk) error_ = error;
  return error_;
}

void BatchEncoder::multiply_by_element_states(BigUint& value) const {
  switch (kind_) {
    case MessageType::kBatchReadings:
      value.mul_small(static_cast<uint32_t>(set_.classes) * kConfidenceSteps + 1);
      break;
    case MessageType::kBatchDistributions:
      value.mul_binomial(kDistributionTotal + set_.classes - 1u, set_.classes - 1u);
      break;
    default: {
      const VitalsFields any = {0, 0, kNoReading, 0};
      BigUint digits;
      fold_vitals(set_, any, digits, value);
      break;
    }
  }
}

bool BatchEncoder::begin_entry(uint32_t age_s, MessageType kind) {
  if (error_ != Result::kOk) return false;
  if (kind != kind_ || age_s < previous_age_s_ || age_s - previous_age_s_ >= kBatchGapRadix ||
      count_ == 0xFF) {
    fail(Result::kBadArgument);
    return false;
  }
  value_.mul_add(kBatchGapRadix, age_s - previous_age_s_);
  previous_age_s_ = age_s;
  ++count_;
  multiply_by_element_states(value_);
  return true;
}

Result BatchEncoder::add_reading(uint32_t age_s, uint8_t label, uint8_t confidence_pct) {
  uint32_t state;
  if (!label_state(set_, label, confidence_pct, state)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchReadings)) return error_;
  value_.add_small(state);
  return Result::kOk;
}

Result BatchEncoder::add_distribution(uint32_t age_s, const uint8_t* percent) {
  uint16_t shares[kMaxWireClasses];
  if (!distribution_shares(set_, percent, shares)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchDistributions)) return error_;
  BigUint rank;
  BigUint count;
  rank_composition(shares, set_.classes, false, rank, count);
  value_.add(rank);
  return Result::kOk;
}

Result BatchEncoder::add_vitals(uint32_t age_s, const VitalsFields& vitals) {
  BigUint element;
  BigUint states;
  if (!fold_vitals(set_, vitals, element, states)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchVitals)) return error_;
  value_.add(element);
  return Result::kOk;
}

Result BatchEncoder::finish(Payload& out) {
  if (error_ != Result::kOk) return error_;
  if (count_ == 0) return Result::kBadArgument;
  BigUint states(1);
  uint8_t length = 1;
  for (uint8_t n = 0; n < count_; ++n) {
    states.mul_small(kBatchGapRadix);
    multiply_by_element_states(states);
    length = next_sequence_length(states, length);
    if (length > kMaxPayload) return Result::kTooLarge;
  }
  return emit(value_, length, port_for(set_, kind_), out);
}

// ---- airtime ------------------------------------------------------------------------------

uint32_t airtime_charge_ms(uint8_t payload_size, uint8_t sf, uint16_t bandwidth_khz) {
  // LoRaWAN 1.0.4 §4: MHDR 1, DevAddr 4, FCtrl 1, FCnt 2, FPort 1, MIC 4 around the payload.
  const uint32_t us = time_on_air_us(static_cast<uint16_t>(payload_size + 13), sf, bandwidth_khz);
  return (us + 999) / 1000;
}

bool eu868_data_rate(uint8_t dr, uint8_t& sf, uint16_t& bandwidth_khz) {
  // RP002-1.0.3 §2.4.3: DR0..DR5 are SF12..SF7 at 125 kHz, DR6 is SF7 at 250 kHz.
  if (dr > 6) return false;
  sf = dr == 6 ? 7 : static_cast<uint8_t>(12 - dr);
  bandwidth_khz = dr == 6 ? 250 : 125;
  return true;
}

uint16_t crc16_ccitt(const uint8_t* data, size_t length, uint16_t crc) {
  for (size_t i = 0; i < length; ++i) {
    crc = static_cast<uint16_t>(crc ^ (data[i] << 8));
    for (uint8_t bit = 0; bit < 8; ++bit) {
      crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
  }
  return crc;
}

// ---- ledger -------------------------------------------------------------------------------

void AirtimeLedger::begin(uint32_t duty_cycle_budget_ms, uint32_t duty_cycle_window_ms,
                          uint32_t daily_cap_ms, uint32_t daily_window_ms) {
  duty_budget_ms_ = duty_cycle_budget_ms;
  duty_window_ms_ = duty_cycle_window_ms;
  daily_cap_ms_ = daily_cap_ms;
  daily_window_ms_ = daily_window_ms;
  count_ = 0;
}

void AirtimeLedger::forget_oldest(uint32_t n) {
  count_ = static_cast<uint16_t>(count_ - n);
  for (uint32_t i = 0; i < count_; ++i) entries_[i] = entries_[i + n];
}

void AirtimeLedger::advance(uint32_t now_ms) {
  const uint32_t retention =
      daily_cap_ms_ != 0 && daily_window_ms_ > duty_window_ms_ ? daily_window_ms_ : duty_window_ms_;
  uint32_t expired = 0;
  while (expired < count_ && now_ms - entries_[expired].start >= retention) ++expired;
  forget_oldest(expired);
}

uint32_t AirtimeLedger::used(uint32_t now_ms, uint32_t window_ms) const {
  uint32_t total = 0;
  for (uint32_t i = 0; i < count_; ++i) {
    if (now_ms - entries_[i].start < window_ms) total += entries_[i].airtime;
  }
  return total;
}

uint32_t AirtimeLedger::used_hour_ms(uint32_t now_ms) {
  advance(now_ms);
  return used(now_ms, duty_window_ms_);
}

uint32_t AirtimeLedger::used_day_ms(uint32_t now_ms) {
  advance(now_ms);
  return used(now_ms, daily_window_ms_);
}

bool AirtimeLedger::can_send(uint32_t now_ms, uint32_t airtime_ms) {
  if (airtime_ms == 0) return false;
  advance(now_ms);
  if (used(now_ms, duty_window_ms_) + airtime_ms > duty_budget_ms_) return false;
  return daily_cap_ms_ == 0 || used(now_ms, daily_window_ms_) + airtime_ms <= daily_cap_ms_;
}

bool AirtimeLedger::record(uint32_t now_ms, uint32_t airtime_ms) {
  if (airtime_ms == 0) return false;
  advance(now_ms);
  if (count_ == kCapacity) {
    // Merge the two oldest: the second keeps its (later) start and takes both airtimes.
    entries_[1].airtime += entries_[0].airtime;
    forget_oldest(1);
  }
  entries_[count_].start = now_ms;
  entries_[count_].airtime = airtime_ms;
  ++count_;
  return true;
}

bool AirtimeLedger::try_record(uint32_t now_ms, uint32_t airtime_ms) {
  return can_send(now_ms, airtime_ms) && record(now_ms, airtime_ms);
}

uint32_t AirtimeLedger::clear_delay(uint32_t now_ms, uint32_t window_ms, uint32_t budget_ms,
                                    uint32_t airtime_ms) const {
  // Walk the window oldest first; once enough has aged out for the new one to fit, the answer
  // is when the last entry walked over leaves the window.
  uint32_t in_use = used(now_ms, window_ms);
  uint32_t delay = 0;
  for (uint32_t i = 0; i < count_ && in_use + airtime_ms > budget_ms; ++i) {
    const uint32_t age = now_ms - entries_[i].start;
    if (age < window_ms) {
      in_use -= entries_[i].airtime;
      delay = window_ms - age;
    }
  }
  return delay;
}

bool AirtimeLedger::next_allowed_ms(uint32_t now_ms, uint32_t airtime_ms, uint32_t& at_ms) {
  if (airtime_ms == 0 || airtime_ms > duty_budget_ms_ ||
      (daily_cap_ms_ != 0 && airtime_ms > daily_cap_ms_)) {
    return false;
  }
  advance(now_ms);
  uint32_t delay = clear_delay(now_ms, duty_window_ms_, duty_budget_ms_, airtime_ms);
  if (daily_cap_ms_ != 0) {
    const uint32_t daily = clear_delay(now_ms, daily_window_ms_, daily_cap_ms_, airtime_ms);
    if (daily > delay) delay = daily;
  }
  at_ms = now_ms + delay;
  return true;
}

}  // namespace lora_emotion
