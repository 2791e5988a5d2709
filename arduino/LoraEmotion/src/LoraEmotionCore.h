// LoraEmotionCore.h - the compact emotion wire format (format version 1), integers only.
//
// Why this file exists: the MKR WAN 1310's SAMD21 has no floating-point unit and 32 KB of RAM,
// so the encoder works the way the Python reference (src/lora_emotion/messages.py) defines the
// payloads - as one big-endian mixed-radix integer per message - with a small fixed-capacity
// unsigned integer instead of Python's unbounded int. Nothing here includes Arduino.h: the same
// source builds for the board, for host unit tests and for an ARMv6-M emulator.
//
// Every encoder writes into a caller-provided Payload and returns a Result; nothing allocates.
// tests/vectors/messages.json is the contract: the host and emulator tests require every vector
// to come out byte for byte.
#ifndef LORA_EMOTION_CORE_H
#define LORA_EMOTION_CORE_H

#include <stddef.h>
#include <stdint.h>

namespace lora_emotion {

// ---- wire constants (docs/payload-format.md) ----------------------------------------------
constexpr uint8_t kProtocolVersion = 1;
// KPN is reported to accept 51 B at every data rate: the EU868 DR0-DR2 limit with repeater
// compatibility (RP002-1.0.3 §2.4.6). Every payload is kept within it.
constexpr uint8_t kMaxPayload = 51;
constexpr uint8_t kThingsMlPort = 1;        // the 2021 demo's ThingsML uplinks
constexpr uint8_t kStatusPort = 2;          // Status message
constexpr uint8_t kCommandPort = 3;         // downlink commands (docs/downlink.md)
constexpr uint8_t kSetBlockBase = 16;       // port = 16 + 8 * set id + message type
constexpr uint8_t kSetBlockSize = 8;
constexpr uint8_t kMaxSetId = 23;           // 16 + 8 * 24 = 208 <= 223 (LoRaWAN 1.0.4 §4.3.2)
constexpr uint8_t kMaxWireClasses = 64;     // labels.MAX_CLASSES
constexpr uint8_t kConfidenceSteps = 101;   // confidence 0..100 %
constexpr uint8_t kDistributionTotal = 100; // shares in whole percent summing to 100
constexpr uint16_t kSummaryMaxReadings = 65535;
constexpr uint32_t kWindowRadix = 65536;    // window length 1..65536 s
constexpr uint16_t kHeartRateRadix = 252;   // absent, 0..250 bpm
constexpr uint16_t kSkinRadix = 10002;      // absent, 0.00..100.00 uS
constexpr uint16_t kBatchGapRadix = 4096;   // seconds between batch entries
constexpr uint8_t kStatusLength = 16;       // ceil(log2(product of status radices) / 8)

// Label values: a class index 0..K-1, or one of these.
constexpr uint8_t kNoFace = 0xFF;     // "no face" (the 2021 demo's class 7 for FER-2013)
constexpr uint8_t kNoReading = 0xFE;  // Vitals only: no emotion reading travels with them

enum class Result : uint8_t {
  kOk = 0,
  kBadArgument,  // a field outside its domain (label, confidence, sums, order of entries)
  kTooLarge,     // would not fit kMaxPayload bytes
};

enum class Mode : uint8_t { kReading = 0, kDistribution = 1, kSummary = 2, kVitals = 3 };

enum class CommandStatus : uint8_t {
  kNone = 0,
  kApplied = 1,
  kRejected = 2,
  kUnknownCommand = 3,
};

// Message type codes: the low three bits of the port (messages.MESSAGE_TYPES).
enum class MessageType : uint8_t {
  kReading = 0,
  kDistribution = 1,
  kFaces = 2,
  kSummary = 3,
  kVitals = 4,
  kBatchReadings = 5,
  kBatchDistributions = 6,
  kBatchVitals = 7,
};

// A label set as the device needs it: no names, only the id that goes into the port, the
// class count that sizes every field, and the fingerprint the status message reports.
struct LabelSet {
  uint8_t id;
  uint8_t classes;
  uint16_t fingerprint;  // CRC-16/CCITT-FALSE of the class names joined by '\n'
};

// The built-in sets 0..5 (labels.BUILTIN_SETS). Returns false for any other id.
constexpr uint8_t kBuiltinSets = 6;
bool builtin_label_set(uint8_t id, LabelSet& out);

struct Payload {
  uint8_t port;
  uint8_t size;
  uint8_t bytes[kMaxPayload];
};

struct Face {
  uint8_t label;           // class index (never kNoFace)
  uint8_t confidence_pct;  // 0..100
};

struct VitalsFields {
  int16_t heart_rate_bpm;             // 0..250, or -1 when absent
  int16_t skin_conductance_centi_us;  // 0..10000 (0.01 uS steps), or -1 when absent
  uint8_t label;                      // class index, kNoFace or kNoReading
  uint8_t confidence_pct;             // 0..100; ignored for kNoFace and kNoReading
};

struct StatusFields {
  uint8_t protocol_version;   // 0..15
  uint8_t firmware[3];        // major 0..15, minor 0..63, patch 0..63
  int8_t battery_percent;     // 0..100, or -1 when unknown
  uint32_t uptime_s;          // carried in whole minutes, saturating at 2^20 - 1
  uint32_t dropped;           // saturating at 65535
  uint32_t window_s;          // 1..65536
  Mode mode;
  uint16_t daily_budget_s;    // 1..1024
  uint8_t label_set_id;       // 0..23
  uint16_t label_set_fingerprint;
  uint8_t command_seq;
  CommandStatus command_status;
};

// ---- encoders -----------------------------------------------------------------------------
// Each returns kOk and fills `out` (port, size, bytes), or an error and leaves `out` unusable.

// One prediction. label: class index with confidence_pct 0..100, or kNoFace (confidence
// ignored).
Result encode_reading(const LabelSet& set, uint8_t label, uint8_t confidence_pct, Payload& out);
// percent[set.classes], each 0..100, summing to exactly 100 (see quantise_weights).
Result encode_distribution(const LabelSet& set, const uint8_t* percent, Payload& out);
// Every face of one frame, in the model's order; count may be 0.
Result encode_faces(const LabelSet& set, const Face* faces, uint8_t count, Payload& out);
// counts[set.classes] plus no_face, at most 65535 readings in all. mean_confidence_pct is the
// dominant class's mean; it must be 0 when no class was counted.
Result encode_summary(const LabelSet& set, uint32_t window_s, const uint16_t* counts,
                      uint16_t no_face, uint8_t mean_confidence_pct, Payload& out);
Result encode_vitals(const LabelSet& set, const VitalsFields& vitals, Payload& out);
Result encode_status(const StatusFields& status, Payload& out);
// The same message from its kStatusDigits digits, most significant first, as encode_status
// derives them: protocol version, firmware major, minor, patch, battery + 1 (0 unknown),
// uptime in minutes (saturated), dropped (saturated), window_s - 1, mode,
// daily_budget_s - 1, label set id, fingerprint, command sequence, command status. The relay
// fills these from its own state, which needs no StatusFields in between.
constexpr uint8_t kStatusDigits = 14;
Result encode_status_digits(const uint32_t* digits, Payload& out);

// Largest-remainder quantisation of integer weights (any scale) into whole percent summing to
// exactly 100; ties go to the lower index (messages.quantise_distribution with exact integer
// arithmetic). Needs a positive sum of at most 42 949 672.
Result quantise_weights(const uint32_t* weights, uint8_t count, uint8_t* percent_out);

// Whole-byte length of the shortest big-endian encoding of any of `states` values (>= 1).
// Inline: encode_reading is its one caller.
inline uint8_t bytes_for_states(uint32_t states) {
  uint32_t top = states - 1;
  uint8_t length = 1;
  while (top > 0xFF) {
    top >>= 8;
    ++length;
  }
  return length;
}

// ---- fixed-capacity unsigned integer --------------------------------------------------------

// Little-endian bytes with a sticky overflow flag: an intermediate that does not fit makes the
// final write_be fail, which the encoders report as kTooLarge. 64 bytes hold every
// intermediate of a payload that fits 51 bytes (binomials grow by at most a factor of n before
// the exact division in mul_binomial).
class BigUint {
 public:
  static constexpr uint8_t kBytes = 64;

