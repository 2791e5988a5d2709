// LoraEmotionRelay.cpp - frames, I2C queue, aggregation window, scheduler, downlinks, log.
// The rules implemented here are stated in docs/arduino.md; keep the two in step.
#include "LoraEmotionRelay.h"

#include <string.h>

namespace lora_emotion {

namespace {

// Every join attempt is charged as a 23-byte join request at SF12, the worst case.
constexpr uint32_t kJoinChargeMs = (time_on_air_us(23, 12, 125) + 999) / 1000;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Mean rounded half up, in integers, or `none` for no values. Not inlined: one copy serves
// its four callers.
__attribute__((noinline)) uint32_t rounded_mean(uint32_t sum, uint32_t n, uint32_t none) {
  return n == 0 ? none : (2 * sum + n) / (2 * n);
}

// CRC and payload of a frame whose length byte is known to be in range.
FrameResult check_frame(const uint8_t* frame, FrameFields& out) {
  // A CRC run over the message and its own big-endian CRC ends at 0, and only that CRC makes
  // it end there (the last 16 steps are a bijection of the register), so the frame's CRC is
  // checked without reading it.
  const uint8_t payload_length = frame[2];
  if (crc16_ccitt(frame + 1, 4u + payload_length) != 0) return FrameResult::kChecksum;
  return decode_frame_payload(frame[1], frame + 3, payload_length, out);
}

// decode_frame's body, inline in the relay's one caller (-20 B); decode_frame is the same
// function for everyone else.
__attribute__((always_inline)) inline FrameResult decode_whole_frame(const uint8_t* data, uint8_t length,
                                                                     FrameFields& out) {
  if (length < kFrameOverhead) return FrameResult::kLength;
  if (data[0] != kFrameSync) return FrameResult::kSync;
  if (data[2] > kMaxFramePayload || length != kFrameOverhead + data[2]) return FrameResult::kLength;
  return check_frame(data, out);
}

}  // namespace

// ---- frames -------------------------------------------------------------------------------

FrameResult decode_frame_payload(uint8_t type, const uint8_t* payload, uint8_t length,
                                 FrameFields& out) {
  if (type - 1u > static_cast<uint8_t>(FrameType::kVitals) - 1u) return FrameResult::kType;
  if (length == 0 || payload[0] > kMaxSetId) return FrameResult::kPayload;
  out.type = static_cast<FrameType>(type);
  out.label_set = payload[0];
  out.heart_rate_bpm = -1;
  out.skin_conductance_centi_us = -1;
  const uint8_t* body = payload + 1;
  const uint8_t n = static_cast<uint8_t>(length - 1);
  // Readings travel as (label, confidence) pairs: one in a reading frame, one or none in a
  // vitals frame, any number in a faces frame; they all land in `faces`.
  const uint8_t* pairs = body;
  // Every frame but vitals is a whole number of pairs (readings, or a distribution's weights).
  uint8_t count = static_cast<uint8_t>(n / 2);
  // An empty faces frame's one reading, and a distribution's placeholder.
  out.faces[0].label = kNoFace;
  out.faces[0].confidence_pct = kUnknownConfidence;
  // No first reading (a distribution, or vitals without one) until the pairs say otherwise.
  out.label = kNoReading;
  out.confidence = kUnknownConfidence;
  if (out.type != FrameType::kVitals && (n % 2 != 0 || count > kMaxRelayClasses)) {
    return FrameResult::kPayload;
  }
  if (out.type == FrameType::kDistribution) {
    out.count = count;
    if (count < 2) return FrameResult::kPayload;
    uint32_t sum = 0;
    for (unsigned i = 0; i < count; ++i) sum += out.weights[i] = be16(body + 2 * i);
    return sum == 0 ? FrameResult::kPayload : FrameResult::kFrame;
  }
  if (out.type == FrameType::kVitals) {
    if (n != 5) return FrameResult::kPayload;
    // As the Vitals payload's digits: absent (all ones on the frame) is 0, a value v is v + 1.
    const unsigned heart = static_cast<uint8_t>(body[0] + 1);
    const unsigned skin = static_cast<uint16_t>(be16(body + 1) + 1);
    if (heart >= kHeartRateRadix || skin >= kSkinRadix || (heart | skin) == 0) return FrameResult::kPayload;
    out.heart_rate_bpm = static_cast<int16_t>(heart - 1);
    out.skin_conductance_centi_us = static_cast<int16_t>(skin - 1);
    pairs = body + 3;
    count = 1;
    if (pairs[0] == kNoReading) {
      if (pairs[1] != kUnknownConfidence) return FrameResult::kPayload;
      count = 0;
      out.faces[0].label = kNoReading;  // faces[0] always holds the first reading's fields
    }
  } else if (out.type == FrameType::kReading && count != 1) {
    return FrameResult::kPayload;  // a reading frame is exactly one pair, faces any number
  }
  Face* face = out.faces;
  for (const uint8_t* pair = pairs; pair != pairs + 2 * count; pair += 2, ++face) {
    const uint8_t label = pair[0];
    const uint8_t confidence = pair[1];
    // A confidence 0..100 or unknown (0xFF wraps to 0); a class index, or "no face" with an
    // unknown confidence, except among faces.
    if (static_cast<uint8_t>(confidence + 1) > 101 ||
        (label >= kMaxWireClasses &&
         (label != kNoFace || confidence != kUnknownConfidence || out.type == FrameType::kFaces))) {
      return FrameResult::kPayload;
    }
    face->label = label;
    face->confidence_pct = confidence;
  }
  if (count == 0 && out.type == FrameType::kFaces) count = 1;  // the "no face" set above
  out.count = count;
  out.label = out.faces[0].label;
  out.confidence = out.faces[0].confidence_pct;
  return FrameResult::kFrame;
}

FrameResult decode_frame(const uint8_t* data, uint8_t length, FrameFields& out) {
  return decode_whole_frame(data, length, out);
}

void FrameReader::drop(uint8_t count) {
  for (unsigned i = count; i < length_; ++i) buffer_[i - count] = buffer_[i];
  length_ = static_cast<uint8_t>(length_ - count);
}

FrameResult FrameReader::next(FrameFields& out) {
  uint8_t start = 0;
  while (start < length_ && buffer_[start] != kFrameSync) ++start;
  // One drop at the end: of the bytes before the sync byte, then of nothing while more is
  // needed, of only the sync byte after a bad length or CRC (a real frame may start inside
  // the bad one), else of the frame.
  const uint8_t* frame = buffer_ + start;
  const unsigned have = length_ - start;
  FrameResult result = FrameResult::kNeedMore;
  unsigned used = 0;
  if (have >= 3) {
    const unsigned size = kFrameOverhead + frame[2];
    if (frame[2] > kMaxFramePayload) {
      result = FrameResult::kLength;
      used = 1;
    } else if (have >= size) {
      result = check_frame(frame, out);
      used = result == FrameResult::kChecksum ? 1 : size;
    }
  }
  drop(static_cast<uint8_t>(start + used));
  return result;
}

// ---- I2C queue ----------------------------------------------------------------------------

bool RxQueue::push(const uint8_t* record) {
  const unsigned size = record[0] == kOversize ? 1 : 1u + record[0];
  const unsigned h = head_;
  if (static_cast<uint8_t>(h - tail_) + size > kSize) {
    const unsigned overflows = overflows_ + 1u;  // saturating at 65535
    if (overflows >> 16 == 0) overflows_ = static_cast<uint16_t>(overflows);
    return false;
  }
  for (unsigned i = 0; i < size; ++i) buffer_[(h + i) % kSize] = record[i];
  // Publish only after the bytes are in place (all accesses are volatile).
  head_ = static_cast<uint8_t>(h + size);
  accepted_ = static_cast<uint8_t>(accepted_ + 1);
  return true;
}

inline bool RxQueue::pop(uint8_t* out) {
  const unsigned t = tail_;
  if (t == head_) return false;
  const uint8_t length = buffer_[t % kSize];
  const unsigned size = length == kOversize ? 1 : 1u + length;
  for (unsigned i = 0; i < size; ++i) out[i] = buffer_[(t + i) % kSize];
  tail_ = static_cast<uint8_t>(t + size);
  return true;
}

// ---- window -------------------------------------------------------------------------------

inline bool Window::add(uint8_t label, uint8_t confidence, const uint8_t* percent, uint8_t classes) {
  static_assert(kSummaryMaxReadings == 0xFFFF, "a full window is a full uint16_t");
  if ((total_ + 1u) >> 16 != 0) return false;  // total_ == 65535, without the constant
  ++total_;
  if (label == kNoFace) {
    ++no_face_;
    return true;
  }
  ++counts_[label];
  if (confidence != kUnknownConfidence) {
    confidence_sum_[label] += confidence;
    ++confidence_n_[label];
  }
  if (percent == nullptr) {
    share_sum_[label] += kDistributionTotal;
  } else {
    for (unsigned i = 0; i < classes; ++i) share_sum_[i] += percent[i];
  }
  ++share_n_;
  return true;
}

inline void Window::add_vitals(int16_t heart_rate_bpm, int16_t skin_conductance_centi_us) {
  // (n + 1) >> 16 is 0 unless n is 65535, and needs no 0xFFFF constant from flash.
  if (heart_rate_bpm >= 0 && (heart_n_ + 1u) >> 16 == 0) {
    heart_sum_ += static_cast<uint32_t>(heart_rate_bpm);
    ++heart_n_;
  }
  if (skin_conductance_centi_us >= 0 && (skin_n_ + 1u) >> 16 == 0) {
    skin_sum_ += static_cast<uint32_t>(skin_conductance_centi_us);
    ++skin_n_;
  }
}

uint8_t Window::dominant(uint8_t classes) const {
  uint8_t best = kNoFace;
  uint16_t best_count = 0;
  for (unsigned i = 0; i < classes; ++i) {
    if (counts_[i] > best_count) {
      best = static_cast<uint8_t>(i);
      best_count = counts_[i];
    }
  }
  return best;
}

inline uint8_t Window::mean_confidence(uint8_t label) const {
  if (label >= kMaxRelayClasses) return 0;
  return static_cast<uint8_t>(rounded_mean(confidence_sum_[label], confidence_n_[label], 0));
}

inline Result Window::build(const LabelSet& set, Mode mode, uint32_t now_s, Payload& out) const {
  uint32_t window_s = now_s - start_s_;
  if (window_s < 1) window_s = 1;
  if (window_s > kWindowRadix) window_s = kWindowRadix;
  const uint8_t best = dominant(set.classes);
  const uint8_t mean = mean_confidence(best);
  if (mode == Mode::kSummary) return encode_summary(set, window_s, counts_, no_face_, mean, out);
  if (mode == Mode::kDistribution && share_n_ != 0) {
    uint8_t percent[kMaxRelayClasses];
    const Result r = quantise_weights(share_sum_, set.classes, percent);
    return r == Result::kOk ? encode_distribution(set, percent, out) : r;
  }
  if (mode == Mode::kVitals && (heart_n_ | skin_n_) != 0) {
    VitalsFields v;
    // "none" is all ones, which is -1 (absent) as an int16_t.
    v.heart_rate_bpm = static_cast<int16_t>(rounded_mean(heart_sum_, heart_n_, 0xFFFFFFFF));
    v.skin_conductance_centi_us = static_cast<int16_t>(rounded_mean(skin_sum_, skin_n_, 0xFFFFFFFF));
    v.label = total_ != 0 ? best : kNoReading;
    v.confidence_pct = mean;
    return encode_vitals(set, v, out);
  }
  return encode_reading(set, best, mean, out);
}

// ---- relay --------------------------------------------------------------------------------

void Relay::begin(uint32_t now_ms, uint8_t label_set_id, LogSink sink) {
  // Every counter, flag and sum starts at zero; only the exceptions are set below.
  memset(static_cast<void*>(this), 0, sizeof(*this));
  sink_ = sink;
  builtin_label_set(label_set_id < kBuiltinSets ? label_set_id : 0, config_.label_set);  // else set 0
  config_.mode = Mode::kSummary;
  config_.window_s = 60;
  config_.daily_budget_s = 30;
  config_.status_interval_min = 360;
  ledger_.begin(36000, 3600000 + kTransmitSlackMs, 1000u * config_.daily_budget_s, 86400000 + kTransmitSlackMs);
  legacy_set_ = config_.label_set;
  last_ms_ = now_ms;
  last_plan_s_ = 0xFFFFFFFF;
  streak_label_ = kNoReading;
  reported_label_ = kNoReading;
  off_start_ms_ = now_ms;
  credit_s_ = kPacerBurstS;
  note(LogEvent::kBoot, kFirmwareVersion[0], kFirmwareVersion[1], kFirmwareVersion[2],
       kProtocolVersion, config_.label_set.id, config_.label_set.classes, config_.mode,
       config_.window_s, config_.daily_budget_s, AirtimeLedger::kCapacity,
       config_.status_interval_min);
}

void Relay::emit(uint32_t shape, const uint32_t* values) const { emit(shape, values, nullptr); }

void Relay::emit(uint32_t shape, const uint32_t* values, const uint8_t* bytes) const {
  if (sink_ == nullptr) return;
  LogRecord record;
  record.event = static_cast<LogEvent>(shape & 0xF);
  record.count = static_cast<uint8_t>(shape >> 4 & 0xF);
  record.size = static_cast<uint8_t>(shape >> 8);
  record.now_ms = last_ms_;  // every entry point ticks the clock first
  record.bytes = bytes;
  memcpy(record.values, values, 4u * record.count);
  sink_(record);
}

void Relay::tick(uint32_t now_ms) {
  const uint32_t total = carry_ms_ + (now_ms - last_ms_);
  last_ms_ = now_ms;
  const uint32_t seconds = total / 1000;
  carry_ms_ = static_cast<uint16_t>(total - seconds * 1000);
  uptime_s_ += seconds;
  const uint32_t room = static_cast<uint32_t>(kPacerBurstS - credit_s_);
  credit_s_ = seconds >= room ? kPacerBurstS : credit_s_ + static_cast<int32_t>(seconds);
}

void Relay::poll(uint32_t now_ms) {
  tick(now_ms);
  uint8_t record[RxQueue::kMaxRecord];
  while (queue_.pop(record)) handle_transaction(record + 1, record[0]);
  const uint16_t overflows = queue_.overflows();
  if (overflows != overflows_seen_) {
    count_drop(Name::kQueueOverflow, static_cast<uint16_t>(overflows - overflows_seen_));
    overflows_seen_ = overflows;
  }
}

void Relay::serial_byte(uint8_t byte, uint32_t now_ms) {
  tick(now_ms);
  reader_.push(byte);
  FrameFields frame;
  FrameResult r;
  while ((r = reader_.next(frame)) != FrameResult::kNeedMore) frame_result(r, frame, Name::kSerial);
}

void Relay::count_error(Name code, Name source) { note(LogEvent::kError, code, source, ++invalid_); }

void Relay::count_drop(Name reason, uint32_t n) {
  dropped_ += n;
  note(LogEvent::kDrop, reason, n, dropped_);
}

void Relay::frame_result(FrameResult result, FrameFields& frame, Name source) {
  static_assert(static_cast<uint8_t>(FrameResult::kPayload) - static_cast<uint8_t>(FrameResult::kSync) ==
                    static_cast<uint8_t>(Name::kPayload) - static_cast<uint8_t>(Name::kSync),
                "FrameResult kSync..kPayload and Name kSync..kPayload are in the same order");
  if (result == FrameResult::kFrame) {
    handle_frame(frame, source);
  } else {
    count_error(static_cast<Name>(static_cast<uint8_t>(result) - static_cast<uint8_t>(FrameResult::kSync) +
                                  static_cast<uint8_t>(Name::kSync)),
                source);
  }
}

inline void Relay::handle_transaction(const uint8_t* bytes, unsigned length) {
  FrameFields frame;
  FrameResult result = FrameResult::kLength;
  if (length == 1) {
    // The 2021 demo's contract: one byte, a class index, the class count meaning no face,
    // always of the set the master was built for (legacy_set_). While a downlink has another
    // set in force, its bytes are refused and counted, never relabelled.
    const uint8_t classes = legacy_set_.classes;
    if (bytes[0] > classes) {
      count_error(Name::kLegacyRange, Name::kI2c);
      return;
    }
    if (memcmp(&legacy_set_, &config_.label_set, sizeof(LabelSet)) != 0) {
      count_drop(Name::kSetMismatch, 1);
      return;
    }
    frame.type = FrameType::kLegacy;
    frame.label_set = config_.label_set.id;
    // Only faces[0]: the relay reads a frame's first reading from there.
    frame.faces[0].label = bytes[0] == classes ? kNoFace : bytes[0];
    frame.faces[0].confidence_pct = kUnknownConfidence;
    frame.count = 1;
    result = FrameResult::kFrame;
  } else if (length != RxQueue::kOversize) {
    result = decode_whole_frame(bytes, static_cast<uint8_t>(length), frame);
  }
  frame_result(result, frame, Name::kI2c);
}

// Forced: frame_result is its one caller, and GCC would keep it out of line (-16 B).
__attribute__((always_inline)) inline void Relay::handle_frame(FrameFields& frame, Name source) {
  const unsigned classes = config_.label_set.classes;
  const bool distribution = frame.type == FrameType::kDistribution;
  // Every frame but a distribution carries its readings in `faces`.
  const unsigned readings = distribution ? 1 : frame.count;
  if (frame.label_set != config_.label_set.id) {
    if (readings != 0) count_drop(Name::kSetMismatch, readings);
    return;
  }
  // A distribution of this set's size; readings of a class of this set, or kNoFace (0xFF),
  // which wraps to 0 (a distribution's placeholder).
  unsigned checked = 0;
  if (!distribution || frame.count == classes) {
    while (checked < readings && static_cast<uint8_t>(frame.faces[checked].label + 1) <= classes) {
      ++checked;
    }
  }
  if (checked != readings) {
    count_error(Name::kLabelRange, source);
    return;
  }
  uint8_t percent[kMaxRelayClasses];
  if (distribution) {
    quantise_weights(frame.weights, static_cast<uint8_t>(classes), percent);
    unsigned best = 0;
    for (unsigned i = 1; i < classes; ++i) {
      if (percent[i] > percent[best]) best = i;
    }
    frame.faces[0].label = static_cast<uint8_t>(best);
    frame.faces[0].confidence_pct = percent[best];
  }
  static const Name kKinds[] = {Name::kLegacy, Name::kReading, Name::kDistribution, Name::kFaces, Name::kVitals};
  note(LogEvent::kReading, source, kKinds[static_cast<uint8_t>(frame.type)],
       frame.label_set, frame.faces[0].label,
       // 0..100, or kUnknownConfidence (0xFF), which sign-extends to kOmit
       static_cast<int8_t>(frame.faces[0].confidence_pct),
       readings);
  if (frame.type == FrameType::kVitals) window_.add_vitals(frame.heart_rate_bpm, frame.skin_conductance_centi_us);
  for (unsigned i = 0; i < readings; ++i) {
    add_reading(frame.faces[i].label, frame.faces[i].confidence_pct, distribution ? percent : nullptr);
  }
}

inline void Relay::add_reading(uint8_t label, uint8_t confidence, const uint8_t* percent) {
  if (!window_.add(label, confidence, percent, config_.label_set.classes)) {
    count_drop(Name::kWindowFull, 1);
    return;
  }
  ++received_;
  // A new dominant emotion: kChangeStreak readings of one class in a row that differs from
  // the class the last uplink reported. "No face" never counts as an emotion. Only the first
  // kChangeStreak readings of a streak matter: the last of them makes the change.
  if (label != streak_label_) {
    streak_label_ = label;
    streak_length_ = 0;
    streak_confidence_sum_ = 0;
    streak_confidence_n_ = 0;
  }
  if (streak_length_ == kChangeStreak) return;
  ++streak_length_;
  if (confidence != kUnknownConfidence) {
    streak_confidence_sum_ = static_cast<uint16_t>(streak_confidence_sum_ + confidence);
    ++streak_confidence_n_;
  }
  if (streak_length_ == kChangeStreak && label != kNoFace && label != reported_label_) {
    change_pending_ = true;
    change_label_ = label;
    change_confidence_ = static_cast<uint8_t>(rounded_mean(streak_confidence_sum_, streak_confidence_n_, 0));
  }
}

inline UplinkKind Relay::due() {
  if (uptime_s_ - last_status_s_ >= 60u * config_.status_interval_min) status_due_ = true;
  if (status_due_) return UplinkKind::kStatus;
  // One change per window: a further one waits for the window, which reports it. Otherwise a
  // noisy classifier's cheap changes keep the pacer below what a window needs (at SF12 no
  // window went out in a simulated day and the full window dropped readings).
  if (change_pending_ && !window_had_change_) return UplinkKind::kChange;
  if (uptime_s_ - window_.start_s() >= config_.window_s) {
    if (window_.has_content(config_.mode)) return UplinkKind::kWindow;
    restart_window();  // nothing to report: start the next window now
  }
  return UplinkKind::kNone;
}

void Relay::restart_window() {
  window_.reset(uptime_s_);
  window_had_change_ = false;
}

inline Result Relay::build(UplinkKind kind, Payload& out) const {
  if (kind == UplinkKind::kStatus) {
    // encode_status's digits straight from the relay's state (battery unknown: 0).
    const uint32_t uptime_min = uptime_s_ / 60;
    const uint32_t dropped = dropped_ + invalid_;
    const uint32_t digits[kStatusDigits] = {
        kProtocolVersion, kFirmwareVersion[0], kFirmwareVersion[1], kFirmwareVersion[2], 0,
        uptime_min >> 20 == 0 ? uptime_min : (1u << 20) - 1,
        dropped < dropped_ || dropped >> 16 != 0 ? 65535 : dropped,
        config_.window_s - 1,
        static_cast<uint32_t>(config_.mode),
        config_.daily_budget_s - 1u,
        config_.label_set.id,
        config_.label_set.fingerprint,
        command_seq_,
        static_cast<uint32_t>(command_status_),
    };
    return encode_status_digits(digits, out);
  }
  if (kind == UplinkKind::kChange) return encode_reading(config_.label_set, change_label_, change_confidence_, out);
  return window_.build(config_.label_set, config_.mode, uptime_s_, out);
}

uint32_t Relay::airtime_ms(uint8_t payload_size) const {
  uint8_t sf = 0;
  uint16_t bandwidth = 0;
  eu868_data_rate(data_rate_, sf, bandwidth);  // always true: set_data_rate keeps 0..6
  return airtime_charge_ms(payload_size, sf, bandwidth);
}

// Forced inline: two calls in plan, each cheaper than a call (-8 B).
__attribute__((always_inline)) inline uint32_t Relay::pacer_cost(uint32_t airtime) const {
  // Seconds of the daily allowance an uplink uses: its share of the daily cap,
  // airtime * 86400 / (budget_s * 1000), rounded up.
  const uint32_t budget = 5u * config_.daily_budget_s;
  return (airtime * 432u + budget - 1) / budget;
}

inline void Relay::defer(UplinkKind kind, Name reason, uint32_t wait_s) {
  // Log transitions only: the kind and reason of the last deferral as one halfword.
  const uint16_t deferred =
      static_cast<uint16_t>(static_cast<uint8_t>(kind) | static_cast<uint8_t>(reason) << 8);
  if (deferred == deferred_) return;
  deferred_ = deferred;
  note(LogEvent::kDefer, static_cast<uint8_t>(Name::kStatus) + static_cast<uint8_t>(kind) - 1, reason, wait_s);
}

Relay::Action Relay::plan(uint32_t now_ms, Payload& out) {
  tick(now_ms);
  if (uptime_s_ == last_plan_s_) return Action::kNone;  // decide at most once per second
  last_plan_s_ = uptime_s_;
  if (!modem_ready_) return Action::kNone;  // readings still count; nothing goes on air
  UplinkKind kind = UplinkKind::kJoin;
  uint32_t airtime = kJoinChargeMs;
  uint32_t cost = 0;
  if (!joined_) {
    if (uptime_s_ < next_join_s_) return Action::kNone;
  } else {
    if (uptime_s_ < retry_at_s_) return Action::kNone;
    kind = due();
    if (kind == UplinkKind::kNone) return Action::kNone;
    if (build(kind, out) != Result::kOk) {
      // Not reachable with valid state; never let a bad message block the schedule.
      finish(kind, false, Name::kEncode);
      return Action::kNone;
    }
    airtime = airtime_ms(out.size);
  }
  // The radio's own 1 % rule, for joins as for uplinks: after a transmission of T the
  // sub-band rests for 99 T (from the end of the modem call, so from after the end of T).
  if (now_ms - off_start_ms_ < off_length_ms_) {
    defer(kind, Name::kOfftime, (off_length_ms_ - (now_ms - off_start_ms_)) / 1000 + 1);
    return Action::kNone;
  }
  if (joined_) {
    cost = pacer_cost(airtime);
    uint32_t need = cost;
    // Keep enough for one prompt change (or acknowledgement) after a window message.
    if (kind == UplinkKind::kWindow) need += pacer_cost(airtime_ms(config_.label_set.classes > 2 ? 2 : 1));
    // A message dearer than the whole bucket waits for a full bucket and leaves a debt.
    if (need > static_cast<uint32_t>(kPacerBurstS)) need = kPacerBurstS;
    if (credit_s_ < static_cast<int32_t>(need)) {
      defer(kind, Name::kPacer, need - static_cast<uint32_t>(credit_s_));
      return Action::kNone;
    }
  }
  if (!ledger_.try_record(now_ms, airtime)) {
    if (!joined_) next_join_s_ = uptime_s_ + 60;
    defer(kind, Name::kBudget, joined_ ? kOmit : 60);
    return Action::kNone;
  }
  deferred_ = 0;  // UplinkKind::kNone: the next deferral is a transition
  // Restarted by join_result and uplink_result, when the modem call has returned.
  off_start_ms_ = now_ms;
  off_length_ms_ = 100 * airtime;
  if (!joined_) {
    if (join_attempts_ != 0xFF) ++join_attempts_;
    return Action::kJoin;
  }
  credit_s_ -= static_cast<int32_t>(cost);
  sending_ = kind;
  sent_data_rate_ = data_rate_;
  sent_airtime_ms_ = static_cast<uint16_t>(airtime);
  return Action::kSend;
}

uint32_t Relay::finish(UplinkKind kind, bool delivered, Name drop_reason) {
  uint32_t readings = 0;
  if (kind == UplinkKind::kStatus) {
    status_due_ = false;
    last_status_s_ = uptime_s_;
  } else if (kind == UplinkKind::kChange) {
    change_pending_ = false;
    window_had_change_ = true;
    if (delivered) reported_label_ = change_label_;
  } else if (kind == UplinkKind::kWindow) {
    readings = window_.readings();
    if (delivered) {
      reported_label_ = window_.dominant(config_.label_set.classes);
      if (change_label_ == reported_label_) change_pending_ = false;
    } else {
      count_drop(drop_reason, readings);
      readings = 0;
    }
    restart_window();
  }
  return readings;
}

inline void Relay::set_data_rate(int data_rate) {
  if (static_cast<unsigned>(data_rate) <= 6) data_rate_ = static_cast<uint8_t>(data_rate);
}

void Relay::join_result(bool ok, int data_rate, uint32_t now_ms) {
  tick(now_ms);
  off_start_ms_ = now_ms;  // the join request was on the air before the call returned
  const uint8_t attempt = join_attempts_;
  uint32_t backoff = kOmit;
  if (ok) {
    joined_ = true;
    status_due_ = true;
    error_streak_ = 0;
    join_attempts_ = 0;
    set_data_rate(data_rate);
  } else {
    // Backoff within LoRaWAN 1.0.4 §7's JoinReq duty cycle: 15 s doubling to 1 h, and after
    // 11 h of failures one attempt per 4.5 h (5.3 x 1.48 s < 8.7 s per day).
    if (attempt <= 1) first_join_failure_s_ = uptime_s_;
    backoff = attempt >= 9 ? 3600 : 15u << (attempt - 1);
    if (uptime_s_ - first_join_failure_s_ >= 11u * 3600) backoff = 16200;
    next_join_s_ = uptime_s_ + backoff;
  }
  note(LogEvent::kJoin, ok, attempt, ok ? data_rate_ : kOmit, backoff);
}

void Relay::uplink_result(int rc, int data_rate, const Payload& sent, uint32_t now_ms) {
  tick(now_ms);
  const UplinkKind kind = sending_;
  sending_ = UplinkKind::kNone;
  off_start_ms_ = now_ms;  // whatever went on the air did so before the call returned
  // MKRWAN's endPacket: > 0 sent; -7 sent but the receive window failed; -1 no answer within
  // its one second, which at SF11-12 is every uplink that did go out (the modem answers
  // after the transmission): taken as sent, so that it is neither sent nor charged twice
  // (docs/arduino.md, "endPacket results"); -3, -5 and -20 the modem refused the message
  // itself (retrying cannot help); -6 not joined; -2, -4, -8 (error, busy, unknown) are
  // answers before sending and worth a retry.
  const uint32_t code = rc > 0 || rc == -1 ? 7 : 0u - static_cast<uint32_t>(rc);
  uint32_t outcome = static_cast<uint32_t>(Name::kSent);
  uint32_t readings = 0;
  if (code == 7 || code == 3 || code == 5 || code == 20) {
    const bool delivered = code == 7;
    if (delivered) {
      ++uplinks_;
      error_streak_ = 0;
      listening_ = true;
      listen_from_ms_ = now_ms;
    } else {
      outcome = static_cast<uint32_t>(Name::kDiscarded);
      ++error_streak_;
    }
    readings = finish(kind, delivered, Name::kUplinkRejected);
  } else if (code == 6) {
    outcome = static_cast<uint32_t>(Name::kRejoin);  // not joined: keep the message and join again now
    joined_ = false;
  } else {
    outcome = static_cast<uint32_t>(Name::kRetry);  // the message waits and is rebuilt
    ++error_streak_;
    // 10 s doubling up to 300 s (from the fifth error in a row on: 10 << 5 would be 320).
    retry_at_s_ = uptime_s_ + (error_streak_ >= 5 ? 300 : 10u << error_streak_);
  }
  if (error_streak_ >= kRejoinAfterErrors && joined_) {
    outcome = static_cast<uint32_t>(Name::kRejoin);
    joined_ = false;
    error_streak_ = 0;
  }
  if (!joined_) next_join_s_ = uptime_s_;
  set_data_rate(data_rate);
  static_assert(kSetBlockBase % 8 == 0 && kSetBlockSize == 8, "the low three bits of a port are its type");
  const uint32_t type = sent.port == kStatusPort ? static_cast<uint32_t>(Name::kStatus)
                                                 : static_cast<uint32_t>(Name::kReading) + (sent.port & 7u);
  const uint32_t values[] = {type, static_cast<uint32_t>(Name::kStatus) + static_cast<uint8_t>(kind) - 1,
                             sent.port, sent.size, sent_data_rate_, sent_airtime_ms_,
                             static_cast<uint32_t>(rc), outcome, readings,
                             ledger_.used_hour_ms(now_ms), ledger_.used_day_ms(now_ms),
                             static_cast<uint32_t>(credit_s_)};
  emit(log_shape(LogEvent::kUplink, sizeof(values) / sizeof(values[0]), sent.size), values, sent.bytes);
  if (outcome == static_cast<uint32_t>(Name::kSent) && kind == UplinkKind::kStatus) note_stats();
}

void Relay::downlink(int port, const uint8_t* data, uint8_t length, uint32_t now_ms) {
  tick(now_ms);
  uint32_t result_name = static_cast<uint32_t>(Name::kIgnored);
  if ((port < 0 || port == kCommandPort) && length != 0) {
    // All commands or none: apply them as they come and restore the settings if one fails.
    Config saved;
    memcpy(&saved, &config_, sizeof(saved));
    unsigned result = static_cast<unsigned>(CommandStatus::kApplied);
    for (unsigned i = 1; i < length;) {
      static const uint8_t kArgumentBytes[] = {2, 1, 2, 4, 0, 2};  // by opcode 1..6
      const unsigned opcode = data[i] - 1u;
      const uint8_t* a = data + i + 1;
      i += 1;
      if (opcode >= sizeof(kArgumentBytes) || (i += kArgumentBytes[opcode]) > length) {
        result = static_cast<unsigned>(CommandStatus::kUnknownCommand);
        break;
      }
      // The arguments as one big-endian number (a label set's four bytes fill all 32 bits).
      uint32_t value = 0;
      for (unsigned k = 0; k < kArgumentBytes[opcode]; ++k) value = value << 8 | a[k];
      // Tested in pairs (wire opcodes 1-2, 3-4, 5-6; `opcode` counts from 0): a chain of ==
      // tests becomes a jump table, which costs more here (its helper alone is 18 bytes).
      if (opcode < 2) {
        if (opcode == 0) {
          config_.window_s = value + 1;
        } else {
          config_.mode = static_cast<Mode>(value);
          if (value > 3) goto rejected;
        }
      } else if (opcode < 4) {
        if (opcode == 2) {
          config_.daily_budget_s = static_cast<uint16_t>(value + 1);
          if (value > 1023) goto rejected;
        } else {
          LabelSet builtin;
          config_.label_set = LabelSet{a[0], a[1], static_cast<uint16_t>(value)};
          if (a[0] > kMaxSetId || a[1] < 2 || a[1] > kMaxRelayClasses ||
              (builtin_label_set(a[0], builtin) &&
               (builtin.classes != a[1] || builtin.fingerprint != config_.label_set.fingerprint))) {
            goto rejected;
          }
        }
      } else if (opcode == 5) {
        config_.status_interval_min = static_cast<uint16_t>(value);
        if (value == 0) goto rejected;
      }  // opcode 5 asks for a status message, which every command downlink gets anyway
      continue;
    rejected:  // a command outside its domain (a goto: a flag to test costs more)
      result = static_cast<unsigned>(CommandStatus::kRejected);
      break;
    }
    if (result != static_cast<unsigned>(CommandStatus::kApplied)) {
      memcpy(&config_, &saved, sizeof(saved));
    } else {
      if (config_.label_set.id != saved.label_set.id || config_.label_set.classes != saved.label_set.classes ||
          config_.label_set.fingerprint != saved.label_set.fingerprint) {
        // Counts are per class index of the old set: they cannot be carried over.
        if (window_.readings() != 0) count_drop(Name::kLabelSetChange, window_.readings());
        restart_window();
        streak_label_ = kNoReading;
        streak_length_ = 0;
        reported_label_ = kNoReading;
        change_pending_ = false;
      }
      ledger_.set_daily_cap_ms(1000u * config_.daily_budget_s);
    }
    command_seq_ = data[0];
    command_status_ = static_cast<CommandStatus>(result);
    status_due_ = true;  // the acknowledgement travels in the next status message
    result_name = static_cast<uint32_t>(Name::kApplied) + result - 1;
  }
  const uint32_t values[] = {static_cast<uint32_t>(port), length, length != 0 ? data[0] : kOmit, result_name};
  emit(log_shape(LogEvent::kDownlink, 4, length), values, data);
  if (result_name == static_cast<uint32_t>(Name::kApplied)) {
    note(LogEvent::kConfig, config_.mode, config_.window_s, config_.daily_budget_s,
         config_.label_set.id, config_.label_set.classes, config_.status_interval_min);
  }
}

}  // namespace lora_emotion
