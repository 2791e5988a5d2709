// size_log.cpp - the text log formatter alone (optional: a sketch without a USB listener can
// leave it out).
#include "LoraEmotionLog.h"

namespace {
volatile uint32_t g_sink;
}

extern "C" void size_entry() {
  lora_emotion::LogRecord record = {};
  record.event = static_cast<lora_emotion::LogEvent>(g_sink);
  char line[lora_emotion::kMaxLogLine];
  g_sink = lora_emotion::format_log_line(record, line, sizeof(line)) + static_cast<uint8_t>(line[0]);
}