  BigUint() { set(0); }
  explicit BigUint(uint32_t value) { set(value); }
  // Left unset, for an output that its callee sets first (rank_composition's rank and
  // count): a set(0) here would be a call for nothing.
  enum class Unset : uint8_t { kUnset };
  explicit BigUint(Unset) {}

  void set(uint32_t value);
  // *this = *this * factor + addend; both below 2^24.
  void mul_add(uint32_t factor, uint32_t addend);
  void mul_small(uint32_t factor) { mul_add(factor, 0); }
  void add_small(uint32_t addend) { mul_add(1, addend); }
  void add(const BigUint& other) { combine(other, 0, 0); }
  void sub(const BigUint& other) { combine(other, 0, 0xFF); }  // requires *this >= other
  // *this = other - 1 - *this, which needs no copy: the inverted digits are -*this - 1.
  // Requires *this < other.
  void complement_add(const BigUint& other) { combine(other, 0xFF, 0); }
  void decrement();                   // requires *this > 0
  // Returns the remainder; divisor > 0. Inline, like write_be: each has one caller in the
  // encoders (mul_binomial, emit).
  uint16_t div_small(uint16_t divisor) {
    uint32_t remainder = 0;
    for (unsigned i = kBytes; i-- > 0;) {
      const uint32_t t = (remainder << 8) | digits_[i];
      digits_[i] = static_cast<uint8_t>(t / divisor);
      remainder = t % divisor;
    }
    return static_cast<uint16_t>(remainder);
  }
  // *this *= C(n, k), exactly: after step j the value is x * C(n - k + j, j), and
  // x * C(n - k + j - 1, j - 1) * (n - k + j) is always divisible by j.
  void mul_binomial(uint32_t n, uint32_t k);
  int compare(const BigUint& other) const;  // -1, 0, 1
  uint8_t length() const;                   // significant bytes, 0 for zero
  bool overflowed() const { return overflow_; }
  // Big-endian into out[0..len); false when the value needs more than len bytes.
  bool write_be(uint8_t* out, uint8_t len) const {
    if (overflow_ || length() > len) return false;
    for (unsigned i = 0; i < len; ++i) out[len - 1 - i] = digits_[i];
    return true;
  }

