// LoraEmotionLog.cpp - the text form of LogRecords, driven by one format string per event.
#include "LoraEmotionLog.h"

namespace lora_emotion {

namespace {

// Per event, its keys in the order the core fills the values. %u unsigned, %d signed,
// %n a Name, %m a Mode, %l a label (class, "none" or "absent"), %v a version (3 values),
// %h the record's bytes as hex (no value). A value of kOmit drops its whole key=value.
const char* const kFormats[] = {
    "boot fw=%v proto=%u set=%u classes=%u mode=%m window_s=%u budget_s=%u ledger=%u "
    "status_min=%u",
    "join ok=%u attempt=%u dr=%u next_s=%u",
    "reading src=%n kind=%n set=%u label=%l conf=%u n=%u",
    "drop reason=%n n=%u total=%u",
    "error code=%n src=%n total=%u",
    "defer kind=%n reason=%n wait_s=%u",
    "uplink kind=%n cause=%n port=%u size=%u hex=%h dr=%u airtime_ms=%u rc=%d outcome=%n "
    "readings=%u hour_ms=%u day_ms=%u credit_s=%d",
    "downlink port=%d size=%u hex=%h seq=%u result=%n",
    "config mode=%m window_s=%u budget_s=%u set=%u classes=%u status_min=%u",
    "stats received=%u dropped=%u invalid=%u window_readings=%u uplinks=%u",
};

const char* const kNames[] = {
    "none", "i2c", "serial", "legacy", "reading", "distribution", "faces", "summary", "vitals",
    "batch", "status", "change", "window", "join", "sent", "retry", "discarded", "rejoin",
    "applied", "rejected", "unknown_command", "ignored", "sync", "length", "checksum", "type",
    "payload", "legacy_range", "label_range", "set_mismatch", "window_full", "queue_overflow",
    "uplink_rejected", "label_set_change", "encode", "offtime", "pacer", "budget", "modem",
    "setup",
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Name::kCount),
              "one name per Name");
static_assert(sizeof(kFormats) / sizeof(kFormats[0]) == static_cast<size_t>(LogEvent::kCount),
              "one format per LogEvent");

const char* const kModes[] = {"reading", "distribution", "summary", "vitals"};

class Writer {
 public:
  Writer(char* out, size_t capacity) : out_(out), capacity_(capacity), length_(0) {}
  void put(char c) {
    if (length_ + 1 < capacity_) out_[length_++] = c;
  }
  void text(const char* s) {
    while (*s != '\0') put(*s++);
  }
  void number(uint32_t value) {
    char digits[10];
    uint8_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (n > 0) put(digits[--n]);
  }
  size_t length() const { return length_; }
  void rewind(size_t length) { length_ = length; }
  size_t finish() {
    if (capacity_ != 0) out_[length_] = '\0';
    return length_;
  }

 private:
  char* out_;
  size_t capacity_;
  size_t length_;
};

}  // namespace

size_t format_log_line(const LogRecord& record, char* out, size_t capacity) {
  static const char kHex[] = "0123456789ABCDEF";
  Writer w(out, capacity);
  w.text("LE1 ");
  w.number(record.now_ms);
  w.put(' ');
  const uint8_t event = static_cast<uint8_t>(record.event);
  if (event >= static_cast<uint8_t>(LogEvent::kCount)) return w.finish();
  uint8_t next = 0;
  size_t token_start = w.length();
  for (const char* f = kFormats[event]; *f != '\0'; ++f) {
    if (*f == ' ') token_start = w.length();
    if (*f != '%') {
      w.put(*f);
      continue;
    }
    const char kind = *++f;
    if (kind == 'h') {
      for (uint8_t i = 0; i < record.size; ++i) {
        w.put(kHex[record.bytes[i] >> 4]);
        w.put(kHex[record.bytes[i] & 0xF]);
      }
      continue;
    }
    const uint32_t value = next < record.count ? record.values[next++] : kOmit;
    if (value == kOmit && kind != 'd') {
      w.rewind(token_start);  // leave the key out altogether
      continue;
    }
    if (kind == 'v') {
      w.number(value);
      for (uint8_t i = 0; i < 2 && next < record.count; ++i) {
        w.put('.');
        w.number(record.values[next++]);
      }
    } else if (kind == 'd' && static_cast<int32_t>(value) < 0) {
      w.put('-');
      w.number(0u - value);
    } else if (kind == 'n') {
      w.text(value < static_cast<uint32_t>(Name::kCount) ? kNames[value] : "unknown");
    } else if (kind == 'm') {
      w.text(value < 4 ? kModes[value] : "unknown");
    } else if (kind == 'l' && value >= kNoReading) {
      w.text(value == kNoFace ? "none" : "absent");
    } else {
      w.number(value);
    }
  }
  return w.finish();
}

}  // namespace lora_emotion
