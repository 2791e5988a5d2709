// LoraEmotionRelay.cpp - frames, I2C queue, aggregation window, scheduler, downlinks, log.
// The rules implemented here are stated in docs/arduino.md; keep the two in step.
#include "LoraEmotionRelay.h"

#include <string.h>

namespace lora_emotion {

namespace {

Name frame_error_name(FrameResult r) {
  return r == FrameResult::kSync ? Name::kSync
         : r == FrameResult::kLength ? Name::kLength
         : r == FrameResult::kChecksum ? Name::kChecksum
         : r == FrameResult::kType ? Name::kType
                                   : Name::kPayload;
}

bool prediction_ok(uint8_t label, uint8_t confidence) {
  if (label == kNoFace) return confidence == kUnknownConfidence;
  if (label >= kMaxWireClasses) return false;
  return confidence == kUnknownConfidence || confidence <= 100;
}

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint8_t argmax(const uint8_t* percent, uint8_t count) {
  uint8_t best = 0;
  for (uint8_t i = 1; i < count; ++i) {
    if (percent[i] > percent[best]) best = i;
  }
  return best;
}

}  // namespace

// ---- frames -------------------------------------------------------------------------------

FrameResult decode_frame_payload(uint8_t type, const uint8_t* payload, uint8_t length,
                                 FrameFields& out) {
  if (type < static_cast<uint8_t>(FrameType::kReading) || type > static_cast<uint8_t>(FrameType::kVitals)) {
    return FrameResult::kType;
  }
  if (length == 0 || payload[0] > kMaxSetId) return FrameResult::kPayload;
  out.type = static_cast<FrameType>(type);
  out.label_set = payload[0];
  out.label = kNoReading;
  out.confidence = kUnknownConfidence;
  out.count = 0;
  out.heart_rate_bpm = -1;
  out.skin_conductance_centi_us = -1;
  const uint8_t* body = payload + 1;
  const uint8_t n = static_cast<uint8_t>(length - 1);
  switch (out.type) {
    case FrameType::kReading:
      if (n != 2 || !prediction_ok(body[0], body[1])) return FrameResult::kPayload;
      out.label = body[0];
      out.confidence = body[1];
      return FrameResult::kFrame;
    case FrameType::kDistribution: {
      if (n % 2 != 0 || n / 2 < 2 || n / 2 > kMaxRelayClasses) return FrameResult::kPayload;
      uint32_t sum = 0;
      out.count = static_cast<uint8_t>(n / 2);
      for (uint8_t i = 0; i < out.count; ++i) {
        out.weights[i] = be16(body + 2 * i);
        sum += out.weights[i];
      }
      return sum == 0 ? FrameResult::kPayload : FrameResult::kFrame;
    }
    case FrameType::kFaces:
      if (n % 2 != 0) return FrameResult::kPayload;
      out.count = static_cast<uint8_t>(n / 2);
      for (uint8_t i = 0; i < out.count; ++i) {
        const uint8_t label = body[2 * i];
        const uint8_t confidence = body[2 * i + 1];
        if (label == kNoFace || !prediction_ok(label, confidence)) return FrameResult::kPayload;
        out.faces[i] = Face{label, confidence};
      }
      return FrameResult::kFrame;
    default: {
      if (n != 5) return FrameResult::kPayload;
      const uint16_t skin = be16(body + 1);
      if (body[0] != 0xFF && body[0] > kHeartRateRadix - 2) return FrameResult::kPayload;
      if (skin != 0xFFFF && skin > kSkinRadix - 2) return FrameResult::kPayload;
      if (body[0] == 0xFF && skin == 0xFFFF) return FrameResult::kPayload;
      if (body[3] == kNoReading ? body[4] != kUnknownConfidence : !prediction_ok(body[3], body[4])) {
        return FrameResult::kPayload;
      }
      out.heart_rate_bpm = body[0] == 0xFF ? -1 : body[0];
      out.skin_conductance_centi_us = skin == 0xFFFF ? -1 : static_cast<int16_t>(skin);
      out.label = body[3];
      out.confidence = body[4];
      return FrameResult::kFrame;
    }
  }
}

FrameResult decode_frame(const uint8_t* data, uint8_t length, FrameFields& out) {
  if (length < kFrameOverhead) return FrameResult::kLength;
  if (data[0] != kFrameSync) return FrameResult::kSync;
  const uint8_t payload_length = data[2];
  if (payload_length > kMaxFramePayload || length != kFrameOverhead + payload_length) {
    return FrameResult::kLength;
  }
  if (crc16_ccitt(data + 1, 2u + payload_length) != be16(data + 3 + payload_length)) {
    return FrameResult::kChecksum;
  }
  return decode_frame_payload(data[1], data + 3, payload_length, out);
}

void FrameReader::drop(uint8_t count) {
  for (uint8_t i = count; i < length_; ++i) buffer_[i - count] = buffer_[i];
  length_ = static_cast<uint8_t>(length_ - count);
}

void FrameReader::push(uint8_t byte) {
  if (length_ == kMaxFrame) drop(1);  // unreachable when next() is drained after each push
  buffer_[length_++] = byte;
}

FrameResult FrameReader::next(FrameFields& out) {
  uint8_t start = 0;
  while (start < length_ && buffer_[start] != kFrameSync) ++start;
  drop(start);
  if (length_ < 3) return FrameResult::kNeedMore;
  const uint8_t payload_length = buffer_[2];
  if (payload_length > kMaxFramePayload) {
    drop(1);  // only the sync byte: a real frame may start inside the bad one
    return FrameResult::kLength;
  }
  const uint8_t size = static_cast<uint8_t>(kFrameOverhead + payload_length);
  if (length_ < size) return FrameResult::kNeedMore;
  if (crc16_ccitt(buffer_ + 1, 2u + payload_length) != be16(buffer_ + 3 + payload_length)) {
    drop(1);
    return FrameResult::kChecksum;
  }
  const FrameResult result = decode_frame_payload(buffer_[1], buffer_ + 3, payload_length, out);
  drop(size);
  return result;
}

// ---- I2C queue ----------------------------------------------------------------------------

void RxQueue::reset() {
  head_ = 0;
  tail_ = 0;
  overflows_ = 0;
  accepted_ = 0;
}

bool RxQueue::push(const uint8_t* bytes, uint8_t length) {
  const uint8_t stored = length == kOversize ? 0 : length;
  const uint8_t used = static_cast<uint8_t>(head_ - tail_);
  if (used + 1u + stored > kSize) {
    if (overflows_ != 0xFFFF) overflows_ = static_cast<uint16_t>(overflows_ + 1);
    return false;
  }
  uint8_t h = head_;
  buffer_[h++ % kSize] = length;
  for (uint8_t i = 0; i < stored; ++i) buffer_[h++ % kSize] = bytes[i];
  head_ = h;  // publish only after the bytes are in place (all accesses are volatile)
  accepted_ = static_cast<uint8_t>(accepted_ + 1);
  return true;
}

int RxQueue::pop(uint8_t* out) {
  uint8_t t = tail_;
  if (t == head_) return -1;
  const uint8_t length = buffer_[t++ % kSize];
  const uint8_t stored = length == kOversize ? 0 : length;
  for (uint8_t i = 0; i < stored; ++i) out[i] = buffer_[t++ % kSize];
  tail_ = t;
  return length;
}

// ---- window -------------------------------------------------------------------------------

void Window::reset(uint32_t start_s) {
  start_s_ = start_s;
  total_ = 0;
  no_face_ = 0;
  share_n_ = 0;
  heart_n_ = 0;
  skin_n_ = 0;
  heart_sum_ = 0;
  skin_sum_ = 0;
  for (uint8_t i = 0; i < kMaxRelayClasses; ++i) {
    counts_[i] = 0;
    confidence_n_[i] = 0;
    confidence_sum_[i] = 0;
    share_sum_[i] = 0;
  }
}

bool Window::add(uint8_t label, uint8_t confidence, const uint8_t* percent, uint8_t classes) {
  if (total_ == kSummaryMaxReadings) return false;
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
  if (percent != nullptr) {
    for (uint8_t i = 0; i < classes; ++i) share_sum_[i] += percent[i];
  } else {
    share_sum_[label] += kDistributionTotal;
  }
  ++share_n_;
  return true;
}

void Window::add_vitals(int16_t heart_rate_bpm, int16_t skin_conductance_centi_us) {
  if (heart_rate_bpm >= 0 && heart_n_ != 0xFFFF) {
    heart_sum_ += static_cast<uint32_t>(heart_rate_bpm);
    ++heart_n_;
  }
  if (skin_conductance_centi_us >= 0 && skin_n_ != 0xFFFF) {
    skin_sum_ += static_cast<uint32_t>(skin_conductance_centi_us);
    ++skin_n_;
  }
}

bool Window::has_content(Mode mode) const {
  return total_ != 0 || (mode == Mode::kVitals && (heart_n_ != 0 || skin_n_ != 0));
}

uint8_t Window::dominant(uint8_t classes) const {
  uint8_t best = kNoFace;
  uint16_t best_count = 0;
  for (uint8_t i = 0; i < classes; ++i) {
    if (counts_[i] > best_count) {
      best = i;
      best_count = counts_[i];
    }
  }
  return best;
}

namespace {
// Mean rounded half up, in integers.
uint32_t rounded_mean(uint32_t sum, uint16_t n) { return (2 * sum + n) / (2u * n); }
}  // namespace

uint8_t Window::mean_confidence(uint8_t label) const {
  if (label >= kMaxRelayClasses || confidence_n_[label] == 0) return 0;
  return static_cast<uint8_t>(rounded_mean(confidence_sum_[label], confidence_n_[label]));
}

Result Window::build(const LabelSet& set, Mode mode, uint32_t now_s, Payload& out) const {
  uint32_t window_s = now_s - start_s_;
  if (window_s < 1) window_s = 1;
  if (window_s > kWindowRadix) window_s = kWindowRadix;
  const uint8_t best = dominant(set.classes);
  const uint8_t mean = best == kNoFace ? 0 : mean_confidence(best);
  if (mode == Mode::kSummary) return encode_summary(set, window_s, counts_, no_face_, mean, out);
  if (mode == Mode::kDistribution && share_n_ != 0) {
    uint8_t percent[kMaxRelayClasses];
    const Result r = quantise_weights(share_sum_, set.classes, percent);
    return r == Result::kOk ? encode_distribution(set, percent, out) : r;
  }
  if (mode == Mode::kVitals && (heart_n_ != 0 || skin_n_ != 0)) {
    VitalsFields v;
    v.heart_rate_bpm = heart_n_ ? static_cast<int16_t>(rounded_mean(heart_sum_, heart_n_)) : -1;
    v.skin_conductance_centi_us = skin_n_ ? static_cast<int16_t>(rounded_mean(skin_sum_, skin_n_)) : -1;
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
  if (!builtin_label_set(label_set_id, config_.label_set)) builtin_label_set(0, config_.label_set);
  config_.mode = Mode::kSummary;
  config_.window_s = 60;
  config_.daily_budget_s = 30;
  config_.status_interval_min = 360;
  ledger_.begin(36000, 3600000, 1000u * config_.daily_budget_s, 86400000);
  last_ms_ = now_ms;
  last_plan_s_ = 0xFFFFFFFF;
  streak_label_ = kNoReading;
  reported_label_ = kNoReading;
  off_start_ms_ = now_ms;
  credit_s_ = kPacerBurstS;
  note(LogEvent::kBoot, now_ms, kFirmwareVersion[0], kFirmwareVersion[1], kFirmwareVersion[2],
       kProtocolVersion, config_.label_set.id, config_.label_set.classes, config_.mode,
       config_.window_s, config_.daily_budget_s, AirtimeLedger::kCapacity,
       config_.status_interval_min);
}

void Relay::emit(LogEvent event, uint32_t now_ms, const uint8_t* bytes, uint8_t size,
                 const uint32_t* values, uint8_t count) const {
  if (sink_ == nullptr) return;
  LogRecord record;
  record.event = event;
  record.count = count;
  record.size = size;
  record.now_ms = now_ms;
  record.bytes = bytes;
  for (uint8_t i = 0; i < count; ++i) record.values[i] = values[i];
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
  uint8_t bytes[kMaxFrame];
  int length;
  while ((length = queue_.pop(bytes)) >= 0) handle_transaction(bytes, length, now_ms);
  const uint16_t overflows = queue_.overflows();
  if (overflows != overflows_seen_) {
    count_drop(Name::kQueueOverflow, static_cast<uint16_t>(overflows - overflows_seen_), now_ms);
    overflows_seen_ = overflows;
  }
}

void Relay::serial_byte(uint8_t byte, uint32_t now_ms) {
  reader_.push(byte);
  FrameFields frame;
  for (;;) {
    const FrameResult r = reader_.next(frame);
    if (r == FrameResult::kNeedMore) return;
    if (r == FrameResult::kFrame) {
      handle_frame(frame, Name::kSerial, now_ms);
    } else {
      count_error(frame_error_name(r), Name::kSerial, now_ms);
    }
  }
}

void Relay::count_error(Name code, Name source, uint32_t now_ms) {
  note(LogEvent::kError, now_ms, code, source, ++invalid_);
}

void Relay::count_drop(Name reason, uint32_t n, uint32_t now_ms) {
  dropped_ += n;
  note(LogEvent::kDrop, now_ms, reason, n, dropped_);
}

void Relay::handle_transaction(const uint8_t* bytes, int length, uint32_t now_ms) {
  FrameFields frame;
  if (length == 1) {
    // The 2021 demo's contract: one byte, a class index, the class count meaning no face.
    const uint8_t classes = config_.label_set.classes;
    if (bytes[0] > classes) {
      count_error(Name::kLegacyRange, Name::kI2c, now_ms);
      return;
    }
    frame.type = FrameType::kLegacy;
    frame.label_set = config_.label_set.id;
    frame.label = bytes[0] == classes ? kNoFace : bytes[0];
    frame.confidence = kUnknownConfidence;
    frame.count = 0;
  } else {
    const FrameResult r = length == RxQueue::kOversize
                              ? FrameResult::kLength
                              : decode_frame(bytes, static_cast<uint8_t>(length), frame);
    if (r != FrameResult::kFrame) {
      count_error(frame_error_name(r), Name::kI2c, now_ms);
      return;
    }
  }
  handle_frame(frame, Name::kI2c, now_ms);
}

void Relay::handle_frame(const FrameFields& frame, Name source, uint32_t now_ms) {
  const uint8_t classes = config_.label_set.classes;
  uint8_t readings = 1;
  if (frame.type == FrameType::kFaces && frame.count > 1) readings = frame.count;
  if (frame.type == FrameType::kVitals && frame.label == kNoReading) readings = 0;
  if (frame.label_set != config_.label_set.id) {
    if (readings != 0) count_drop(Name::kSetMismatch, readings, now_ms);
    return;
  }
  bool in_range = frame.label == kNoFace || frame.label == kNoReading || frame.label < classes;
  if (frame.type == FrameType::kDistribution) in_range = frame.count == classes;
  for (uint8_t i = 0; i < frame.count && frame.type == FrameType::kFaces; ++i) {
    in_range = in_range && frame.faces[i].label < classes;
  }
  if (!in_range) {
    count_error(Name::kLabelRange, source, now_ms);
    return;
  }
  uint8_t label = frame.label;
  uint8_t confidence = frame.confidence;
  uint8_t percent[kMaxRelayClasses];
  if (frame.type == FrameType::kDistribution) {
    uint32_t weights[kMaxRelayClasses];
    for (uint8_t i = 0; i < classes; ++i) weights[i] = frame.weights[i];
    quantise_weights(weights, classes, percent);
    label = argmax(percent, classes);
    confidence = percent[label];
  } else if (frame.type == FrameType::kFaces) {
    label = frame.count == 0 ? kNoFace : frame.faces[0].label;
    confidence = frame.count == 0 ? kUnknownConfidence : frame.faces[0].confidence_pct;
  }
  static const Name kKinds[] = {Name::kLegacy, Name::kReading, Name::kDistribution, Name::kFaces, Name::kVitals};
  note(LogEvent::kReading, now_ms, source, kKinds[static_cast<uint8_t>(frame.type)],
       frame.label_set, label, confidence == kUnknownConfidence ? kOmit : confidence, readings);
  if (frame.type == FrameType::kVitals) {
    window_.add_vitals(frame.heart_rate_bpm, frame.skin_conductance_centi_us);
    if (frame.label == kNoReading) return;
  }
  if (frame.type == FrameType::kFaces) {
    if (frame.count == 0) add_reading(kNoFace, kUnknownConfidence, nullptr, now_ms);
    for (uint8_t i = 0; i < frame.count; ++i) {
      add_reading(frame.faces[i].label, frame.faces[i].confidence_pct, nullptr, now_ms);
    }
    return;
  }
  add_reading(label, confidence, frame.type == FrameType::kDistribution ? percent : nullptr, now_ms);
}

void Relay::add_reading(uint8_t label, uint8_t confidence, const uint8_t* percent, uint32_t now_ms) {
  if (!window_.add(label, confidence, percent, config_.label_set.classes)) {
    count_drop(Name::kWindowFull, 1, now_ms);
    return;
  }
  ++received_;
  // A new dominant emotion: kChangeStreak readings of one class in a row that differs from
  // the class the last uplink reported. "No face" never counts as an emotion.
  if (label == streak_label_) {
    if (streak_length_ != 0xFF) ++streak_length_;
  } else {
    streak_label_ = label;
    streak_length_ = 1;
    streak_confidence_sum_ = 0;
    streak_confidence_n_ = 0;
  }
  if (confidence != kUnknownConfidence && streak_confidence_n_ != 0xFF) {
    streak_confidence_sum_ = static_cast<uint16_t>(streak_confidence_sum_ + confidence);
    ++streak_confidence_n_;
  }
  if (streak_length_ == kChangeStreak && label != kNoFace && label != reported_label_) {
    change_pending_ = true;
    change_label_ = label;
    change_confidence_ = streak_confidence_n_ == 0
                             ? 0
                             : static_cast<uint8_t>(rounded_mean(streak_confidence_sum_, streak_confidence_n_));
  }
}

UplinkKind Relay::due(uint32_t /*now_ms*/) {
  if (uptime_s_ - last_status_s_ >= 60u * config_.status_interval_min) status_due_ = true;
  if (status_due_) return UplinkKind::kStatus;
  if (change_pending_) return UplinkKind::kChange;
  if (uptime_s_ - window_.start_s() >= config_.window_s) {
    if (window_.has_content(config_.mode)) return UplinkKind::kWindow;
    window_.reset(uptime_s_);  // nothing to report: start the next window now
  }
  return UplinkKind::kNone;
}

StatusFields Relay::status_fields() const {
  StatusFields s;
  s.protocol_version = kProtocolVersion;
  for (uint8_t i = 0; i < 3; ++i) s.firmware[i] = kFirmwareVersion[i];
  s.battery_percent = -1;
  s.uptime_s = uptime_s_;
  s.dropped = dropped_ + invalid_ < dropped_ ? 0xFFFFFFFF : dropped_ + invalid_;
  s.window_s = config_.window_s;
  s.mode = config_.mode;
  s.daily_budget_s = config_.daily_budget_s;
  s.label_set_id = config_.label_set.id;
  s.label_set_fingerprint = config_.label_set.fingerprint;
  s.command_seq = command_seq_;
  s.command_status = command_status_;
  return s;
}

Result Relay::build(UplinkKind kind, Payload& out) const {
  switch (kind) {
    case UplinkKind::kStatus: return encode_status(status_fields(), out);
    case UplinkKind::kChange: return encode_reading(config_.label_set, change_label_, change_confidence_, out);
    default: return window_.build(config_.label_set, config_.mode, uptime_s_, out);
  }
}

uint32_t Relay::pacer_cost(uint32_t airtime_ms) const {
  // Seconds of the daily allowance an uplink uses: its share of the daily cap,
  // airtime * 86400 / (budget_s * 1000), rounded up.
  const uint32_t budget = 5u * config_.daily_budget_s;
  return (airtime_ms * 432u + budget - 1) / budget;
}

void Relay::defer(UplinkKind kind, Name reason, uint32_t wait_s, uint32_t now_ms) {
  if (kind == deferred_kind_ && reason == deferred_reason_) return;  // log transitions only
  deferred_kind_ = kind;
  deferred_reason_ = reason;
  note(LogEvent::kDefer, now_ms, static_cast<uint8_t>(Name::kStatus) + static_cast<uint8_t>(kind) - 1, reason, wait_s);
}

Relay::Action Relay::plan(uint32_t now_ms, Payload& out) {
  tick(now_ms);
  if (uptime_s_ == last_plan_s_) return Action::kNone;  // decide at most once per second
  last_plan_s_ = uptime_s_;
  if (!joined_) {
    if (uptime_s_ < next_join_s_) return Action::kNone;
    // Every attempt is charged as a 23-byte join request at SF12, the worst case.
    const uint32_t join_ms = (time_on_air_us(23, 12, 125) + 999) / 1000;
    if (!ledger_.try_record(now_ms, join_ms)) {
      next_join_s_ = uptime_s_ + 60;
      defer(UplinkKind::kJoin, Name::kBudget, 60, now_ms);
      return Action::kNone;
    }
    if (join_attempts_ != 0xFF) ++join_attempts_;
    deferred_kind_ = UplinkKind::kNone;
    return Action::kJoin;
  }
  if (uptime_s_ < retry_at_s_) return Action::kNone;
  const UplinkKind kind = due(now_ms);
  if (kind == UplinkKind::kNone) return Action::kNone;
  if (build(kind, out) != Result::kOk) {
    // Not reachable with valid state; never let a bad message block the schedule.
    if (kind == UplinkKind::kWindow) {
      count_drop(Name::kEncode, window_.readings(), now_ms);
      window_.reset(uptime_s_);
    }
    status_due_ = status_due_ && kind != UplinkKind::kStatus;
    change_pending_ = change_pending_ && kind != UplinkKind::kChange;
    return Action::kNone;
  }
  uint8_t sf;
  uint16_t bandwidth;
  eu868_data_rate(data_rate_, sf, bandwidth);
  const uint32_t airtime = airtime_charge_ms(out.size, sf, bandwidth);
  if (now_ms - off_start_ms_ < off_length_ms_) {
    defer(kind, Name::kOfftime, (off_length_ms_ - (now_ms - off_start_ms_)) / 1000 + 1, now_ms);
    return Action::kNone;
  }
  const uint32_t cost = pacer_cost(airtime);
  uint32_t need = cost;
  if (kind == UplinkKind::kWindow) {
    // Keep enough for one prompt change (or acknowledgement) after a window message.
    const uint8_t reading_size = bytes_for_states(config_.label_set.classes * 101u + 1);
    need += pacer_cost(airtime_charge_ms(reading_size, sf, bandwidth));
  }
  // A message dearer than the whole bucket waits for a full bucket and leaves a debt.
  const int32_t threshold = need > static_cast<uint32_t>(kPacerBurstS) ? kPacerBurstS : static_cast<int32_t>(need);
  if (credit_s_ < threshold) {
    defer(kind, Name::kPacer, static_cast<uint32_t>(threshold - credit_s_), now_ms);
    return Action::kNone;
  }
  if (!ledger_.try_record(now_ms, airtime)) {
    defer(kind, Name::kBudget, kOmit, now_ms);
    return Action::kNone;
  }
  credit_s_ -= static_cast<int32_t>(cost);
  // The radio's own 1 % rule: after a transmission of T the sub-band rests for 99 T.
  off_start_ms_ = now_ms;
  off_length_ms_ = 100 * airtime;
  sending_ = kind;
  sent_data_rate_ = data_rate_;
  sent_airtime_ms_ = static_cast<uint16_t>(airtime);
  deferred_kind_ = UplinkKind::kNone;
  return Action::kSend;
}

void Relay::join_result(bool ok, int data_rate, uint32_t now_ms) {
  tick(now_ms);
  const uint8_t attempt = join_attempts_;
  uint32_t backoff = kOmit;
  if (ok) {
    joined_ = true;
    status_due_ = true;
    error_streak_ = 0;
    join_attempts_ = 0;
    if (data_rate >= 0 && data_rate <= 6) data_rate_ = static_cast<uint8_t>(data_rate);
  } else {
    // Backoff within LoRaWAN 1.0.4 §7's JoinReq duty cycle: 15 s doubling to 1 h, and after
    // 11 h of failures one attempt per 4.5 h (5.3 x 1.48 s < 8.7 s per day).
    if (attempt <= 1) first_join_failure_s_ = uptime_s_;
    backoff = attempt > 9 ? 3600 : 15u << (attempt - 1);
    if (backoff > 3600) backoff = 3600;
    if (uptime_s_ - first_join_failure_s_ >= 11u * 3600) backoff = 16200;
    next_join_s_ = uptime_s_ + backoff;
  }
  note(LogEvent::kJoin, now_ms, ok ? 1 : 0, attempt, ok ? data_rate_ : kOmit, backoff);
}

void Relay::uplink_result(int rc, int data_rate, const Payload& sent, uint32_t now_ms) {
  tick(now_ms);
  const UplinkKind kind = sending_;
  sending_ = UplinkKind::kNone;
  const bool delivered = rc > 0 || rc == -7;  // -7: sent, but the receive window failed
  Name outcome = Name::kSent;
  uint32_t readings = 0;
  if (delivered || rc == -3 || rc == -5 || rc == -20) {
    if (delivered) {
      ++uplinks_;
      error_streak_ = 0;
      listening_ = true;
      listen_from_ms_ = now_ms;
    } else {
      outcome = Name::kDiscarded;  // the modem refused the message itself: retrying cannot help
      ++error_streak_;
    }
    if (kind == UplinkKind::kStatus) {
      status_due_ = false;
      last_status_s_ = uptime_s_;
    } else if (kind == UplinkKind::kChange) {
      change_pending_ = false;
      if (delivered) reported_label_ = change_label_;
    } else if (kind == UplinkKind::kWindow) {
      if (delivered) {
        readings = window_.readings();
        reported_label_ = window_.dominant(config_.label_set.classes);
        if (change_label_ == reported_label_) change_pending_ = false;
      } else {
        count_drop(Name::kUplinkRejected, window_.readings(), now_ms);
      }
      window_.reset(uptime_s_);
    }
  } else if (rc == -6) {
    outcome = Name::kRejoin;  // not joined: keep the message and join again now
    joined_ = false;
    next_join_s_ = uptime_s_;
  } else {
    outcome = Name::kRetry;  // timeout, error, busy, unknown: the message waits and is rebuilt
    ++error_streak_;
    const uint32_t wait = 10u << (error_streak_ > 5 ? 5 : error_streak_);
    retry_at_s_ = uptime_s_ + (wait > 300 ? 300 : wait);
  }
  if (error_streak_ >= kRejoinAfterErrors && joined_) {
    outcome = Name::kRejoin;
    joined_ = false;
    next_join_s_ = uptime_s_;
    error_streak_ = 0;
  }
  if (data_rate >= 0 && data_rate <= 6) data_rate_ = static_cast<uint8_t>(data_rate);
  const uint32_t type = sent.port == kStatusPort
                            ? static_cast<uint32_t>(Name::kStatus)
                            : static_cast<uint32_t>(Name::kReading) + (sent.port - kSetBlockBase) % kSetBlockSize;
  const uint32_t values[] = {type, static_cast<uint32_t>(Name::kStatus) + static_cast<uint8_t>(kind) - 1,
                             sent.port, sent.size, sent_data_rate_, sent_airtime_ms_,
                             static_cast<uint32_t>(rc), static_cast<uint32_t>(outcome), readings,
                             ledger_.used_hour_ms(now_ms), ledger_.used_day_ms(now_ms),
                             static_cast<uint32_t>(credit_s_)};
  emit(LogEvent::kUplink, now_ms, sent.bytes, sent.size, values, sizeof(values) / sizeof(values[0]));
  if (delivered && kind == UplinkKind::kStatus) log_stats(now_ms);
}

void Relay::apply_label_set(const LabelSet& set, uint32_t now_ms) {
  // Counts are per class index of the old set: they cannot be carried over.
  if (window_.readings() != 0) count_drop(Name::kLabelSetChange, window_.readings(), now_ms);
  window_.reset(uptime_s_);
  config_.label_set = set;
  streak_label_ = kNoReading;
  streak_length_ = 0;
  reported_label_ = kNoReading;
  change_pending_ = false;
}

void Relay::downlink(int port, const uint8_t* data, uint8_t length, uint32_t now_ms) {
  tick(now_ms);
  Name result_name = Name::kIgnored;
  if ((port < 0 || port == kCommandPort) && length != 0) {
    // All commands or none: stage the changes, then apply them only if every one is valid.
    Config staged = config_;
    CommandStatus result = CommandStatus::kApplied;
    for (uint8_t i = 1; i < length && result == CommandStatus::kApplied;) {
      static const uint8_t kArgumentBytes[] = {0xFF, 2, 1, 2, 4, 0, 2};  // by opcode 1..6
      const uint8_t opcode = data[i];
      const uint8_t size = opcode < sizeof(kArgumentBytes) ? kArgumentBytes[opcode] : 0xFF;
      if (size == 0xFF || i + 1u + size > length) {
        result = CommandStatus::kUnknownCommand;
        break;
      }
      const uint8_t* a = data + i + 1;
      const uint16_t value = size >= 2 ? be16(a) : (size == 1 ? a[0] : 0);
      if (opcode == 1) {
        staged.window_s = value + 1u;
      } else if (opcode == 2) {
        if (value > 3) result = CommandStatus::kRejected;
        staged.mode = static_cast<Mode>(value);
      } else if (opcode == 3) {
        if (value > 1023) result = CommandStatus::kRejected;
        staged.daily_budget_s = static_cast<uint16_t>(value + 1);
      } else if (opcode == 4) {
        LabelSet builtin;
        const LabelSet wanted = {a[0], a[1], be16(a + 2)};
        const bool known = builtin_label_set(wanted.id, builtin);
        if (wanted.id > kMaxSetId || wanted.classes < 2 || wanted.classes > kMaxRelayClasses ||
            (known && (builtin.classes != wanted.classes || builtin.fingerprint != wanted.fingerprint))) {
          result = CommandStatus::kRejected;
        }
        staged.label_set = wanted;
      } else if (opcode == 6) {
        if (value == 0) result = CommandStatus::kRejected;
        staged.status_interval_min = value;
      }  // opcode 5 asks for a status message, which every command downlink gets anyway
      i = static_cast<uint8_t>(i + 1 + size);
    }
    if (result == CommandStatus::kApplied) {
      const LabelSet wanted = staged.label_set;
      const bool set_changed = wanted.id != config_.label_set.id || wanted.classes != config_.label_set.classes ||
                               wanted.fingerprint != config_.label_set.fingerprint;
      staged.label_set = config_.label_set;
      config_ = staged;
      if (set_changed) apply_label_set(wanted, now_ms);
      ledger_.set_daily_cap_ms(1000u * config_.daily_budget_s);
    }
    command_seq_ = data[0];
    command_status_ = result;
    status_due_ = true;  // the acknowledgement travels in the next status message
    result_name = static_cast<Name>(static_cast<uint8_t>(Name::kApplied) + static_cast<uint8_t>(result) - 1);
  }
  const uint32_t values[] = {static_cast<uint32_t>(port), length, length != 0 ? data[0] : kOmit,
                             static_cast<uint32_t>(result_name)};
  emit(LogEvent::kDownlink, now_ms, data, length, values, 4);
  if (result_name == Name::kApplied) log_config(now_ms);
}

void Relay::log_config(uint32_t now_ms) {
  note(LogEvent::kConfig, now_ms, config_.mode, config_.window_s, config_.daily_budget_s,
       config_.label_set.id, config_.label_set.classes, config_.status_interval_min);
}

void Relay::log_stats(uint32_t now_ms) {
  note(LogEvent::kStats, now_ms, received_, dropped_, invalid_, window_.readings(), uplinks_);
}

}  // namespace lora_emotion
