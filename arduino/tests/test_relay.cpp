// test_relay.cpp - frames, downlinks and the scheduler, against shared vectors and scripted
// modem behaviour. Runs on the host (sanitizers) and on the ARMv6-M emulator.
#include "../LoraEmotion/src/LoraEmotionLog.h"
#include "../LoraEmotion/src/LoraEmotionRelay.h"
#include "test_harness.h"

using namespace lora_emotion;

namespace {

// ---- doubles ------------------------------------------------------------------------------

uint32_t g_now = 0;
uint32_t test_clock() { return g_now; }

struct TestLog {
  uint32_t counts[static_cast<uint8_t>(LogEvent::kCount)];
  LogRecord last[static_cast<uint8_t>(LogEvent::kCount)];
  uint8_t last_bytes[static_cast<uint8_t>(LogEvent::kCount)][kMaxPayload];
  char line[kMaxLogLine];  // the last line formatted
  uint32_t uplink_airtime_ms;
  uint32_t uplinks_sent;
  uint32_t readings_sent;
  uint8_t outcomes[48];  // Name of each uplink's outcome, in order
  uint8_t n_outcomes;
};
TestLog g_log;
bool g_verbose = false;

void capture(const LogRecord& record) {
  const uint8_t e = static_cast<uint8_t>(record.event);
  ++g_log.counts[e];
  g_log.last[e] = record;
  for (uint8_t i = 0; i < record.size && i < kMaxPayload; ++i) g_log.last_bytes[e][i] = record.bytes[i];
  g_log.last[e].bytes = g_log.last_bytes[e];
  format_log_line(record, g_log.line, sizeof(g_log.line));
  if (g_verbose) { test_write(g_log.line); test_write("\n"); }
  if (record.event == LogEvent::kUplink && record.values[7] == static_cast<uint32_t>(Name::kSent)) {
    ++g_log.uplinks_sent;
    g_log.readings_sent += record.values[8];
  }
  if (record.event == LogEvent::kUplink) {
    g_log.uplink_airtime_ms += record.values[5];
    if (g_log.n_outcomes < sizeof(g_log.outcomes)) {
      g_log.outcomes[g_log.n_outcomes++] = static_cast<uint8_t>(record.values[7]);
    }
  }
}

void reset_log() {
  uint8_t* p = reinterpret_cast<uint8_t*>(&g_log);
  for (size_t i = 0; i < sizeof(g_log); ++i) p[i] = 0;
}

uint32_t count(LogEvent e) { return g_log.counts[static_cast<uint8_t>(e)]; }
const LogRecord& last(LogEvent e) { return g_log.last[static_cast<uint8_t>(e)]; }

struct TestModem {
  int join_script[8];
  uint8_t join_count;
  uint8_t join_next;
  int send_script[16];
  uint8_t send_count;
  uint8_t send_next;
  int data_rate;
  uint8_t port;
  uint8_t packet[64];
  uint8_t packet_size;
  uint32_t sends;
  uint8_t downlink[kMaxPayload];
  uint8_t downlink_size;
  uint8_t downlink_read;
  uint8_t downlink_port;
  uint32_t downlink_at_ms;  // when the pending downlink can be read
  uint32_t downlink_delay_ms;
  uint32_t available_calls;
  uint32_t joins;
  uint32_t join_start_ms[8];
  uint32_t join_end_ms;
  uint32_t first_send_ms;
  bool adr;

