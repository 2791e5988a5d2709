// LoraEmotionCore.cpp - encoders, fixed-capacity integer, airtime and ledger.
// Port of src/lora_emotion/{_radix,messages,airtime,budget}.py; see LoraEmotionCore.h.
#include "LoraEmotionCore.h"

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
  if (label >= set.classes || confidence_pct > 100) return false;
  state = static_cast<uint32_t>(label) * kConfidenceSteps + confidence_pct;
  return true;
}

Result emit(const BigUint& value, uint8_t length, uint8_t port, Payload& out) {
  if (length > kMaxPayload || !value.write_be(out.bytes, length)) return Result::kTooLarge;
  out.port = port;
  out.size = length;
  return Result::kOk;
}

// Digits of a Vitals payload folded into `value` (Horner): label, skin conductance, heart rate.
bool fold_vitals(const LabelSet& set, const VitalsFields& v, BigUint& value) {
  if (v.heart_rate_bpm < 0 && v.skin_conductance_centi_us < 0) return false;
  if (v.heart_rate_bpm > kHeartRateRadix - 2) return false;
  if (v.skin_conductance_centi_us > kSkinRadix - 2) return false;
  uint32_t label_digit = 0;
  if (v.label != kNoReading) {
    uint32_t state;
    if (!label_state(set, v.label, v.confidence_pct, state)) return false;
    label_digit = 1 + state;
  }
  value.mul_small(static_cast<uint32_t>(set.classes) * kConfidenceSteps + 2);
  value.add_small(label_digit);
  value.mul_small(kSkinRadix);
  value.add_small(v.skin_conductance_centi_us < 0 ? 0u : 1u + static_cast<uint32_t>(v.skin_conductance_centi_us));
  value.mul_small(kHeartRateRadix);
  value.add_small(v.heart_rate_bpm < 0 ? 0u : 1u + static_cast<uint32_t>(v.heart_rate_bpm));
  return true;
}

void multiply_by_vitals_states(const LabelSet& set, BigUint& value) {
  value.mul_small(static_cast<uint32_t>(set.classes) * kConfidenceSteps + 2);
  value.mul_small(kSkinRadix);
  value.mul_small(kHeartRateRadix);
}