 private:
  // Adds the digits of both, each XORed with its mask (0 or 0xFF).
  void combine(const BigUint& other, uint32_t invert_this, uint32_t invert_other);

  bool overflow_;  // first: Thumb-1 byte loads reach 31 bytes, not the 64 past the digits
  uint8_t digits_[kBytes];
};

// Bytes needed for any value below `states` (at least 1), or 0xFF if `states` overflowed.
uint8_t length_for_states(const BigUint& states);

// Rank of `vector` (parts entries) in lexicographic order among the vectors of the same
// total, or in graded order (smaller totals first, then lexicographic) among all vectors;
// `count` is the number of vectors ranked: those of its total, or with graded order those
// up to its total.
// Returns the vector's total.
uint32_t rank_composition(const uint16_t* vector, uint8_t parts, bool graded, BigUint& rank, BigUint& count);

// Several readings, distributions or vitals of one label set, each with its age. Add entries
// newest first (ages non-decreasing, each at most 4095 s after the previous; the first at
// most 4095 s old), then finish().
class BatchEncoder {
 public:
  // kind: kBatchReadings, kBatchDistributions or kBatchVitals.
  BatchEncoder(const LabelSet& set, MessageType kind);
  Result add_reading(uint32_t age_s, uint8_t label, uint8_t confidence_pct);
  Result add_distribution(uint32_t age_s, const uint8_t* percent);
  Result add_vitals(uint32_t age_s, const VitalsFields& vitals);
  Result finish(Payload& out);

 private:
  bool begin_entry(uint32_t age_s, MessageType kind);
  void multiply_by_element_states(BigUint& value) const;
  Result fail(Result error);

