// size_codec.cpp - the codec alone (what KPN's ThingsML library is compared with): every
// encoder the relay uses, quantisation, airtime, the ledger and the CRC.
#include "LoraEmotionCore.h"

namespace {
volatile uint32_t g_sink;
lora_emotion::AirtimeLedger g_ledger;
}  // namespace

extern "C" void size_entry() {
  using namespace lora_emotion;
  LabelSet set;
  builtin_label_set(static_cast<uint8_t>(g_sink), set);
  Payload out;
  uint8_t percent[kMaxWireClasses];
  uint16_t counts[kMaxWireClasses] = {0};
  uint32_t weights[kMaxWireClasses] = {0};
  weights[0] = g_sink;
  quantise_weights(weights, set.classes, percent);
  encode_reading(set, 3, 87, out);
  encode_distribution(set, percent, out);
  encode_summary(set, g_sink, counts, 1, 0, out);
  VitalsFields vitals = {70, 321, 1, 60};
  encode_vitals(set, vitals, out);
  StatusFields status = {};
  encode_status(status, out);
  g_ledger.begin();
  g_sink = g_ledger.try_record(g_sink, airtime_charge_ms(out.size, 7)) + g_ledger.used_hour_ms(g_sink) +
           g_ledger.used_day_ms(g_sink) + crc16_ccitt(out.bytes, out.size) + out.bytes[0];
}
