// LoraEmotionLog.h - turns the relay's LogRecords into the text lines of
// docs/relay-protocol.md ("LE1 <uptime_ms> <event> key=value ..."), which
// lora_emotion.relay_protocol.parse_log_line reads back.
//
// Separate from the core on purpose: the relay itself only produces numbers; a build that
// has nobody listening on USB can leave the formatter (and its strings) out.
#ifndef LORA_EMOTION_LOG_H
#define LORA_EMOTION_LOG_H

#include "LoraEmotionRelay.h"

namespace lora_emotion {

// Longest line: an uplink with 51 bytes of hex is about 230 characters.
constexpr size_t kMaxLogLine = 256;

// Writes the line (without line ending, NUL-terminated) into out; returns its length. A
// line that does not fit is cut at capacity - 1 characters.
size_t format_log_line(const LogRecord& record, char* out, size_t capacity);

}  // namespace lora_emotion

#endif  // LORA_EMOTION_LOG_H