  void reset() {
    uint8_t* p = reinterpret_cast<uint8_t*>(this);
    for (size_t i = 0; i < sizeof(*this); ++i) p[i] = 0;
    data_rate = 5;
  }
  bool setADR(bool on) { adr = on; return true; }
  int joinOTAA(const char* app_eui, const char* app_key, const char* dev_eui) {
    return dev_eui[0] == '\0' ? 0 : joinOTAA(app_eui, app_key);
  }
  int joinOTAA(const char* app_eui, const char* app_key) {
    if (joins < 8) join_start_ms[joins] = g_now;
    ++joins;
    g_now += 5000;  // a join takes seconds
    join_end_ms = g_now;
    if (app_eui[0] == '\0' || app_key[0] == '\0') return 0;
    return join_next < join_count ? join_script[join_next++] : 1;
  }
  int getDataRate() { return data_rate; }
  bool setPort(uint8_t p) { port = p; return true; }
  void beginPacket() { packet_size = 0; }
  size_t write(const uint8_t* data, size_t n) {
    for (size_t i = 0; i < n && packet_size < sizeof(packet); ++i) packet[packet_size++] = data[i];
    return n;
  }
  int endPacket(bool confirmed) {
    if (sends == 0) first_send_ms = g_now;
    g_now += confirmed ? 3000 : 1000;
    ++sends;
    downlink_at_ms = g_now + downlink_delay_ms;
    return send_next < send_count ? send_script[send_next++] : packet_size;
  }
  int available() {
    ++available_calls;
    return g_now >= downlink_at_ms ? downlink_size - downlink_read : 0;
  }
  int read() {
    if (downlink_read >= downlink_size) return -1;
    const uint8_t b = downlink[downlink_read++];
    if (downlink_read == downlink_size) downlink_size = downlink_read = 0;  // heard once
    return b;
  }
  uint8_t getDownlinkPort() { return downlink_port; }
  void queue_downlink(const uint8_t* data, uint8_t n, uint8_t on_port) {
    for (uint8_t i = 0; i < n; ++i) downlink[i] = data[i];
    downlink_size = n;
    downlink_read = 0;
    downlink_port = on_port;
    downlink_at_ms = 0xFFFFFFFF;  // heard only after the next uplink
  }
};

struct TestWire {
  const uint8_t* data;
  int size;
  int position;
  uint8_t reply[4];
  int available() { return size - position; }
  int read() { return position < size ? data[position++] : -1; }
  size_t write(const uint8_t* bytes, size_t n) {
    for (size_t i = 0; i < n && i < sizeof(reply); ++i) reply[i] = bytes[i];
    return n;
  }
};

struct TestSerial {
  const uint8_t* data;
  int size;
  int position;
  int available() { return size - position; }
  int read() { return position < size ? data[position++] : -1; }
};

Relay g_relay;  // static: the relay is about 1 KB, too much for the emulator's stack
TestModem g_modem;
TestSerial g_no_input = {nullptr, 0, 0};

void start(uint8_t label_set = 0) {
  reset_log();
  g_modem.reset();
  g_now = 1000;
  g_relay.begin(g_now, label_set, capture);
  g_relay.modem_result(true, g_now);
}

void run_once(const char* app_key = "00112233445566778899AABBCCDDEEFF") {
  g_relay.run(g_modem, g_no_input, test_clock, "70B3D57ED0000000", app_key);
}

// Advance the clock in 100 ms steps, running the loop, until `until_ms`.
void run_until(uint32_t until_ms) {
  while (g_now < until_ms) {
    run_once();
    g_now += 100;
  }
}

// From start(): until the join and the status message after it (the join request counts
// as 1483 ms at SF12, so the status waits its 100 x off-time).
void run_until_status() {
  while (g_modem.sends == 0 && g_now < 400000) {
    run_once();
    g_now += 100;
  }
  CHECK_EQ(1, g_modem.sends);
  CHECK_EQ(kStatusPort, g_modem.port);
}

void i2c_write(const uint8_t* bytes, int n) {
  TestWire wire = {bytes, n, 0, {0, 0, 0, 0}};
  g_relay.on_i2c_receive(wire, n);
}

void legacy(uint8_t value) { i2c_write(&value, 1); }

bool hex_field(Json value, uint8_t* out, int& n, size_t capacity) {
  char text[2 * 64 + 1];
  if (!value.str(text, sizeof(text))) return false;
  n = hex_to_bytes(text, out, capacity);
  return n >= 0;
}

// ---- frames -------------------------------------------------------------------------------

const char* result_name(FrameResult r) {
  switch (r) {
    case FrameResult::kFrame: return "frame";
    case FrameResult::kNeedMore: return "need_more";
    case FrameResult::kSync: return "sync";
    case FrameResult::kLength: return "length";
    case FrameResult::kChecksum: return "checksum";
    case FrameResult::kType: return "type";
    default: return "payload";
  }
}

const char* type_name(FrameType t) {
  static const char* const kNames[] = {"legacy", "reading", "distribution", "faces", "vitals"};
  return kNames[static_cast<uint8_t>(t)];
}

uint8_t wire_label(Json label) { return label.is_null() ? kNoFace : static_cast<uint8_t>(label.as_int()); }
uint8_t wire_confidence(Json c) { return c.is_null() ? kUnknownConfidence : static_cast<uint8_t>(c.as_int()); }

void test_frame_vectors() {
  Json doc = test_vectors("relay_frames.json");
  CHECK_EQ(kFrameSync, doc.get("sync").as_int());
  CHECK_EQ(kMaxFramePayload, doc.get("max_frame_payload").as_int());
  size_t n_frames = 0;
  for (Json v = doc.get("frames").first(); v.valid(); v = v.next(), ++n_frames) {
    uint8_t bytes[kMaxFrame + 8];
    int n = 0;
    CHECK(hex_field(v.get("hex"), bytes, n, sizeof(bytes)));
    FrameFields f;
    CHECK(decode_frame(bytes, static_cast<uint8_t>(n), f) == FrameResult::kFrame);
    Json e = v.get("frame");
    CHECK(e.get("type").str_eq(type_name(f.type)));
    CHECK_EQ(e.get("label_set").as_int(), f.label_set);
    if (f.type == FrameType::kReading) {
      CHECK_EQ(wire_label(e.get("label")), f.label);
      CHECK_EQ(wire_confidence(e.get("confidence_pct")), f.confidence);
    } else if (f.type == FrameType::kDistribution) {
      Json w = e.get("weights");
      CHECK_EQ(w.size(), f.count);
      for (uint8_t i = 0; i < f.count; ++i) CHECK_EQ(w.at(i).as_int(), f.weights[i]);
    } else if (f.type == FrameType::kFaces) {
      Json faces = e.get("faces");
      if (faces.size() == 0) {  // an empty faces frame is one "no face" reading
        CHECK_EQ(1, f.count);
        CHECK_EQ(kNoFace, f.faces[0].label);
        CHECK_EQ(kUnknownConfidence, f.faces[0].confidence_pct);
      } else {
        CHECK_EQ(faces.size(), f.count);
      }
      for (uint8_t i = 0; i < faces.size(); ++i) {
        CHECK_EQ(faces.at(i).get("label").as_int(), f.faces[i].label);
        CHECK_EQ(wire_confidence(faces.at(i).get("confidence_pct")), f.faces[i].confidence_pct);
      }
    } else {
      Json hr = e.get("heart_rate_bpm");
      Json sc = e.get("skin_conductance_centi_us");
      Json p = e.get("prediction");
      CHECK_EQ(hr.is_null() ? -1 : hr.as_int(), f.heart_rate_bpm);
      CHECK_EQ(sc.is_null() ? -1 : sc.as_int(), f.skin_conductance_centi_us);
      CHECK_EQ(p.is_null() ? kNoReading : wire_label(p.get("label")), f.label);
      CHECK_EQ(p.is_null() ? kUnknownConfidence : wire_confidence(p.get("confidence_pct")), f.confidence);
    }
  }
  CHECK(n_frames >= 10);
  size_t n_invalid = 0;
  for (Json v = doc.get("invalid").first(); v.valid(); v = v.next(), ++n_invalid) {
    uint8_t bytes[64];
    int n = 0;
    CHECK(hex_field(v.get("hex"), bytes, n, sizeof(bytes)));
    FrameFields f;
    const FrameResult r = decode_frame(bytes, static_cast<uint8_t>(n), f);
    ++g_test_stats.checks;
    if (!v.get("error").str_eq(result_name(r))) {
      char name[64];
      v.get("name").str(name, sizeof(name));
      test_fail(__FILE__, __LINE__, name);
    }
  }
  CHECK(n_invalid >= 15);
}

void test_stream_vectors() {
  Json doc = test_vectors("relay_frames.json");
  size_t streams = 0;
  for (Json v = doc.get("streams").first(); v.valid(); v = v.next(), ++streams) {
    uint8_t bytes[600];
    int n = 0;
    char text[1201];
    CHECK(v.get("hex").str(text, sizeof(text)) > 0);
    n = hex_to_bytes(text, bytes, sizeof(bytes));
    CHECK(n > 0);
    FrameReader reader;
    reader.reset();
    Json expected = v.get("events").first();
    bool same = true;
    for (int i = 0; i < n; ++i) {
      reader.push(bytes[i]);
      FrameFields f;
      for (FrameResult r = reader.next(f); r != FrameResult::kNeedMore; r = reader.next(f)) {
        char event[32] = "frame:";
        if (r == FrameResult::kFrame) {
          const char* t = type_name(f.type);
          size_t k = 6;
          while (*t && k < sizeof(event) - 1) event[k++] = *t++;
          event[k] = '\0';
        } else {
          const char* t = result_name(r);
          const char prefix[] = "error:";
          size_t k = 0;
          for (; prefix[k]; ++k) event[k] = prefix[k];
          while (*t && k < sizeof(event) - 1) event[k++] = *t++;
          event[k] = '\0';
        }
        same = same && expected.str_eq(event);
        expected = expected.next();
      }
    }
    same = same && !expected.valid();
    ++g_test_stats.checks;
    if (!same) {
      char name[64];
      v.get("name").str(name, sizeof(name));
      test_fail(__FILE__, __LINE__, name);
    }
  }
  CHECK(streams >= 10);
}

void test_transaction_vectors() {
  Json doc = test_vectors("relay_frames.json");
  for (Json v = doc.get("transactions").first(); v.valid(); v = v.next()) {
    start(0);
    uint8_t bytes[64];
    int n = 0;
    CHECK(hex_field(v.get("hex"), bytes, n, sizeof(bytes)));
    i2c_write(bytes, n);
    g_relay.poll(g_now);
    char expect[32];
    v.get("expect").str(expect, sizeof(expect));
    char got[32] = "?";
    if (count(LogEvent::kReading) == 1) {
      const LogRecord& r = last(LogEvent::kReading);
      if (r.values[1] == static_cast<uint32_t>(Name::kLegacy)) {
        if (r.values[3] == kNoFace) {
          const char text[] = "legacy:none";
          for (size_t i = 0; i < sizeof(text); ++i) got[i] = text[i];
        } else {
          got[0] = 'l', got[1] = 'e', got[2] = 'g', got[3] = 'a', got[4] = 'c', got[5] = 'y', got[6] = ':';
          got[7] = static_cast<char>('0' + r.values[3]);
          got[8] = '\0';
        }
      } else if (r.values[1] == static_cast<uint32_t>(Name::kReading)) {
        const char text[] = "frame:reading";
        for (size_t i = 0; i < sizeof(text); ++i) got[i] = text[i];
      }
    } else if (count(LogEvent::kError) == 1) {
      const char* names[] = {"error:length", "error:legacy_range"};
      const uint32_t code = last(LogEvent::kError).values[0];
      const char* text = code == static_cast<uint32_t>(Name::kLength) ? names[0]
                         : code == static_cast<uint32_t>(Name::kLegacyRange) ? names[1] : "error:?";
      size_t i = 0;
      for (; text[i]; ++i) got[i] = text[i];
      got[i] = '\0';
    }
    ++g_test_stats.checks;
    if (!str_equal(expect, got)) {
      test_fail(__FILE__, __LINE__, expect);
      test_write("    got ");
      test_write(got);
      test_write("\n");
    }
  }
}

// ---- downlinks ----------------------------------------------------------------------------

void test_downlink_vectors() {
  Json doc = test_vectors("downlinks.json");
  CHECK_EQ(kCommandPort, doc.get("port").as_int());
  size_t n = 0;
  for (Json v = doc.get("downlinks").first(); v.valid(); v = v.next(), ++n) {
    start(0);
    uint8_t bytes[kMaxPayload];
    int size = 0;
    CHECK(hex_field(v.get("hex"), bytes, size, sizeof(bytes)));
    g_relay.downlink(kCommandPort, bytes, static_cast<uint8_t>(size), g_now);
    const uint32_t result = last(LogEvent::kDownlink).values[3];
    const char* expected_name = v.get("device").str_eq("applied") ? "applied"
                                : v.get("device").str_eq("rejected") ? "rejected" : "unknown_command";
    const Name expected = str_equal(expected_name, "applied") ? Name::kApplied
                          : str_equal(expected_name, "rejected") ? Name::kRejected : Name::kUnknownCommand;
    ++g_test_stats.checks;
    if (result != static_cast<uint32_t>(expected)) {
      char name[64];
      v.get("name").str(name, sizeof(name));
      test_fail(__FILE__, __LINE__, name);
    }
    Json config = v.get("config");
    const Config& c = g_relay.config();
    static const char* const kModes[] = {"reading", "distribution", "summary", "vitals"};
    CHECK(config.get("mode").str_eq(kModes[static_cast<uint8_t>(c.mode)]));
    CHECK_EQ(config.get("window_s").as_int(), c.window_s);
    CHECK_EQ(config.get("budget_s").as_int(), c.daily_budget_s);
    CHECK_EQ(config.get("set").as_int(), c.label_set.id);
    CHECK_EQ(config.get("classes").as_int(), c.label_set.classes);
    CHECK_EQ(config.get("fingerprint").as_int(), c.label_set.fingerprint);
    CHECK_EQ(config.get("status_min").as_int(), c.status_interval_min);
    CHECK_EQ(bytes[0], last(LogEvent::kDownlink).values[2]);  // the sequence number is kept
    CHECK_EQ(1000u * c.daily_budget_s, g_relay.ledger().daily_cap_ms());
  }
  CHECK(n >= 15);
  // Another port, or an empty payload, is not a command.
  start(0);
  const uint8_t window[] = {1, 1, 0, 119};
  g_relay.downlink(1, window, sizeof(window), g_now);
  CHECK_EQ(static_cast<uint32_t>(Name::kIgnored), last(LogEvent::kDownlink).values[3]);
  CHECK_EQ(60, g_relay.config().window_s);
  g_relay.downlink(-1, window, sizeof(window), g_now);  // port unknown: taken as a command
  CHECK_EQ(120, g_relay.config().window_s);
}

// ---- scheduler ----------------------------------------------------------------------------

void test_join_backoff() {
  start(0);
  g_modem.join_script[0] = 0;
  g_modem.join_script[1] = 0;
  g_modem.join_script[2] = 0;
  g_modem.join_count = 3;
  run_until(5000);
  CHECK_EQ(1, count(LogEvent::kJoin));
  CHECK_EQ(0, last(LogEvent::kJoin).values[0]);
  CHECK_EQ(15, last(LogEvent::kJoin).values[3]);
  CHECK(g_modem.adr);  // ADR is switched on before joining
  // The backoff (15, 30, 60 s) would allow the next attempt sooner, but a join request is
  // a transmission too: the sub-band rests 100 x 1483 ms from the end of the join call.
  run_until(6000 + 148300 - 500);
  CHECK_EQ(1, count(LogEvent::kJoin));
  CHECK_EQ(static_cast<uint32_t>(Name::kOfftime), last(LogEvent::kDefer).values[1]);
  CHECK_EQ(static_cast<uint32_t>(Name::kJoin), last(LogEvent::kDefer).values[0]);
  run_until(g_now + 2000);
  CHECK_EQ(2, count(LogEvent::kJoin));
  CHECK_EQ(30, last(LogEvent::kJoin).values[3]);
  while (count(LogEvent::kJoin) < 4 && g_now < 1000000) run_until(g_now + 100);
  CHECK_EQ(4, count(LogEvent::kJoin));
  CHECK_EQ(1, last(LogEvent::kJoin).values[0]);
  CHECK(g_relay.joined());
  for (unsigned i = 1; i < 4; ++i) {
    CHECK(g_modem.join_start_ms[i] - (g_modem.join_start_ms[i - 1] + 5000) >= 148300);
  }
  // Four join requests (23 bytes at SF12, 1483 ms each) were charged to the ledger.
  CHECK_EQ(4 * 1483, g_relay.ledger().used_hour_ms(g_now));
  // The first thing a joined relay sends is its status (port 2), once the last join's
  // off-time has passed (it used to go out 5 ms after the join).
  run_until(g_now + 150000);
  CHECK_EQ(1, g_modem.sends);
  CHECK_EQ(kStatusPort, g_modem.port);
  CHECK_EQ(kStatusLength, g_modem.packet_size);
  CHECK(g_modem.first_send_ms - g_modem.join_end_ms >= 148300);
}

void test_silent_modem() {
  reset_log();
  g_modem.reset();
  g_now = 1000;
  g_relay.begin(g_now, 0, capture);
  CHECK(g_relay.modem_wanted(g_now));  // at once after begin
  g_relay.modem_result(false, g_now + 5000);
  CHECK_EQ(static_cast<uint32_t>(Name::kModem), last(LogEvent::kError).values[0]);
  CHECK_EQ(static_cast<uint32_t>(Name::kSetup), last(LogEvent::kError).values[1]);
  g_now += 5000;
  // Readings still count, nothing is planned for the modem, and the start is retried after
  // kModemRetryS.
  for (int i = 0; i < 100; ++i) {
    legacy(static_cast<uint8_t>(i % 7));
    CHECK(!g_relay.modem_wanted(g_now));
    run_until(g_now + 1000);
  }
  CHECK_EQ(100, g_relay.received());
  CHECK_EQ(0, count(LogEvent::kJoin));
  CHECK_EQ(0, g_modem.sends);
  run_until(1000 + 5000 + Relay::kModemRetryS * 1000);
  CHECK(g_relay.modem_wanted(g_now));
  g_relay.modem_result(true, g_now);
  CHECK(!g_relay.modem_wanted(g_now));
  run_until(g_now + 10000);
  CHECK_EQ(1, count(LogEvent::kJoin));
  CHECK_EQ(1, count(LogEvent::kError));
}

void test_legacy_summary_and_change() {
  start(0);
  run_until_status();  // joined, status sent after the join's off-time
  CHECK(g_relay.joined());
  CHECK_EQ(1, g_modem.sends);
  // Three happy readings in a row: a prompt change (a Reading on port 16).
  for (int i = 0; i < 3; ++i) {
    legacy(3);
    run_until(g_now + 1000);
  }
  // The off-time after the status (100 x 67 ms) delays it by a few seconds at most.
  run_until(g_now + 8000);
  CHECK_EQ(2, g_modem.sends);
  CHECK_EQ(16, g_modem.port);
  CHECK_EQ(2, g_modem.packet_size);
  CHECK_EQ(3 * 101 / 256, g_modem.packet[0]);  // happy, confidence 0 = not given
  CHECK_EQ((3 * 101) % 256, g_modem.packet[1]);
  // A minute of readings: window summaries go out on port 19 and carry every reading.
  for (int i = 0; i < 57; ++i) {
    legacy(i % 10 == 0 ? 7 : 3);
    legacy(42);  // out of range: counted as invalid, never aggregated
    run_until(g_now + 1000);
  }
  run_until(g_now + 130000);
  CHECK(g_modem.sends >= 4);
  CHECK_EQ(19, g_modem.port);
  CHECK_EQ(60, g_log.readings_sent);
  CHECK_EQ(0, g_relay.window_readings());
  CHECK_EQ(60, g_relay.received());
  CHECK_EQ(57, g_relay.invalid());
  CHECK_EQ(static_cast<uint32_t>(Name::kWindow), last(LogEvent::kUplink).values[1]);
  // Every uplink was charged with its exact airtime and nothing exceeded the duty cycle.
  CHECK(g_relay.ledger().used_hour_ms(g_now) <= 36000);
}

bool outcomes_are(const Name* expected, uint8_t n) {
  if (g_log.n_outcomes != n) return false;
  for (uint8_t i = 0; i < n; ++i) {
    if (g_log.outcomes[i] != static_cast<uint8_t>(expected[i])) return false;
  }
  return true;
}

void script_sends(const int* codes, uint8_t n) {
  for (uint8_t i = 0; i < n; ++i) g_modem.send_script[i] = codes[i];
  g_modem.send_count = n;
  g_modem.send_next = 0;
}

void test_uplink_error_codes() {
  start(0);
  run_until_status();  // joined, status sent after the join's off-time
  for (int i = 0; i < 5; ++i) legacy(1);
  // The prompt change meets -2 (an error answer: retry later) then -3 (the modem refuses the
  // message itself: discarded); the window then meets -6 (not joined: join again, keep it).
  const int codes[] = {-2, -3, -6};
  script_sends(codes, 3);
  run_until(g_now + 400000);  // the rejoin's off-time delays the status and the window
  const Name expected[] = {Name::kSent, Name::kRetry, Name::kDiscarded, Name::kRejoin, Name::kSent, Name::kSent};
  CHECK(outcomes_are(expected, 6));
  CHECK_EQ(2, count(LogEvent::kJoin));
  CHECK_EQ(0, g_relay.dropped());  // a discarded change carries no readings of its own
  CHECK_EQ(5, g_log.readings_sent);  // the window survived the -6 and went after the rejoin
  // -7 (receive error after sending) counts as sent.
  const int rx_error[] = {-7};
  script_sends(rx_error, 1);
  legacy(2);
  run_until(g_now + 70000);
  CHECK_EQ(6, g_log.readings_sent);
  CHECK_EQ(static_cast<uint32_t>(-7), last(LogEvent::kUplink).values[6]);
  // -1 (no answer within endPacket's second, as at SF12 after every uplink that did go
  // out) counts as sent: charged once, sent once, never repeated.
  const int timeout[] = {-1};
  script_sends(timeout, 1);
  const uint32_t sends = g_modem.sends;
  const uint32_t charged = g_relay.ledger().used_hour_ms(g_now);
  legacy(2);
  run_until(g_now + 70000);
  CHECK_EQ(7, g_log.readings_sent);
  CHECK_EQ(sends + 1, g_modem.sends);
  CHECK_EQ(static_cast<uint32_t>(-1), last(LogEvent::kUplink).values[6]);
  CHECK_EQ(static_cast<uint32_t>(Name::kSent), last(LogEvent::kUplink).values[7]);
  CHECK_EQ(charged + last(LogEvent::kUplink).values[5], g_relay.ledger().used_hour_ms(g_now));
  // Six failures in a row (-2, -4, -8 and an unknown code): the relay joins again, and the
  // readings are still delivered afterwards.
  const int failures[] = {-2, -4, -8, -2, -99, -4};
  script_sends(failures, 6);
  const uint32_t joins = count(LogEvent::kJoin);
  legacy(4);
  run_until(g_now + 3 * 3600000);  // failed attempts are charged too: the pacer spaces them
  CHECK_EQ(joins + 1, count(LogEvent::kJoin));
  CHECK_EQ(8, g_log.readings_sent);
  CHECK_EQ(0, g_relay.dropped());
}

void test_discard_counts_readings() {
  start(0);
  run_until_status();  // joined, status sent after the join's off-time
  legacy(5);
  legacy(7);
  g_modem.send_script[0] = -20;
  g_modem.send_count = 1;
  g_modem.send_next = 0;
  run_until(g_now + 70000);
  CHECK_EQ(2, g_relay.dropped());
  CHECK_EQ(static_cast<uint32_t>(Name::kUplinkRejected), last(LogEvent::kDrop).values[0]);
}

void test_budget_is_never_exceeded() {
  start(0);
  const uint8_t small_budget[] = {1, 3, 0, 1};  // 2 s a day
  g_relay.downlink(kCommandPort, small_budget, sizeof(small_budget), g_now);
  g_modem.data_rate = 0;  // SF12: about 1.3 s per uplink
  for (uint32_t s = 0; s < 7200; ++s) {
    legacy(static_cast<uint8_t>((s / 20) % 7));
    run_until(g_now + 1000);
  }
  CHECK(g_relay.ledger().used_day_ms(g_now) <= 2000 + 1647 /* the join request */ + 0);
  CHECK(count(LogEvent::kDefer) > 0);
  CHECK_EQ(g_relay.received(), g_log.readings_sent + g_relay.window_readings() + g_relay.dropped());
}

void test_label_set_change_and_mismatch() {
  start(0);
  run_until_status();  // joined, status sent after the join's off-time
  legacy(1);
  legacy(2);
  g_relay.poll(g_now);
  uint8_t physio[] = {9, 4, 2, 3, 0xF9, 0x5C};  // physio3: id 2, 3 classes, fingerprint 63836
  g_relay.downlink(kCommandPort, physio, sizeof(physio), g_now);
  CHECK_EQ(2, g_relay.config().label_set.id);
  CHECK_EQ(2, g_relay.dropped());  // the FER-2013 counts could not be carried over
  // A frame of another set is dropped, and so are legacy bytes: they are FER-2013 indices
  // (the set the one-byte master was built for), never relabelled as physio3.
  const uint8_t fer_frame[] = {0xA5, 1, 3, 0, 3, 87, 0, 0};
  uint8_t frame[sizeof(fer_frame)];
  for (size_t i = 0; i < sizeof(frame); ++i) frame[i] = fer_frame[i];
  const uint16_t crc = crc16_ccitt(frame + 1, 5);
  frame[6] = static_cast<uint8_t>(crc >> 8);
  frame[7] = static_cast<uint8_t>(crc);
  i2c_write(frame, sizeof(frame));
  legacy(3);
  legacy(7);
  g_relay.poll(g_now);
  CHECK_EQ(5, g_relay.dropped());
  CHECK_EQ(static_cast<uint32_t>(Name::kSetMismatch), last(LogEvent::kDrop).values[0]);
  CHECK_EQ(2, g_relay.received());  // legacy 1 and 2, before the change
  CHECK_EQ(0, g_relay.invalid());
  legacy(8);  // outside FER-2013 (0..7) whatever the relay's set: invalid
  g_relay.poll(g_now);
  CHECK_EQ(1, g_relay.invalid());
  // Back to FER-2013 by downlink: the legacy bytes count again.
  uint8_t fer[] = {10, 4, 0, 7, 0xFF, 0x1A};
  g_relay.downlink(kCommandPort, fer, sizeof(fer), g_now);
  CHECK_EQ(0, g_relay.config().label_set.id);
  legacy(3);
  g_relay.poll(g_now);
  CHECK_EQ(3, g_relay.received());
  CHECK_EQ(3, last(LogEvent::kReading).values[3]);
}

void test_queue_overflow_and_request() {
  start(0);
  uint8_t frame[kMaxFrame];
  for (uint8_t i = 0; i < kMaxFrame; ++i) frame[i] = i;
  for (int i = 0; i < 7; ++i) i2c_write(frame, 20);  // 7 x 21 bytes > 128
  TestWire wire = {nullptr, 0, 0, {0, 0, 0, 0}};
  g_relay.on_i2c_request(wire);
  CHECK_EQ(6, wire.reply[0]);  // six transactions were queued ...
  CHECK_EQ(2, wire.reply[1]);  // ... the queue overflowed, not joined
  g_relay.poll(g_now);
  CHECK_EQ(1, g_relay.dropped());
  CHECK_EQ(6, g_relay.invalid());  // 20 bytes starting 00 01 are not frames
  uint8_t too_long[kMaxFrame + 5] = {0};
  i2c_write(too_long, sizeof(too_long));
  g_relay.poll(g_now);
  CHECK_EQ(static_cast<uint32_t>(Name::kLength), last(LogEvent::kError).values[0]);
}

void test_window_full() {
  start(0);
  for (uint32_t i = 0; i < 65536; ++i) {
    legacy(static_cast<uint8_t>(i % 8));
    if (i % 8 == 7) g_relay.poll(g_now);
  }
  g_relay.poll(g_now);
  CHECK_EQ(65535, g_relay.window_readings());
  CHECK_EQ(1, g_relay.dropped());
  CHECK_EQ(static_cast<uint32_t>(Name::kWindowFull), last(LogEvent::kDrop).values[0]);
}

void test_serial_input_and_modes() {
  start(2);  // physio3
  const uint8_t mode_vitals[] = {1, 2, 3, 1, 0, 9};  // vitals mode, 10 s windows
  g_relay.downlink(kCommandPort, mode_vitals, sizeof(mode_vitals), g_now);
  CHECK(g_relay.config().mode == Mode::kVitals);
  run_until_status();  // joined, status sent after the join's off-time
  // Vitals 72 bpm / 3.21 uS with "happy" 60 % over USB serial.
  uint8_t frame[] = {0xA5, 4, 6, 2, 72, 0x01, 0x41, 1, 60, 0, 0};
  const uint16_t crc = crc16_ccitt(frame + 1, 8);
  frame[9] = static_cast<uint8_t>(crc >> 8);
  frame[10] = static_cast<uint8_t>(crc);
  TestSerial serial = {frame, sizeof(frame), 0};
  g_relay.run(g_modem, serial, test_clock, "70B3D57ED0000000", "00112233445566778899AABBCCDDEEFF");
  CHECK_EQ(static_cast<uint32_t>(Name::kSerial), last(LogEvent::kReading).values[0]);
  CHECK_EQ(static_cast<uint32_t>(Name::kVitals), last(LogEvent::kReading).values[1]);
  run_until(g_now + 15000);
  CHECK_EQ(16 + 8 * 2 + 4, g_modem.port);  // the window's Vitals message
  // The same bytes as messages.json's vitals-physio3-full.
  const uint8_t expected[] = {0x18, 0x57, 0xBB, 0xB1};
  CHECK_EQ(sizeof(expected), g_modem.packet_size);
  for (size_t i = 0; i < sizeof(expected); ++i) CHECK_EQ(expected[i], g_modem.packet[i]);
  // Distribution mode: mean of the quantised distributions, on port 16 + 8 * 2 + 1.
  const uint8_t mode_distribution[] = {2, 2, 1};
  g_relay.downlink(kCommandPort, mode_distribution, sizeof(mode_distribution), g_now);
  uint8_t dist[] = {0xA5, 2, 7, 2, 0, 20, 0, 70, 0, 10, 0, 0};
  const uint16_t dcrc = crc16_ccitt(dist + 1, 9);
  dist[10] = static_cast<uint8_t>(dcrc >> 8);
  dist[11] = static_cast<uint8_t>(dcrc);
  i2c_write(dist, sizeof(dist));
  run_until(g_now + 400000);
  CHECK_EQ(16 + 8 * 2 + 1, g_modem.port);
  CHECK_EQ(2, g_modem.packet_size);
  CHECK_EQ(0x07, g_modem.packet[0]);  // distribution-physio3 (20, 70, 10): 076C
  CHECK_EQ(0x6C, g_modem.packet[1]);
}

void test_downlink_after_the_uplink_returns() {
  start(0);
  g_modem.downlink_delay_ms = 1800;  // the +RECV event comes after endPacket has returned
  run_until_status();  // joined, status sent after the join's off-time
  run_until(g_now + 1000);  // the boot window, empty and overdue, starts again
  const uint8_t window_90[] = {5, 1, 0, 89};
  g_modem.queue_downlink(window_90, sizeof(window_90), kCommandPort);
  legacy(3);
  legacy(3);
  legacy(3);  // a change: the next uplink, which opens the receive windows
  run_until(g_now + 15000);
  CHECK_EQ(1, count(LogEvent::kDownlink));
  CHECK_EQ(90, g_relay.config().window_s);
  CHECK_EQ(static_cast<uint32_t>(Name::kApplied), last(LogEvent::kDownlink).values[3]);
  // The acknowledgement goes out next: a status on port 2 (status, change, status).
  run_until(g_now + 20000);
  CHECK_EQ(3, g_modem.sends);
  CHECK_EQ(kStatusPort, g_modem.port);
  // The last two digits of a status are command_seq (radix 256) and command_status (radix 4).
  const uint16_t tail = static_cast<uint16_t>(g_modem.packet[kStatusLength - 2] << 8 | g_modem.packet[kStatusLength - 1]);
  CHECK_EQ(5, (tail >> 2) & 0xFF);
  CHECK_EQ(static_cast<int>(CommandStatus::kApplied), tail & 3);
  // Five seconds after the last uplink the relay stops asking the modem.
  CHECK(!g_relay.listening(g_now));
  const uint32_t calls = g_modem.available_calls;
  run_until(g_now + 3000);
  CHECK_EQ(calls, g_modem.available_calls);
}

void test_log_lines() {
  char line[kMaxLogLine];
  LogRecord boot = {LogEvent::kBoot, 11, 0, 1234, nullptr, {1, 0, 0, 1, 0, 7, 2, 60, 30, 56, 360}};
  format_log_line(boot, line, sizeof(line));
  CHECK(str_equal("LE1 1234 boot fw=1.0.0 proto=1 set=0 classes=7 mode=summary window_s=60 "
                  "budget_s=30 ledger=56 status_min=360", line));
  LogRecord reading = {LogEvent::kReading, 6, 0, 5, nullptr, {1, 3, 0, kNoFace, kOmit, 1}};
  format_log_line(reading, line, sizeof(line));
  CHECK(str_equal("LE1 5 reading src=i2c kind=legacy set=0 label=none n=1", line));
  const uint8_t payload[] = {0x01, 0x86};
  LogRecord uplink = {LogEvent::kUplink, 12, 2, 9, payload,
                      {4, 11, 16, 2, 5, 47, static_cast<uint32_t>(-7), 14, 0, 100, 200, 3000}};
  format_log_line(uplink, line, sizeof(line));
  CHECK(str_equal("LE1 9 uplink kind=reading cause=change port=16 size=2 hex=0186 dr=5 "
                  "airtime_ms=47 rc=-7 outcome=sent readings=0 hour_ms=100 day_ms=200 "
                  "credit_s=3000", line));
  LogRecord join = {LogEvent::kJoin, 4, 0, 0, nullptr, {0, 2, kOmit, 30}};
  format_log_line(join, line, sizeof(line));
  CHECK(str_equal("LE1 0 join ok=0 attempt=2 next_s=30", line));
  char tiny[8];
  CHECK_EQ(7, format_log_line(join, tiny, sizeof(tiny)));
  CHECK(str_equal("LE1 0 j", tiny));
}

}  // namespace

void register_relay_suites() {
  run_suite("relay_frames.json frames", test_frame_vectors);
  run_suite("relay_frames.json streams", test_stream_vectors);
  run_suite("relay_frames.json transactions", test_transaction_vectors);
  run_suite("downlinks.json", test_downlink_vectors);
  run_suite("join backoff", test_join_backoff);
  run_suite("silent modem at start-up", test_silent_modem);
  run_suite("legacy bytes, change, summary", test_legacy_summary_and_change);
  run_suite("endPacket error codes", test_uplink_error_codes);
  run_suite("discarded window counts as dropped", test_discard_counts_readings);
  run_suite("daily budget never exceeded", test_budget_is_never_exceeded);
  run_suite("label set change and mismatch", test_label_set_change_and_mismatch);
  run_suite("queue overflow and I2C request", test_queue_overflow_and_request);
  run_suite("window full", test_window_full);
  run_suite("serial input, vitals and distribution modes", test_serial_input_and_modes);
  run_suite("downlink after the uplink returns", test_downlink_after_the_uplink_returns);
  run_suite("log lines", test_log_lines);
}