// The composition rank of whole-percent shares summing to 100.
bool distribution_rank(const LabelSet& set, const uint8_t* percent, BigUint& rank) {
  uint16_t shares[kMaxWireClasses];
  uint32_t total = 0;
  for (uint8_t i = 0; i < set.classes; ++i) {
    shares[i] = percent[i];
    total += percent[i];
  }
  if (total != kDistributionTotal) return false;
  rank_composition(shares, set.classes, kDistributionTotal, rank);
  return true;
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
  for (uint8_t i = 0; i < kBytes; ++i) {
    digits_[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
  overflow_ = false;
}

void BigUint::mul_small(uint32_t factor) {
  uint32_t carry = 0;
  for (uint8_t i = 0; i < kBytes; ++i) {
    // 255 * (2^24 - 1) + (2^24 - 1) < 2^32: a byte limb keeps this within 32 bits, so the
    // Cortex-M0+ needs no 64-bit multiply helper.
    uint32_t t = digits_[i] * factor + carry;
    digits_[i] = static_cast<uint8_t>(t);
    carry = t >> 8;
  }
  if (carry != 0) overflow_ = true;
}

void BigUint::add_small(uint32_t addend) {
  uint32_t carry = addend;
  for (uint8_t i = 0; i < kBytes && carry != 0; ++i) {
    uint32_t t = digits_[i] + carry;
    digits_[i] = static_cast<uint8_t>(t);
    carry = t >> 8;
  }
  if (carry != 0) overflow_ = true;
}

void BigUint::add(const BigUint& other) {
  uint16_t carry = 0;
  for (uint8_t i = 0; i < kBytes; ++i) {
    uint16_t t = static_cast<uint16_t>(digits_[i] + other.digits_[i] + carry);
    digits_[i] = static_cast<uint8_t>(t);
    carry = t >> 8;
  }
  if (carry != 0 || other.overflow_) overflow_ = true;
}

void BigUint::sub(const BigUint& other) {
  int16_t borrow = 0;
  for (uint8_t i = 0; i < kBytes; ++i) {
    int16_t t = static_cast<int16_t>(digits_[i] - other.digits_[i] - borrow);
    borrow = t < 0 ? 1 : 0;
    digits_[i] = static_cast<uint8_t>(t + (borrow << 8));
  }
  if (other.overflow_) overflow_ = true;
}

void BigUint::decrement() {
  for (uint8_t i = 0; i < kBytes; ++i) {
    if (digits_[i]-- != 0) return;
  }
}

uint16_t BigUint::div_small(uint16_t divisor) {
  uint32_t remainder = 0;
  for (uint8_t i = kBytes; i-- > 0;) {
    uint32_t t = (remainder << 8) | digits_[i];
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
  for (uint8_t i = kBytes; i-- > 0;) {
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
  uint8_t length = top.length();
  return length == 0 ? 1 : length;
}

void rank_composition(const uint16_t* vector, uint8_t parts, uint32_t total, BigUint& rank) {
  // rank = sum over i < parts-1 of C(R_i + m_i, m_i) - C(R_i - c_i + m_i, m_i), where R_i is
  // what is left of the total before part i and m_i = parts - 1 - i (_radix.rank_composition).
  rank.set(0);
  uint32_t remaining = total;
  for (uint8_t i = 0; i + 1 < parts; ++i) {
    uint32_t c = vector[i];
    if (c == 0) continue;
    uint32_t m = static_cast<uint32_t>(parts - 1 - i);
    BigUint term(1);
    term.mul_binomial(remaining + m, m);
    rank.add(term);
    term.set(1);
    term.mul_binomial(remaining - c + m, m);
    rank.sub(term);
    remaining -= c;
  }
}

// ---- encoders -----------------------------------------------------------------------------

Result encode_reading(const LabelSet& set, uint8_t label, uint8_t confidence_pct, Payload& out) {
  uint32_t state;
  if (!valid_set(set) || !label_state(set, label, confidence_pct, state)) {
    return Result::kBadArgument;
  }
  uint8_t length = bytes_for_states(static_cast<uint32_t>(set.classes) * kConfidenceSteps + 1);
  return emit(BigUint(state), length, port_for(set, MessageType::kReading), out);
}

Result encode_distribution(const LabelSet& set, const uint8_t* percent, Payload& out) {
  BigUint rank;
  if (!valid_set(set) || !distribution_rank(set, percent, rank)) return Result::kBadArgument;
  BigUint states(1);
  states.mul_binomial(kDistributionTotal + set.classes - 1u, set.classes - 1u);
  return emit(rank, length_for_states(states), port_for(set, MessageType::kDistribution), out);
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
    value.mul_small(element);
    value.add_small(state);
    states.mul_small(element);
    length = next_sequence_length(states, length);
    if (length > kMaxPayload) return Result::kTooLarge;
  }
  return emit(value, length, port_for(set, MessageType::kFaces), out);
}

Result encode_summary(const LabelSet& set, uint32_t window_s, const uint16_t* counts,
                      uint16_t no_face, uint8_t mean_confidence_pct, Payload& out) {
  if (!valid_set(set) || window_s < 1 || window_s > kWindowRadix || mean_confidence_pct > 100) {
    return Result::kBadArgument;
  }
  uint16_t vector[kMaxWireClasses + 1];
  uint32_t total = no_face;
  bool any_class = false;
  for (uint8_t i = 0; i < set.classes; ++i) {
    vector[i] = counts[i];
    total += counts[i];
    any_class = any_class || counts[i] != 0;
  }
  vector[set.classes] = no_face;
  if (total > kSummaryMaxReadings || (!any_class && mean_confidence_pct != 0)) {
    return Result::kBadArgument;
  }
  // Graded rank: the vectors with a smaller sum come first (_radix.rank_bounded).
  const uint8_t parts = static_cast<uint8_t>(set.classes + 1);
  BigUint value;
  if (total != 0) {
    value.set(1);
    value.mul_binomial(total - 1 + parts, parts);
    BigUint rank;
    rank_composition(vector, parts, total, rank);
    value.add(rank);
  }
  value.mul_small(kWindowRadix);
  value.add_small(window_s - 1);
  value.mul_small(kConfidenceSteps);
  value.add_small(mean_confidence_pct);
  uint8_t length = value.length();
  if (value.overflowed()) return Result::kTooLarge;
  return emit(value, length == 0 ? 1 : length, port_for(set, MessageType::kSummary), out);
}

Result encode_vitals(const LabelSet& set, const VitalsFields& vitals, Payload& out) {
  BigUint value;
  if (!valid_set(set) || !fold_vitals(set, vitals, value)) return Result::kBadArgument;
  BigUint states(1);
  multiply_by_vitals_states(set, states);
  return emit(value, length_for_states(states), port_for(set, MessageType::kVitals), out);
}

Result encode_status(const StatusFields& s, Payload& out) {
  // Radices, most significant first (messages._STATUS_FIELDS); a value must be below its radix.
  static const uint32_t kRadices[] = {16, 16, 64, 64, 102, 1u << 20, 65536, kWindowRadix, 4,
                                      1024, kMaxSetId + 1u, 65536, 256, 4};
  const uint32_t uptime_min = s.uptime_s / 60;
  const uint32_t values[] = {
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
  for (uint8_t i = 0; i < sizeof(kRadices) / sizeof(kRadices[0]); ++i) {
    // Unsigned wrap-around turns battery -2 and window or budget 0 into huge values too.
    if (values[i] >= kRadices[i]) return Result::kBadArgument;
    value.mul_small(kRadices[i]);
    value.add_small(values[i]);
  }
  return emit(value, kStatusLength, kStatusPort, out);
}

Result quantise_weights(const uint32_t* weights, uint8_t count, uint8_t* percent_out) {
  // shares = floor(100 * w / sum); the shortfall goes one percent at a time to the largest
  // remainders, lower index first on ties. Exact, unlike the float version it mirrors.
  if (count == 0 || count > kMaxWireClasses) return Result::kBadArgument;
  const uint32_t kMaxSum = 0xFFFFFFFFu / kDistributionTotal;
  uint32_t sum = 0;
  for (uint8_t i = 0; i < count; ++i) {
    if (weights[i] > kMaxSum - sum) return Result::kBadArgument;
    sum += weights[i];
  }
  if (sum == 0) return Result::kBadArgument;
  uint32_t remainders[kMaxWireClasses];
  uint8_t given = 0;
  for (uint8_t i = 0; i < count; ++i) {
    uint32_t scaled = weights[i] * kDistributionTotal;
    percent_out[i] = static_cast<uint8_t>(scaled / sum);
    remainders[i] = scaled % sum;
    given = static_cast<uint8_t>(given + percent_out[i]);
  }
  // The remainders add up to sum * shortfall with each below sum, so more than `shortfall`
  // of them are non-zero: zeroing a picked one never makes it eligible again.
  for (uint8_t shortfall = static_cast<uint8_t>(kDistributionTotal - given); shortfall > 0; --shortfall) {
    uint8_t best = 0;
    for (uint8_t i = 1; i < count; ++i) {
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
    default:
      multiply_by_vitals_states(set_, value);
      break;
  }
}

bool BatchEncoder::begin_entry(uint32_t age_s, MessageType kind) {
  if (error_ != Result::kOk) return false;
  if (kind != kind_ || age_s < previous_age_s_ || age_s - previous_age_s_ >= kBatchGapRadix ||
      count_ == 0xFF) {
    fail(Result::kBadArgument);
    return false;
  }
  value_.mul_small(kBatchGapRadix);
  value_.add_small(age_s - previous_age_s_);
  previous_age_s_ = age_s;
  ++count_;
  return true;
}

Result BatchEncoder::add_reading(uint32_t age_s, uint8_t label, uint8_t confidence_pct) {
  uint32_t state;
  if (!label_state(set_, label, confidence_pct, state)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchReadings)) return error_;
  multiply_by_element_states(value_);
  value_.add_small(state);
  return Result::kOk;
}

Result BatchEncoder::add_distribution(uint32_t age_s, const uint8_t* percent) {
  BigUint rank;
  if (!distribution_rank(set_, percent, rank)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchDistributions)) return error_;
  multiply_by_element_states(value_);
  value_.add(rank);
  return Result::kOk;
}

Result BatchEncoder::add_vitals(uint32_t age_s, const VitalsFields& vitals) {
  BigUint element;
  if (!fold_vitals(set_, vitals, element)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchVitals)) return error_;
  multiply_by_element_states(value_);
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

uint32_t time_on_air_us(uint16_t phy_bytes, uint8_t sf, uint16_t bandwidth_khz) {
  if (sf < 7 || sf > 12 || (bandwidth_khz != 125 && bandwidth_khz != 250 && bandwidth_khz != 500) ||
      phy_bytes > 255) {
    return 0;
  }
  const uint32_t t_sym_us = (1u << sf) * 1000u / bandwidth_khz;  // exact: 8, 4 or 2 us per chip
  // The SX1276 datasheet mandates low-data-rate optimisation above 16 ms per symbol.
  const uint32_t de = t_sym_us > 16000 ? 1 : 0;
  // 8*PL - 4*SF + 28 + 16*CRC - 20*IH with CRC on and an explicit header; the numerator is
  // positive for every PHY payload LoRaWAN can have (13 bytes or more), so it stays unsigned
  // and the clamp at 0 blocks of the datasheet only matters for shorter test inputs.
  const uint32_t fixed = 4u * sf;
  const uint32_t num = 8u * phy_bytes + 44;
  const uint32_t den = 4 * (sf - 2 * de);
  const uint32_t blocks = num > fixed ? (num - fixed + den - 1) / den : 0;
  const uint32_t n_payload = 8 + blocks * 5;  // coding rate 4/5: 5 symbols per block
  const uint32_t quarter_symbols = 4u * 8 + 17 + 4 * n_payload;  // (8 + 4.25 + n) * 4
  return quarter_symbols * (t_sym_us / 4);
}

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
  head_ = 0;
  count_ = 0;
}

void AirtimeLedger::advance(uint32_t now_ms) {
  const uint32_t retention =
      daily_cap_ms_ != 0 && daily_window_ms_ > duty_window_ms_ ? daily_window_ms_ : duty_window_ms_;
  while (count_ != 0 && now_ms - starts_[head_] >= retention) {
    if (++head_ == kCapacity) head_ = 0;
    --count_;
  }
}

uint32_t AirtimeLedger::used(uint32_t now_ms, uint32_t window_ms) const {
  uint32_t total = 0;
  uint16_t slot = head_;
  for (uint16_t i = 0; i < count_; ++i) {
    if (now_ms - starts_[slot] < window_ms) total += airtimes_[slot];
    if (++slot == kCapacity) slot = 0;
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
    uint16_t second = static_cast<uint16_t>(head_ + 1 == kCapacity ? 0 : head_ + 1);
    airtimes_[second] += airtimes_[head_];
    head_ = second;
    --count_;
  }
  uint16_t slot = static_cast<uint16_t>(head_ + count_);
  if (slot >= kCapacity) slot = static_cast<uint16_t>(slot - kCapacity);
  starts_[slot] = now_ms;
  airtimes_[slot] = airtime_ms;
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
  uint16_t slot = head_;
  for (uint16_t i = 0; i < count_ && in_use + airtime_ms > budget_ms; ++i) {
    const uint32_t age = now_ms - starts_[slot];
    if (age < window_ms) {
      in_use -= airtimes_[slot];
      delay = window_ms - age;
    }
    if (++slot == kCapacity) slot = 0;
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