  LabelSet set_;
  MessageType kind_;
  uint8_t count_;
  Result error_;
  uint32_t previous_age_s_;
  BigUint value_;
};

// ---- airtime (lora_emotion.airtime.time_on_air_us, line by line) ---------------------------

// Time on air of one LoRaWAN packet in whole microseconds (lora_emotion.airtime.time_on_air_us
// with LoRaWAN's settings: coding rate 4/5, 8 preamble symbols, explicit header, CRC on,
// low-data-rate optimisation when a symbol lasts more than 16 ms), or 0 for an invalid
// argument. phy_bytes is the whole PHY payload: FRMPayload + 13 without FOpts.
// constexpr: the relay charges every join attempt a constant worked out at compile time. In
// C++11's form (one return statement per function), because the board core builds with
// -std=gnu++11: the steps are the small functions in `toa`.
namespace toa {
// A symbol lasts 2^sf chips of 8, 4 or 2 us (125, 250 or 500 kHz): a power of two, so no
// division. halvings (0, 1, 2) is log2(bandwidth / 125) from bandwidth / 128 (0, 1, 3).
constexpr uint32_t halvings(uint16_t bandwidth_khz) { return (bandwidth_khz >> 7) - (bandwidth_khz >> 8); }
constexpr bool valid(uint16_t phy_bytes, uint8_t sf, uint16_t bandwidth_khz) {
  return sf - 7u <= 5u && halvings(bandwidth_khz) <= 2 && 125u << halvings(bandwidth_khz) == bandwidth_khz &&
         phy_bytes <= 255;
}
// The SX1276 datasheet mandates low-data-rate optimisation above 16 ms per symbol, which is
// 2^(sf + 3 - halvings) us >= 16384.
constexpr uint32_t low_rate(uint8_t sf, uint32_t halvings) { return sf - halvings >= 11 ? 1 : 0; }
// ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) with CRC on and an explicit
// header; the numerator is positive for every PHY payload LoRaWAN can have (13 bytes or
// more), so it stays unsigned, and the clamp at 0 blocks only matters for shorter test inputs.
constexpr uint32_t blocks(uint16_t phy_bytes, uint8_t sf, uint32_t de) {
  return 8u * phy_bytes + 44 > 4u * sf ? (8u * phy_bytes + 44 - 4u * sf + 4 * (sf - 2 * de) - 1) / (4 * (sf - 2 * de))
                                       : 0;
}
// (8 + 4.25 + 8 + 5 * blocks) symbols (coding rate 4/5: 5 symbols per block), in quarters.
constexpr uint32_t quarter_symbols(uint32_t blocks) { return 4u * 8 + 17 + 4 * (8 + blocks * 5); }
}  // namespace toa

constexpr uint32_t time_on_air_us(uint16_t phy_bytes, uint8_t sf, uint16_t bandwidth_khz) {
  // quarter symbols times t_sym_us / 4
  return toa::valid(phy_bytes, sf, bandwidth_khz)
             ? toa::quarter_symbols(toa::blocks(phy_bytes, sf, toa::low_rate(sf, toa::halvings(bandwidth_khz))))
                   << (sf + 1 - toa::halvings(bandwidth_khz))
             : 0;
}

// What a budget is charged for one LoRaWAN uplink: ceil(time on air / 1 ms)
// (lora_emotion.budget.airtime_charge_ms). This and the small functions below are inline:
// the relay calls each from one place, where the body costs less flash than a call.
inline uint32_t airtime_charge_ms(uint8_t payload_size, uint8_t sf, uint16_t bandwidth_khz = 125) {
  // LoRaWAN 1.0.4 §4: MHDR 1, DevAddr 4, FCtrl 1, FCnt 2, FPort 1, MIC 4 around the payload.
  const uint32_t us = time_on_air_us(static_cast<uint16_t>(payload_size + 13), sf, bandwidth_khz);
  return (us + 999) / 1000;
}

// EU868 DR0..DR6 (RP002-1.0.3 §2.4.3). Returns false for any other index.
inline bool eu868_data_rate(uint8_t dr, uint8_t& sf, uint16_t& bandwidth_khz) {
  // RP002-1.0.3 §2.4.3: DR0..DR5 are SF12..SF7 at 125 kHz, DR6 is SF7 at 250 kHz.
  if (dr > 6) return false;
  sf = dr == 6 ? 7 : static_cast<uint8_t>(12 - dr);
  bandwidth_khz = dr == 6 ? 250 : 125;
  return true;
}

// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as labels.crc16_ccitt.
inline uint16_t crc16_ccitt(const uint8_t* data, size_t length, uint16_t crc = 0xFFFF) {
  // In the top half of a register: the bit shifted out is the sign bit, and no step needs
  // a 16-bit truncation.
  uint32_t c = static_cast<uint32_t>(crc) << 16;
  for (size_t i = 0; i < length; ++i) {
    c ^= static_cast<uint32_t>(data[i]) << 24;
    for (unsigned bit = 0; bit < 8; ++bit) {
      c = static_cast<int32_t>(c) < 0 ? (c << 1) ^ 0x10210000u : c << 1;
    }
  }
  return static_cast<uint16_t>(c >> 16);
}

// ---- airtime ledger (lora_emotion.budget.AirtimeLedger) -----------------------------------

#ifndef LORA_EMOTION_LEDGER_CAPACITY
// Transmissions remembered exactly (8 bytes each). Beyond that the two oldest are merged, so
// memory never limits how many uplinks a day may carry. Raise it (for example
// -DLORA_EMOTION_LEDGER_CAPACITY=256) to keep more history exact if RAM allows.
#define LORA_EMOTION_LEDGER_CAPACITY 56
#endif

// Rule 1: in any sliding duty-cycle window the airtime of transmissions that started in it,
// plus the one about to start, is at most the duty-cycle budget. Rule 2: the same over the
// daily window and the daily cap. Times are millis() values; ages are computed as
// now - start in unsigned arithmetic, which stays right across the 49.7-day wrap because
// entries are forgotten within a day.
//
// Same rules and results as lora_emotion.budget.AirtimeLedger while fewer than kCapacity
// transmissions are remembered. When it is full, AirtimeLedger refuses to send; this
// ledger instead merges the two oldest entries into one with the later start and the summed
// airtime (lora_emotion.aggregator.DeviceLedger is the Python twin). Any window that holds
// the earlier start also holds the later one, so a merged entry is counted at least wherever
// its parts were: the ledger can only over-count, never under-count.
class AirtimeLedger {
 public:
  static constexpr uint16_t kCapacity = LORA_EMOTION_LEDGER_CAPACITY;

