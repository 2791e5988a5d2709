// LoraEmotionCore.cpp - encoders, fixed-capacity integer and ledger (the airtime and CRC
// functions are inline in the header).
// Port of src/lora_emotion/{_radix,messages,airtime,budget}.py; see LoraEmotionCore.h.
#include "LoraEmotionCore.h"

#include <string.h>

namespace lora_emotion {

namespace {

// The port of a message of a valid set, or 0 (never a set's port) for an invalid set: one
// call both checks the set and yields the port. Forced inline, like label_state and
// fold_vitals: GCC would keep them out of line, and in place each costs less than its call.
__attribute__((always_inline)) inline uint8_t port_for(const LabelSet& set, MessageType type) {
  if (set.classes < 2 || set.classes > kMaxWireClasses || set.id > kMaxSetId) return 0;
  return static_cast<uint8_t>(kSetBlockBase + kSetBlockSize * set.id + static_cast<uint8_t>(type));
}

// 0 .. 101*K: a class with its confidence, or 101*K for "no face"; kNoState for a label or
// confidence outside its domain.
constexpr uint32_t kNoState = 0xFFFFFFFF;
__attribute__((always_inline)) inline uint32_t label_state(const LabelSet& set, uint8_t label,
                                                            uint8_t confidence_pct) {
  if (label == kNoFace) return static_cast<uint32_t>(set.classes) * kConfidenceSteps;
  if (label >= set.classes || confidence_pct > 100) return kNoState;
  return static_cast<uint32_t>(label) * kConfidenceSteps + confidence_pct;
}

Result emit(const BigUint& value, uint8_t length, uint8_t port, Payload& out) {
  if (length > kMaxPayload || !value.write_be(out.bytes, length)) return Result::kTooLarge;
  out.port = port;
  out.size = length;
  return Result::kOk;
}

// A vital's digit: 0 when absent (negative), else value + 1; without a branch, the sign
// (arithmetic shift: all ones for a negative value) masks it to 0.
inline uint32_t vital_digit(int32_t value) {
  return static_cast<uint32_t>(value + 1) & ~static_cast<uint32_t>(value >> 31);
}

// The radix of a Vitals payload's label digit (absent, a class with its confidence, or "no
// face": 101 K + 2), and kVitalsRadix, that of its two vitals digits folded as one (together
// they stay below 2^24: 10002 * 252).
uint32_t vitals_label_radix(const LabelSet& set) {
  return static_cast<uint32_t>(set.classes) * kConfidenceSteps + 2;
}
constexpr uint32_t kVitalsRadix = static_cast<uint32_t>(kSkinRadix) * kHeartRateRadix;

// A Vitals payload's digits (label, skin conductance, heart rate, most significant first)
// folded into value (Horner).
__attribute__((always_inline)) inline bool fold_vitals(const LabelSet& set, const VitalsFields& v,
                                                       BigUint& value) {
  uint32_t label = 0;
  if (v.label != kNoReading) {
    label = label_state(set, v.label, v.confidence_pct);
    if (label == kNoState) return false;
    ++label;
  }
  // Absent (negative) is digit 0, a value v is v + 1.
  const uint32_t skin = vital_digit(v.skin_conductance_centi_us);
  const uint32_t heart = vital_digit(v.heart_rate_bpm);
  if ((skin | heart) == 0 || skin >= kSkinRadix || heart >= kHeartRateRadix) return false;
  value.mul_add(vitals_label_radix(set), label);
  value.mul_add(kVitalsRadix, skin * kHeartRateRadix + heart);
  return true;
}

// Shares summing to 100 widened for rank_composition.
bool distribution_shares(const LabelSet& set, const uint8_t* percent, uint16_t* shares) {
  uint32_t total = 0;
  for (unsigned i = 0; i < set.classes; ++i) total += shares[i] = percent[i];
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
  static const uint8_t kClasses[kBuiltinSets] = {7, 8, 3, 3, 8, 7};
  static const uint16_t kFingerprints[kBuiltinSets] = {65306, 34894, 63836, 13019, 60765, 57382};
  if (id >= kBuiltinSets) return false;
  out.id = id;
  out.classes = kClasses[id];
  out.fingerprint = kFingerprints[id];
  return true;
}

// ---- BigUint ------------------------------------------------------------------------------

void BigUint::set(uint32_t value) {
  memset(static_cast<void*>(this), 0, sizeof(*this));  // the digits and the overflow flag
  memcpy(digits_, &value, 4);  // every target of this library is little-endian
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

void BigUint::combine(const BigUint& other, uint32_t invert_this, uint32_t invert_other) {
  // Subtraction adds the two's complement of other (its inverted digits plus one);
  // complement_add adds other to the inverted digits of *this.
  uint32_t carry = invert_other & 1;
  for (unsigned i = 0; i < kBytes; ++i) {
    const uint32_t t = (digits_[i] ^ invert_this) + (other.digits_[i] ^ invert_other) + carry;
    digits_[i] = static_cast<uint8_t>(t);
    carry = t >> 8;
  }
  // A sum carries out on overflow; a difference carries out unless it went below zero, which
  // the callers rule out.
  if (carry != ((invert_this | invert_other) & 1) || other.overflow_) overflow_ = true;
}

void BigUint::decrement() {
  for (unsigned i = 0; i < kBytes; ++i) {
    if (digits_[i]-- != 0) return;
  }
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

uint8_t length_for_states(const BigUint& states) {
  BigUint top;
  top.complement_add(states);  // states - 1
  if (top.overflowed()) return 0xFF;
  const uint8_t length = top.length();
  return length == 0 ? 1 : length;
}

uint32_t rank_composition(const uint16_t* vector, uint8_t parts, bool graded, BigUint& rank, BigUint& count) {
  // Counted from the end, lexicographic order ranks v among the vectors of its total n as
  // C(n + p - 1, p - 1) - 1 - sum over j = 1..p-1 of C(T_j + j - 1, j), with T_j the sum of
  // the last j entries (Pascal's rule telescopes _radix.rank_composition's differences into
  // this). Graded order puts the C(n - 1 + p, p) vectors of smaller totals first, which
  // turns the leading term into C(n + p, p).
  BigUint term(BigUint::Unset::kUnset);  // set(1) before each use
  uint32_t tail = 0;
  rank.set(0);
  for (unsigned j = 1; j < parts; ++j) {
    tail += vector[parts - j];
    term.set(1);
    term.mul_binomial(tail + j - 1, j);
    rank.add(term);
  }
  tail += vector[0];
  const uint32_t k = parts - 1u + graded;
  count.set(1);
  count.mul_binomial(tail + k, k);
  rank.complement_add(count);
  return tail;
}

// ---- encoders -----------------------------------------------------------------------------

Result encode_reading(const LabelSet& set, uint8_t label, uint8_t confidence_pct, Payload& out) {
  const uint8_t port = port_for(set, MessageType::kReading);
  const uint32_t state = label_state(set, label, confidence_pct);
  if (port == 0 || state == kNoState) return Result::kBadArgument;
  // At most 2 bytes (101 * 64 + 1 states): written directly, big-endian, no BigUint.
  uint32_t rest = state;
  const uint8_t length = bytes_for_states(static_cast<uint32_t>(set.classes) * kConfidenceSteps + 1);
  out.port = port;
  out.size = length;
  for (unsigned i = length; i-- > 0; rest >>= 8) out.bytes[i] = static_cast<uint8_t>(rest);
  return Result::kOk;
}

Result encode_distribution(const LabelSet& set, const uint8_t* percent, Payload& out) {
  uint16_t shares[kMaxWireClasses];
  const uint8_t port = port_for(set, MessageType::kDistribution);
  if (port == 0) return Result::kBadArgument;
  for (unsigned i = 0; i < set.classes; ++i) shares[i] = percent[i];
  BigUint rank(BigUint::Unset::kUnset);
  BigUint count(BigUint::Unset::kUnset);
  // The rank's walk over the shares yields their sum, checked afterwards: out is untouched
  // until emit.
  if (rank_composition(shares, set.classes, false, rank, count) != kDistributionTotal) {
    return Result::kBadArgument;
  }
  return emit(rank, length_for_states(count), port, out);
}

Result encode_faces(const LabelSet& set, const Face* faces, uint8_t count, Payload& out) {
  const uint8_t port = port_for(set, MessageType::kFaces);
  if (port == 0) return Result::kBadArgument;
  const uint32_t element = static_cast<uint32_t>(set.classes) * kConfidenceSteps;
  BigUint value;
  BigUint states(1);
  uint8_t length = 1;
  for (unsigned i = 0; i < count; ++i) {
    const uint32_t state = label_state(set, faces[i].label, faces[i].confidence_pct);
    if (faces[i].label == kNoFace || state == kNoState) {
      return Result::kBadArgument;
    }
    value.mul_add(element, state);
    states.mul_small(element);
    length = next_sequence_length(states, length);
    if (length > kMaxPayload) return Result::kTooLarge;
  }
  return emit(value, length, port, out);
}

Result encode_summary(const LabelSet& set, uint32_t window_s, const uint16_t* counts,
                      uint16_t no_face, uint8_t mean_confidence_pct, Payload& out) {
  const uint8_t port = port_for(set, MessageType::kSummary);
  static_assert(kWindowRadix == 1u << 16 && kSummaryMaxReadings == 0xFFFF, "tested by shifts");
  if (port == 0 || (window_s - 1) >> 16 != 0 || mean_confidence_pct > 100) {
    return Result::kBadArgument;
  }
  uint16_t vector[kMaxWireClasses + 1];
  for (unsigned i = 0; i < set.classes; ++i) vector[i] = counts[i];
  vector[set.classes] = no_face;
  // Graded rank: the vectors with a smaller sum come first (_radix.rank_bounded). The rank's
  // walk yields the total, checked afterwards: out is untouched until emit.
  BigUint value(BigUint::Unset::kUnset);
  BigUint count(BigUint::Unset::kUnset);
  const uint32_t total = rank_composition(vector, static_cast<uint8_t>(set.classes + 1), true, value, count);
  if (total >> 16 != 0 || (total == no_face && mean_confidence_pct != 0)) {
    return Result::kBadArgument;  // too many readings, or a mean confidence without a class
  }
  value.mul_add(kWindowRadix, window_s - 1);
  value.mul_add(kConfidenceSteps, mean_confidence_pct);
  const uint8_t length = value.length();
  return emit(value, length == 0 ? 1 : length, port, out);  // kTooLarge if it overflowed
}

Result encode_vitals(const LabelSet& set, const VitalsFields& vitals, Payload& out) {
  BigUint value;
  const uint8_t port = port_for(set, MessageType::kVitals);
  if (port == 0 || !fold_vitals(set, vitals, value)) return Result::kBadArgument;
  BigUint states(vitals_label_radix(set));
  states.mul_small(kVitalsRadix);
  return emit(value, length_for_states(states), port, out);
}

Result encode_status(const StatusFields& s, Payload& out) {
  const uint32_t uptime_min = s.uptime_s / 60;
  const uint32_t digits[kStatusDigits] = {
      s.protocol_version,
      s.firmware[0],
      s.firmware[1],
      s.firmware[2],
      static_cast<uint32_t>(s.battery_percent + 1),  // 0 unknown, else 1 + percent
      // saturating, tested by shifts: no literal-pool words for 2^20 or 65535
      uptime_min >> 20 == 0 ? uptime_min : (1u << 20) - 1,
      s.dropped >> 16 == 0 ? s.dropped : 65535,
      s.window_s - 1,
      static_cast<uint32_t>(s.mode),
      s.daily_budget_s - 1u,
      s.label_set_id,
      s.label_set_fingerprint,
      s.command_seq,
      static_cast<uint32_t>(s.command_status),
  };
  return encode_status_digits(digits, out);
}

Result encode_status_digits(const uint32_t* digits, Payload& out) {
  // Radices, most significant first (messages._STATUS_FIELDS), as powers of two up to 2^20
  // (the exponent) or as themselves (24 label sets, 102 battery states).
  static const uint8_t kRadices[kStatusDigits] = {4, 4, 6, 6, 102, 20, 16,
                                                  16, 2, 10, kMaxSetId + 1u, 16, 8, 2};
  BigUint value;
  for (unsigned i = 0; i < kStatusDigits; ++i) {
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
    sum += weights[i];
    if (sum < weights[i]) return Result::kBadArgument;  // wrapped past 2^32
  }
  if (sum - 1 >= kMaxSum) return Result::kBadArgument;  // 0, or 100 * sum needs 33 bits
  uint32_t remainders[kMaxWireClasses];
  uint32_t shortfall = kDistributionTotal;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t scaled = weights[i] * kDistributionTotal;
    const uint32_t share = scaled / sum;
    percent_out[i] = static_cast<uint8_t>(share);
    remainders[i] = scaled % sum;
    shortfall -= share;
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
  if (port_for(set, kind) == 0 || (kind != MessageType::kBatchReadings &&
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
      value.mul_small(vitals_label_radix(set_));
      value.mul_small(kVitalsRadix);
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
  value_.mul_add(kBatchGapRadix, age_s - previous_age_s_);
  previous_age_s_ = age_s;
  ++count_;
  multiply_by_element_states(value_);
  return true;
}

Result BatchEncoder::add_reading(uint32_t age_s, uint8_t label, uint8_t confidence_pct) {
  const uint32_t state = label_state(set_, label, confidence_pct);
  if (state == kNoState) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchReadings)) return error_;
  value_.add_small(state);
  return Result::kOk;
}

Result BatchEncoder::add_distribution(uint32_t age_s, const uint8_t* percent) {
  uint16_t shares[kMaxWireClasses];
  if (!distribution_shares(set_, percent, shares)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchDistributions)) return error_;
  BigUint rank(BigUint::Unset::kUnset);
  BigUint count(BigUint::Unset::kUnset);
  rank_composition(shares, set_.classes, false, rank, count);
  value_.add(rank);
  return Result::kOk;
}

Result BatchEncoder::add_vitals(uint32_t age_s, const VitalsFields& vitals) {
  BigUint element;
  if (!fold_vitals(set_, vitals, element)) return fail(Result::kBadArgument);
  if (!begin_entry(age_s, MessageType::kBatchVitals)) return error_;
  value_.add(element);
  return Result::kOk;
}

Result BatchEncoder::finish(Payload& out) {
  if (error_ != Result::kOk) return error_;
  if (count_ == 0) return Result::kBadArgument;
  BigUint states(1);
  uint8_t length = 1;
  for (unsigned n = 0; n < count_; ++n) {
    states.mul_small(kBatchGapRadix);
    multiply_by_element_states(states);
    length = next_sequence_length(states, length);
    if (length > kMaxPayload) return Result::kTooLarge;
  }
  return emit(value_, length, port_for(set_, kind_), out);
}

// ---- ledger -------------------------------------------------------------------------------

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
