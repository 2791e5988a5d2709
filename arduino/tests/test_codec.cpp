// test_codec.cpp - the C++ encoder against the golden vectors shared with the Python tests.
#include "../LoraEmotion/src/LoraEmotionCore.h"
#include "test_harness.h"

using namespace lora_emotion;

namespace {

Json label_sets() { return test_vectors("messages.json").get("label_sets"); }

bool set_of(long id, LabelSet& out) { return id >= 0 && builtin_label_set(static_cast<uint8_t>(id), out); }

// Class index of a label name in a built-in set; kNoFace for JSON null, 0xEE if unknown.
uint8_t label_index(long set_id, Json label) {
  if (label.is_null()) return kNoFace;
  Json sets = label_sets();
  for (size_t s = 0; sets.at(s).valid(); ++s) {
    if (sets.at(s).get("id").as_int() != set_id) continue;
    Json labels = sets.at(s).get("labels");
    for (size_t i = 0; labels.at(i).valid(); ++i) {
      char name[40];
      if (label.str(name, sizeof(name)) && labels.at(i).str_eq(name)) return static_cast<uint8_t>(i);
    }
  }
  return 0xEE;
}

uint8_t confidence(Json value) { return value.is_null() ? 0 : static_cast<uint8_t>(value.as_int()); }

bool read_percent(Json array, uint8_t* out, size_t capacity) {
  size_t n = array.size();
  if (n == 0 || n > capacity) return false;
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(array.at(i).as_int());
  return true;
}

VitalsFields vitals_of(long set_id, Json m) {
  VitalsFields v;
  Json hr = m.get("heart_rate_bpm");
  Json sc = m.get("skin_conductance_centi_us");
  Json reading = m.get("reading");
  v.heart_rate_bpm = static_cast<int16_t>(hr.is_null() ? -1 : hr.as_int());
  v.skin_conductance_centi_us = static_cast<int16_t>(sc.is_null() ? -1 : sc.as_int());
  v.label = reading.is_null() ? kNoReading : label_index(set_id, reading.get("label"));
  v.confidence_pct = reading.is_null() ? 0 : confidence(reading.get("confidence_pct"));
  return v;
}

Mode mode_of(Json name) {
  if (name.str_eq("reading")) return Mode::kReading;
  if (name.str_eq("distribution")) return Mode::kDistribution;
  if (name.str_eq("vitals")) return Mode::kVitals;
  return Mode::kSummary;
}

CommandStatus command_status_of(Json name) {
  if (name.str_eq("applied")) return CommandStatus::kApplied;
  if (name.str_eq("rejected")) return CommandStatus::kRejected;
  if (name.str_eq("unknown_command")) return CommandStatus::kUnknownCommand;
  return CommandStatus::kNone;
}

Result encode_batch(const LabelSet& set, Json m, Payload& out) {
  MessageType kind = MessageType::kBatchReadings;
  if (m.get("kind").str_eq("distribution")) kind = MessageType::kBatchDistributions;
  if (m.get("kind").str_eq("vitals")) kind = MessageType::kBatchVitals;
  BatchEncoder batch(set, kind);
  Json entries = m.get("entries");
  for (size_t i = 0; entries.at(i).valid(); ++i) {
    uint32_t age = static_cast<uint32_t>(entries.at(i).get("age_s").as_int());
    Json e = entries.at(i).get("message");
    if (kind == MessageType::kBatchReadings) {
      batch.add_reading(age, label_index(set.id, e.get("label")), confidence(e.get("confidence_pct")));
    } else if (kind == MessageType::kBatchDistributions) {
      uint8_t percent[kMaxWireClasses];
      if (!read_percent(e.get("percent"), percent, kMaxWireClasses)) return Result::kBadArgument;
      batch.add_distribution(age, percent);
    } else {
      batch.add_vitals(age, vitals_of(set.id, e));
    }
  }
  return batch.finish(out);
}

Result encode_message(Json m, Payload& out) {
  if (m.get("type").str_eq("status")) {
    StatusFields s;
    Json fw = m.get("firmware");
    s.protocol_version = static_cast<uint8_t>(m.get("protocol_version").as_int());
    for (size_t i = 0; i < 3; ++i) s.firmware[i] = static_cast<uint8_t>(fw.at(i).as_int());
    Json battery = m.get("battery_percent");
    s.battery_percent = static_cast<int8_t>(battery.is_null() ? -1 : battery.as_int());
    s.uptime_s = static_cast<uint32_t>(m.get("uptime_s").as_int());
    s.dropped = static_cast<uint32_t>(m.get("dropped").as_int());
    s.window_s = static_cast<uint32_t>(m.get("window_s").as_int());
    s.mode = mode_of(m.get("mode"));
    s.daily_budget_s = static_cast<uint16_t>(m.get("daily_budget_s").as_int());
    s.label_set_id = static_cast<uint8_t>(m.get("label_set_id").as_int());
    s.label_set_fingerprint = static_cast<uint16_t>(m.get("label_set_fingerprint").as_int());
    s.command_seq = static_cast<uint8_t>(m.get("command_seq").as_int());
    s.command_status = command_status_of(m.get("command_status"));
    return encode_status(s, out);
  }
  LabelSet set;
  long set_id = m.get("label_set").as_int();
  if (!set_of(set_id, set)) return Result::kBadArgument;
  if (m.get("type").str_eq("reading")) {
    return encode_reading(set, label_index(set_id, m.get("label")), confidence(m.get("confidence_pct")), out);
  }
  if (m.get("type").str_eq("distribution")) {
    uint8_t percent[kMaxWireClasses];
    if (!read_percent(m.get("percent"), percent, kMaxWireClasses)) return Result::kBadArgument;
    return encode_distribution(set, percent, out);
  }
  if (m.get("type").str_eq("faces")) {
    Json faces = m.get("faces");
    Face list[32];
    uint8_t n = 0;
    for (; faces.at(n).valid() && n < 32; ++n) {
      list[n].label = label_index(set_id, faces.at(n).get("label"));
      list[n].confidence_pct = confidence(faces.at(n).get("confidence_pct"));
    }
    return encode_faces(set, list, n, out);
  }
  if (m.get("type").str_eq("summary")) {
    uint16_t counts[kMaxWireClasses];
    Json c = m.get("counts");
    for (uint8_t i = 0; i < set.classes; ++i) counts[i] = static_cast<uint16_t>(c.at(i).as_int());
    return encode_summary(set, static_cast<uint32_t>(m.get("window_s").as_int()), counts,
                          static_cast<uint16_t>(m.get("no_face").as_int()),
                          confidence(m.get("mean_confidence_pct")), out);
  }
  if (m.get("type").str_eq("vitals")) return encode_vitals(set, vitals_of(set_id, m), out);
  if (m.get("type").str_eq("batch")) return encode_batch(set, m, out);
  return Result::kBadArgument;
}

void test_builtin_label_sets() {
  Json sets = label_sets();
  CHECK(sets.size() == 6);
  for (size_t s = 0; sets.at(s).valid(); ++s) {
    Json entry = sets.at(s);
    LabelSet set;
    CHECK(builtin_label_set(static_cast<uint8_t>(entry.get("id").as_int()), set));
    CHECK_EQ(entry.get("labels").size(), set.classes);
    CHECK_EQ(entry.get("fingerprint").as_int(), set.fingerprint);
    // The fingerprint is CRC-16/CCITT-FALSE over the names joined by newlines.
    uint16_t crc = 0xFFFF;
    Json labels = entry.get("labels");
    for (size_t i = 0; labels.at(i).valid(); ++i) {
      char name[40];
      size_t n = labels.at(i).str(name, sizeof(name));
      if (i > 0) crc = crc16_ccitt(reinterpret_cast<const uint8_t*>("\n"), 1, crc);
      crc = crc16_ccitt(reinterpret_cast<const uint8_t*>(name), n, crc);
    }
    CHECK_EQ(set.fingerprint, crc);
  }
  LabelSet unused;
  CHECK(!builtin_label_set(6, unused));
}

void test_message_vectors() {
  Json vectors = test_vectors("messages.json").get("vectors");
  CHECK(vectors.size() >= 30);
  for (size_t i = 0; vectors.at(i).valid(); ++i) {
    Json v = vectors.at(i);
    char name[80];
    char expected[2 * kMaxPayload + 1];
    v.get("name").str(name, sizeof(name));
    v.get("hex").str(expected, sizeof(expected));
    Payload out;
    Result r = encode_message(v.get("message"), out);
    char got[2 * kMaxPayload + 1] = "";
    if (r == Result::kOk) bytes_to_hex(out.bytes, out.size, got);
    const bool same = r == Result::kOk && str_equal(expected, got) &&
                      out.port == v.get("fport").as_int() && out.size == v.get("size").as_int();
    ++g_test_stats.checks;
    if (!same) {
      test_fail(__FILE__, __LINE__, name);
      test_write("    expected ");
      test_write(expected);
      test_write(" got ");
      test_write(got);
      test_write(" result ");
      test_write_u32(static_cast<uint32_t>(r));
      test_write(" port ");
      test_write_u32(out.port);
      test_write("\n");
    }
  }
}

void test_encoder_rejections() {
  LabelSet fer;
  builtin_label_set(0, fer);
  Payload out;
  CHECK(encode_reading(fer, 7, 50, out) == Result::kBadArgument);     // class 7 of 7
  CHECK(encode_reading(fer, 3, 101, out) == Result::kBadArgument);    // 101 %
  uint8_t not_100[7] = {50, 49, 0, 0, 0, 0, 0};
  CHECK(encode_distribution(fer, not_100, out) == Result::kBadArgument);
  uint16_t counts[7] = {0, 0, 0, 0, 0, 0, 0};
  CHECK(encode_summary(fer, 60, counts, 3, 40, out) == Result::kBadArgument);  // mean w/o class
  CHECK(encode_summary(fer, 0, counts, 3, 0, out) == Result::kBadArgument);
  CHECK(encode_summary(fer, 65537, counts, 3, 0, out) == Result::kBadArgument);
  uint16_t too_many[7] = {60000, 6000, 0, 0, 0, 0, 0};
  CHECK(encode_summary(fer, 60, too_many, 0, 50, out) == Result::kBadArgument);
  VitalsFields none = {-1, -1, kNoReading, 0};
  CHECK(encode_vitals(fer, none, out) == Result::kBadArgument);
  VitalsFields hot = {251, -1, kNoReading, 0};
  CHECK(encode_vitals(fer, hot, out) == Result::kBadArgument);
  Face faces[60];
  for (auto& f : faces) f = Face{3, 50};
  // faces-per-payload for FER-2013: 707^n must fit 51 bytes with strictly growing lengths.
  uint8_t fit = 0;
  while (fit < 60 && encode_faces(fer, faces, static_cast<uint8_t>(fit + 1), out) == Result::kOk) ++fit;
  CHECK(fit > 30 && fit < 60);
  CHECK(encode_faces(fer, faces, static_cast<uint8_t>(fit + 1), out) == Result::kTooLarge);
  Face no_face = {kNoFace, 0};
  CHECK(encode_faces(fer, &no_face, 1, out) == Result::kBadArgument);
  LabelSet bad = {24, 7, 0};
  CHECK(encode_reading(bad, 0, 0, out) == Result::kBadArgument);
  // Batches: ages must not decrease, gaps stay below 4096 s, kinds do not mix.
  BatchEncoder order(fer, MessageType::kBatchReadings);
  CHECK(order.add_reading(10, 1, 1) == Result::kOk);
  CHECK(order.add_reading(5, 1, 1) == Result::kBadArgument);
  CHECK(order.finish(out) == Result::kBadArgument);
  BatchEncoder gap(fer, MessageType::kBatchReadings);
  CHECK(gap.add_reading(4096, 1, 1) == Result::kBadArgument);
  BatchEncoder mixed(fer, MessageType::kBatchReadings);
  VitalsFields hr = {70, -1, kNoReading, 0};
  CHECK(mixed.add_vitals(0, hr) == Result::kBadArgument);
  BatchEncoder empty(fer, MessageType::kBatchVitals);
  CHECK(empty.finish(out) == Result::kBadArgument);
}

void test_big_uint() {
  // C(163, 63) = 1 0C10 0AF9 ...: compare with the composition count the Python gives for a
  // 64-class distribution by re-deriving it two ways.
  BigUint a(1);
  a.mul_binomial(163, 63);
  BigUint b(1);
  b.mul_binomial(163, 100);  // symmetric
  CHECK(a.compare(b) == 0);
  BigUint c(1);
  for (uint32_t j = 1; j <= 63; ++j) c.mul_small(100 + j);  // 163! / 100!
  for (uint32_t j = 2; j <= 63; ++j) CHECK_EQ(0, c.div_small(static_cast<uint16_t>(j)));
  CHECK(a.compare(c) == 0);
  CHECK(!a.overflowed());
  // Overflow is sticky and makes write_be fail.
  BigUint big(0xFFFFFF);
  for (int i = 0; i < 30; ++i) big.mul_small(0xFFFFFF);
  CHECK(big.overflowed());
  uint8_t out[kMaxPayload];
  CHECK(!big.write_be(out, kMaxPayload));
  BigUint small(0x1234);
  CHECK(small.write_be(out, 2));
  CHECK_EQ(0x12, out[0]);
  CHECK_EQ(0x34, out[1]);
  CHECK(!small.write_be(out, 1));
  small.sub(BigUint(0x1233));
  CHECK_EQ(1, small.length());
  small.decrement();
  CHECK_EQ(0, small.length());
  // complement_add: other - 1 - *this, across a borrow into a higher byte and from zero.
  BigUint low(0x00FF);
  low.complement_add(BigUint(0x10000));
  CHECK(low.compare(BigUint(0xFF00)) == 0 && !low.overflowed());
  BigUint zero;
  zero.complement_add(BigUint(256));
  CHECK(zero.compare(BigUint(255)) == 0 && zero.length() == 1 && !zero.overflowed());
  BigUint equal(7);
  equal.complement_add(BigUint(7));  // below zero: reported as an overflow
  CHECK(equal.overflowed());
  CHECK_EQ(1, bytes_for_states(1));
  CHECK_EQ(1, bytes_for_states(256));
  CHECK_EQ(2, bytes_for_states(257));
  CHECK_EQ(2, bytes_for_states(708));
}

void test_airtime_vectors() {
  Json vectors = test_vectors("airtime.json");
  CHECK(vectors.size() > 20);
  for (size_t i = 0; vectors.at(i).valid(); ++i) {
    Json v = vectors.at(i);
    const uint8_t sf = static_cast<uint8_t>(v.get("sf").as_int());
    const uint16_t bw = static_cast<uint16_t>(v.get("bandwidth_khz").as_int());
    long expected = v.get("airtime_us").as_int();
    uint32_t got;
    if (v.has("phy_bytes")) {
      got = time_on_air_us(static_cast<uint16_t>(v.get("phy_bytes").as_int()), sf, bw);
    } else {
      uint16_t payload = static_cast<uint16_t>(v.get("payload_size").as_int());
      got = time_on_air_us(static_cast<uint16_t>(payload + 13), sf, bw);
      if (payload + 13 <= 255) {
        CHECK_EQ((expected + 999) / 1000, airtime_charge_ms(static_cast<uint8_t>(payload), sf, bw));
      }
    }
    CHECK_EQ(expected, got);
  }
  CHECK_EQ(0, time_on_air_us(13, 6, 125));
  CHECK_EQ(0, time_on_air_us(13, 7, 200));
  CHECK_EQ(0, time_on_air_us(256, 7, 125));
  // Below 13 bytes the datasheet's numerator can be negative; its ceil is clamped at 0 blocks.
  CHECK_EQ(4u * 8 + 17 + 4 * 8, time_on_air_us(0, 12, 125) / 8192);
  uint8_t sf;
  uint16_t bw;
  CHECK(eu868_data_rate(0, sf, bw) && sf == 12 && bw == 125);
  CHECK(eu868_data_rate(5, sf, bw) && sf == 7 && bw == 125);
  CHECK(eu868_data_rate(6, sf, bw) && sf == 7 && bw == 250);
  CHECK(!eu868_data_rate(7, sf, bw));
}

// Integer weights, and the integer weights of the float probabilities (docs/payload-format.md
// section 4.1: the relay has no floats, but its rule must give the Python codec's bytes).
void check_quantise_cases(Json cases) {
  for (size_t i = 0; cases.at(i).valid(); ++i) {
    Json weights = cases.at(i).get("weights");
    Json percent = cases.at(i).get("percent");
    uint32_t w[kMaxWireClasses];
    uint8_t n = static_cast<uint8_t>(weights.size());
    for (uint8_t k = 0; k < n; ++k) w[k] = static_cast<uint32_t>(weights.at(k).as_int());
    uint8_t got[kMaxWireClasses];
    CHECK(quantise_weights(w, n, got) == Result::kOk);
    for (uint8_t k = 0; k < n; ++k) CHECK_EQ(percent.at(k).as_int(), got[k]);
  }
}

void test_quantise_vectors() {
  Json doc = test_vectors("quantise.json");
  CHECK(doc.get("cases").size() >= 5);
  CHECK(doc.get("probabilities").size() >= 5);
  check_quantise_cases(doc.get("cases"));
  check_quantise_cases(doc.get("probabilities"));
  // An exact tie goes to the lower index: 4:1:1 is 67, 17, 16.
  const uint32_t tie[3] = {4, 1, 1};
  uint8_t shares[3];
  CHECK(quantise_weights(tie, 3, shares) == Result::kOk);
  CHECK_EQ(67, shares[0]);
  CHECK_EQ(17, shares[1]);
  CHECK_EQ(16, shares[2]);
  uint32_t zero[3] = {0, 0, 0};
  uint8_t out[3];
  CHECK(quantise_weights(zero, 3, out) == Result::kBadArgument);
  uint32_t huge[2] = {0x7FFFFFFF, 1};
  CHECK(quantise_weights(huge, 2, out) == Result::kBadArgument);
}

void test_ledger_vectors() {
  Json doc = test_vectors("ledger.json");
  Json traces = doc.get("traces");
  CHECK(traces.size() >= 2);
  for (size_t t = 0; traces.at(t).valid(); ++t) {
    Json trace = traces.at(t);
    if (trace.get("capacity").as_int() != AirtimeLedger::kCapacity) {
      test_write("    ledger trace skipped: capacity differs from LORA_EMOTION_LEDGER_CAPACITY\n");
      continue;
    }
    static AirtimeLedger ledger;  // static: 6 bytes per slot is too much stack on the emulator
    Json daily = trace.get("daily_cap_ms");
    ledger.begin(static_cast<uint32_t>(trace.get("duty_cycle_budget_ms").as_int()),
                 static_cast<uint32_t>(trace.get("duty_cycle_window_ms").as_int()),
                 daily.is_null() ? 0u : static_cast<uint32_t>(daily.as_int()),
                 static_cast<uint32_t>(trace.get("daily_window_ms").as_int()));
    for (Json op = trace.get("ops").first(); op.valid(); op = op.next()) {
      Json name = op.at(0);
      const uint32_t now = static_cast<uint32_t>(op.at(1).as_int());
      const uint32_t air = static_cast<uint32_t>(op.at(2).as_int(0));
      Json expect = op.at(3);
      if (name.str_eq("can_send")) {
        CHECK_EQ(expect.is_true(), ledger.can_send(now, air));
      } else if (name.str_eq("record")) {
        CHECK_EQ(expect.is_true(), ledger.record(now, air));
      } else if (name.str_eq("used_hour_ms")) {
        CHECK_EQ(expect.as_int(), ledger.used_hour_ms(now));
      } else if (name.str_eq("used_day_ms")) {
        CHECK_EQ(expect.as_int(), ledger.used_day_ms(now));
      } else if (name.str_eq("next_allowed_ms")) {
        uint32_t at = 0;
        const bool ok = ledger.next_allowed_ms(now, air, at);
        CHECK_EQ(!expect.is_null(), ok);
        if (ok && !expect.is_null()) CHECK_EQ(expect.as_int(), at);
      } else if (name.str_eq("len")) {
        CHECK_EQ(expect.as_int(), ledger.size());
      } else {
        CHECK(false);
      }
    }
  }
}

}  // namespace

void register_codec_suites() {
  run_suite("builtin label sets", test_builtin_label_sets);
  run_suite("messages.json vectors", test_message_vectors);
  run_suite("encoder rejections", test_encoder_rejections);
  run_suite("big integer", test_big_uint);
  run_suite("airtime.json vectors", test_airtime_vectors);
  run_suite("quantise.json vectors", test_quantise_vectors);
  run_suite("ledger.json traces", test_ledger_vectors);
}