  // daily_cap_ms 0 means no daily cap (history then lasts one duty-cycle window).
  void begin(uint32_t duty_cycle_budget_ms = 36000, uint32_t duty_cycle_window_ms = 3600000,
             uint32_t daily_cap_ms = 30000, uint32_t daily_window_ms = 86400000) {
    duty_budget_ms_ = duty_cycle_budget_ms;
    duty_window_ms_ = duty_cycle_window_ms;
    daily_cap_ms_ = daily_cap_ms;
    daily_window_ms_ = daily_window_ms;
    count_ = 0;
  }
  void set_daily_cap_ms(uint32_t daily_cap_ms) { daily_cap_ms_ = daily_cap_ms; }
  uint32_t daily_cap_ms() const { return daily_cap_ms_; }

  bool can_send(uint32_t now_ms, uint32_t airtime_ms);
  // Remembers a transmission that started now (false only for airtime_ms 0).
  bool record(uint32_t now_ms, uint32_t airtime_ms);
  // Inline, like the two below: each is two calls, and a function around them costs more.
  bool try_record(uint32_t now_ms, uint32_t airtime_ms) {
    return can_send(now_ms, airtime_ms) && record(now_ms, airtime_ms);
  }
  uint32_t used_hour_ms(uint32_t now_ms) {
    advance(now_ms);
    return used(now_ms, duty_window_ms_);
  }
  uint32_t used_day_ms(uint32_t now_ms) {
    advance(now_ms);
    return used(now_ms, daily_window_ms_);
  }
  // Earliest time at or after now when can_send becomes true, assuming nothing else is
  // recorded; false when the airtime alone exceeds a budget (it can never be sent).
  bool next_allowed_ms(uint32_t now_ms, uint32_t airtime_ms, uint32_t& at_ms);
  uint16_t size() const { return count_; }

 private:
  void advance(uint32_t now_ms);
  void forget_oldest(uint32_t n);
  uint32_t used(uint32_t now_ms, uint32_t window_ms) const;
  uint32_t clear_delay(uint32_t now_ms, uint32_t window_ms, uint32_t budget_ms,
                       uint32_t airtime_ms) const;

  uint32_t daily_cap_ms_;  // first: measured smallest
  uint32_t duty_budget_ms_;
  uint32_t duty_window_ms_;
  uint32_t daily_window_ms_;
  uint16_t count_;
  struct Entry {
    uint32_t start;
    uint32_t airtime;
  };
  Entry entries_[kCapacity];  // oldest first
};

}  // namespace lora_emotion

#endif  // LORA_EMOTION_CORE_H
