// size_main.cpp - links everything the sketch uses from the core, so that the size report
// counts exactly that: the Relay with its templates instantiated for a modem, a Wire and a
// serial port. The stubs here are a few bytes each; volatile keeps them from folding away.
#include "LoraEmotionRelay.h"

namespace {
volatile int g_sink;

struct StubWire {
  int available() { return g_sink; }
  int read() { return g_sink; }
  size_t write(const uint8_t* data, size_t n) { g_sink = data[0]; return n; }
};

struct StubSerial {
  int available() { return g_sink; }
  int read() { return g_sink; }
  size_t write(const char* text) { g_sink = text[0]; return 1; }
};

struct StubModem {
  bool setADR(bool on) { g_sink = on; return true; }
  int joinOTAA(const char* eui, const char* key) { g_sink = eui[0] + key[0]; return g_sink; }
  int joinOTAA(const char* eui, const char* key, const char* dev) { g_sink = eui[0] + key[0] + dev[0]; return g_sink; }
  int getDataRate() { return g_sink; }
  bool setPort(uint8_t port) { g_sink = port; return true; }
  void beginPacket() { g_sink = 0; }
  size_t write(const uint8_t* data, size_t n) { g_sink = data[0]; return n; }
  int endPacket(bool confirmed) { g_sink = confirmed; return g_sink; }
  int available() { return g_sink; }
  int read() { return g_sink; }
  uint8_t getDownlinkPort() { return static_cast<uint8_t>(g_sink); }
};

uint32_t clock_ms() { return static_cast<uint32_t>(g_sink); }
void wait_ms(unsigned long ms) { g_sink = static_cast<int>(ms); }
void log_line(const lora_emotion::LogRecord& record) { g_sink = static_cast<int>(record.values[0]); }

StubWire wire;
StubSerial host;
StubModem modem;
}  // namespace

lora_emotion::Relay relay;

extern "C" void size_entry() {
  relay.begin(clock_ms(), 0, log_line);
  if (relay.modem_wanted(clock_ms())) {
    relay.modem_result(lora_emotion::modem_answers(host, clock_ms, wait_ms, 2000), clock_ms());
  }
  relay.on_i2c_receive(wire, g_sink);
  relay.on_i2c_request(wire);
  for (;;) relay.run(modem, host, clock_ms, "0000000000000000", "00000000000000000000000000000000", "");
}
