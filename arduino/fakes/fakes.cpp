// fakes.cpp - behaviour behind the fake Arduino.h, Wire.h and MKRWAN.h.
#include <stdio.h>
#include <stdlib.h>

#include "Arduino.h"
#include "MKRWAN.h"
#include "Wire.h"
#include "LoraEmotionCore.h"
#include "fake_control.h"

// ---- time ---------------------------------------------------------------------------------

namespace {
uint32_t g_now_ms = 0;
void (*g_tick_hook)(uint32_t) = nullptr;
uint8_t g_serial_in[4096];
size_t g_serial_in_size = 0;
size_t g_serial_in_pos = 0;
char g_serial_line[512];
size_t g_serial_line_size = 0;
}  // namespace

uint32_t fake_now_ms() { return g_now_ms; }
void fake_set_now_ms(uint32_t now_ms) { g_now_ms = now_ms; }
void fake_set_tick_hook(void (*hook)(uint32_t)) { g_tick_hook = hook; }

void fake_advance_ms(uint32_t ms) {
  for (uint32_t i = 0; i < ms; ++i) {
    ++g_now_ms;
    if (g_tick_hook != nullptr) g_tick_hook(g_now_ms);
  }
}

unsigned long millis(void) { return g_now_ms; }
unsigned long micros(void) { return g_now_ms * 1000ul; }
void delay(unsigned long ms) { fake_advance_ms(static_cast<uint32_t>(ms)); }
void pinMode(uint32_t, uint32_t) {}
void digitalWrite(uint32_t, uint32_t) {}
int digitalRead(uint32_t) { return LOW; }

// ---- Print and USB serial -----------------------------------------------------------------

size_t Print::print(unsigned long value) {
  char text[24];
  snprintf(text, sizeof(text), "%lu", value);
  return write(text);
}

size_t Print::print(long value) {
  char text[24];
  snprintf(text, sizeof(text), "%ld", value);
  return write(text);
}

Serial_ SerialUSB;

void fake_serial_input(const uint8_t* data, size_t size) {
  if (g_serial_in_pos == g_serial_in_size) g_serial_in_pos = g_serial_in_size = 0;
  for (size_t i = 0; i < size && g_serial_in_size < sizeof(g_serial_in); ++i) {
    g_serial_in[g_serial_in_size++] = data[i];
  }
}

void Serial_::begin(uint32_t) {}
void Serial_::begin(uint32_t, uint8_t) {}
int Serial_::available() { return static_cast<int>(g_serial_in_size - g_serial_in_pos); }
int Serial_::read() { return g_serial_in_pos < g_serial_in_size ? g_serial_in[g_serial_in_pos++] : -1; }
int Serial_::peek() { return g_serial_in_pos < g_serial_in_size ? g_serial_in[g_serial_in_pos] : -1; }
void Serial_::flush() { fflush(stdout); }

size_t Serial_::write(uint8_t c) {
  // Whole lines to stdout; the "\r\n" of println becomes "\n".
  if (c == '\n' || g_serial_line_size == sizeof(g_serial_line) - 1) {
    g_serial_line[g_serial_line_size] = '\0';
    puts(g_serial_line);
    g_serial_line_size = 0;
  } else if (c != '\r') {
    g_serial_line[g_serial_line_size++] = static_cast<char>(c);
  }
  return 1;
}

size_t Serial_::write(const uint8_t* buffer, size_t size) {
  for (size_t i = 0; i < size; ++i) write(buffer[i]);
  return size;
}

// ---- the UART to the modem, and the modem's AT answers ----------------------------------------

namespace {
char g_at_line[96];
size_t g_at_size = 0;
const char* g_answer = "";  // what the modem has to say, from g_answer_at_ms on
uint32_t g_answer_at_ms = 0;

bool modem_answers_now() {
  return fake_lora.modem_present && fake_now_ms() >= fake_lora.modem_silent_until_ms;
}
}  // namespace

Uart Serial2;

void Uart::begin(unsigned long) {}
void Uart::begin(unsigned long, uint16_t) {}
int Uart::available() {
  return fake_now_ms() >= g_answer_at_ms ? static_cast<int>(strlen(g_answer)) : 0;
}
int Uart::read() { return available() > 0 ? *g_answer++ : -1; }
int Uart::peek() { return available() > 0 ? *g_answer : -1; }
size_t Uart::write(uint8_t c) {
  // Every command line ("AT...\r") gets "+OK\r" 5 ms later, if the modem answers at all.
  if (c != '\r') {
    if (g_at_size < sizeof(g_at_line) - 1) g_at_line[g_at_size++] = static_cast<char>(c);
    return 1;
  }
  const bool command = g_at_size >= 2 && g_at_line[0] == 'A' && g_at_line[1] == 'T';
  g_at_size = 0;
  if (command && modem_answers_now()) {
    g_answer = "+OK\r";
    g_answer_at_ms = fake_now_ms() + 5;
  }
  return 1;
}

// MKRWAN's sendAT + waitResponse: true when "+OK" arrives within timeout_ms.
static bool at_command(uint32_t timeout_ms) {
  Serial2.write("AT\r");
  const uint32_t start = fake_now_ms();
  int matched = 0;
  while (fake_now_ms() - start < timeout_ms) {
    delay(2);  // YIELD()
    while (Serial2.available() > 0) {
      const int c = Serial2.read();
      matched = c == "+OK"[matched] ? matched + 1 : 0;
      if (matched == 3) return true;
    }
  }
  return false;
}

// ---- Wire ---------------------------------------------------------------------------------

TwoWire Wire;

void TwoWire::begin() { address_ = -1; }
void TwoWire::begin(uint8_t address) { address_ = address; }
void TwoWire::end() { address_ = -1; }
void TwoWire::setClock(uint32_t) {}
void TwoWire::beginTransmission(uint8_t) { tx_size_ = 0; }
uint8_t TwoWire::endTransmission(bool) { return 0; }
uint8_t TwoWire::endTransmission(void) { return 0; }
uint8_t TwoWire::requestFrom(uint8_t, size_t, bool) { return 0; }
uint8_t TwoWire::requestFrom(uint8_t, size_t) { return 0; }

size_t TwoWire::write(uint8_t data) {
  if (tx_size_ >= sizeof(tx_)) return 0;
  tx_[tx_size_++] = data;
  return 1;
}

size_t TwoWire::write(const uint8_t* data, size_t quantity) {
  size_t n = 0;
  while (n < quantity && write(data[n]) == 1) ++n;
  return n;
}

int TwoWire::available(void) { return static_cast<int>(rx_size_ - rx_pos_); }
int TwoWire::read(void) { return rx_pos_ < rx_size_ ? rx_[rx_pos_++] : -1; }
int TwoWire::peek(void) { return rx_pos_ < rx_size_ ? rx_[rx_pos_] : -1; }
void TwoWire::flush(void) {}
void TwoWire::onReceive(void (*handler)(int)) { on_receive_ = handler; }
void TwoWire::onRequest(void (*handler)(void)) { on_request_ = handler; }

bool TwoWire::fake_master_write(uint8_t address, const uint8_t* data, size_t size) {
  if (static_cast<int>(address) != address_) return false;
  rx_size_ = size < sizeof(rx_) ? size : sizeof(rx_);
  rx_pos_ = 0;
  memcpy(rx_, data, rx_size_);
  if (on_receive_ != nullptr) on_receive_(static_cast<int>(rx_size_));
  rx_size_ = rx_pos_ = 0;  // the SAMD core clears the buffer after the handler
  return true;
}

size_t TwoWire::fake_master_read(uint8_t address, uint8_t* out, size_t size) {
  if (static_cast<int>(address) != address_) return 0;
  tx_size_ = 0;
  if (on_request_ != nullptr) on_request_();
  for (size_t i = 0; i < size; ++i) out[i] = i < tx_size_ ? tx_[i] : 0xFF;
  return size;
}

// ---- LoRaModem ----------------------------------------------------------------------------

FakeLoRaNetwork fake_lora;

LoRaModem::LoRaModem(Stream& stream) : stream_(stream) {}

bool LoRaModem::begin(_lora_band band, uint32_t baud, uint16_t config) {
  // As MKRWAN 1.1.2: reset the modem (600 ms), then init(); while the modem does not answer,
  // begin() calls itself again with SERIAL_8N1, for ever. A loop here; the simulation ends
  // once it has been stuck for ten simulated minutes.
  const uint32_t start = fake_now_ms();
  for (;;) {
    Serial2.begin(baud, config);
    delay(600);
    if (init()) return configureBand(band);
    config = SERIAL_8N1;
    if (fake_now_ms() - start > 600000) {
      printf("SIM hang LoRaModem::begin t=%u\n", fake_now_ms());
      fflush(stdout);
      exit(86);
    }
  }
}
bool LoRaModem::init() {
  // autoBaud(): "AT" every 300 ms for 10 s, then the version and channel queries.
  for (const uint32_t start = fake_now_ms(); fake_now_ms() - start < 10000;) {
    if (at_command(200)) return at_command(1000) && at_command(1000);
    delay(100);
  }
  return false;
}
bool LoRaModem::configureClass(_lora_class) { return true; }
bool LoRaModem::configureBand(_lora_band band) { return band == EU868; }
String LoRaModem::version() { return String("ARD-078 1.2.4"); }
String LoRaModem::deviceEUI() { return String("A8610A0000000001"); }
void LoRaModem::maintain() {}
void LoRaModem::minPollInterval(unsigned long) {}
void LoRaModem::poll() {}
bool LoRaModem::restart() { return true; }
bool LoRaModem::dutyCycle(bool) { return true; }
bool LoRaModem::setPort(uint8_t port) {
  port_ = port;
  return at_command(1000);
}
bool LoRaModem::publicNetwork(bool) { return true; }
bool LoRaModem::sleep(bool) { return true; }
bool LoRaModem::format(bool) { return true; }
bool LoRaModem::dataRate(uint8_t dr) {
  fake_lora.data_rate = dr;
  return true;
}
int LoRaModem::getDataRate() { return fake_lora.data_rate; }
bool LoRaModem::setADR(bool adr) {
  adr_ = adr;
  fake_lora.adr = adr;
  return at_command(1000);
}
int LoRaModem::getADR() { return adr_ ? 1 : 0; }
String LoRaModem::getDevAddr() { return String("26011234"); }
uint8_t LoRaModem::getDownlinkPort() { return rx_port_; }
uint8_t LoRaModem::connected() { return joined_; }

int LoRaModem::joinOTAA(const char* appEui, const char* appKey, const char* devEui, uint32_t timeout) {
  // +MODE, +APPEUI, +APPKEY (+DEVEUI), each answered or timed out after 1 s, then +JOIN: the
  // join request goes on the air at once, the answer comes after join_ms (or the timeout).
  bool answered = at_command(1000) && at_command(1000) && at_command(1000);
  if (devEui != nullptr) answered = at_command(1000) && answered;
  if (!answered || !at_command(1000)) {
    delay(timeout + 1000);
    joined_ = false;
    return 0;
  }
  const uint32_t on_air = fake_now_ms();
  uint8_t sf = 12;
  uint16_t bandwidth = 125;
  lora_emotion::eu868_data_rate(static_cast<uint8_t>(fake_lora.join_data_rate), sf, bandwidth);
  const uint32_t airtime_us = lora_emotion::time_on_air_us(23, sf, bandwidth);
  delay(fake_lora.join_ms);
  ++fake_lora.joins;
  const bool credentials = strlen(appEui) == 16 && strlen(appKey) == 32;
  joined_ = credentials && fake_lora.joins > static_cast<uint32_t>(fake_lora.join_failures);
  printf("SIM join t=%u ok=%d airtime_us=%u\n", on_air, joined_ ? 1 : 0, airtime_us);
  delay(1000);  // MKRWAN waits a second after every join
  return joined_;
}

int LoRaModem::joinOTAA(String appEui, String appKey, uint32_t timeout) {
  return joinOTAA(appEui.c_str(), appKey.c_str(), nullptr, timeout);
}

int LoRaModem::joinOTAA(String appEui, String appKey, String devEui, uint32_t timeout) {
  return joinOTAA(appEui.c_str(), appKey.c_str(), devEui.c_str(), timeout);
}

int LoRaModem::joinABP(const char*, const char*, const char*, uint32_t) { return 0; }
int LoRaModem::joinABP(String, String, String) { return 0; }

void LoRaModem::beginPacket() { tx_size_ = 0; }

size_t LoRaModem::write(uint8_t c) {
  if (tx_size_ >= sizeof(tx_)) return 0;
  tx_[tx_size_++] = c;
  return 1;
}

size_t LoRaModem::write(const uint8_t* buffer, size_t size) {
  size_t n = 0;
  while (n < size && write(buffer[n]) == 1) ++n;
  return n;
}

int LoRaModem::endPacket(bool) {
  // MKRWAN 1.1.2's modemSend: AT+UTX with the bytes, then waitResponse() with its default
  // timeout of 1000 ms. The modem answers once the uplink has been on the air.
  const uint32_t start = fake_now_ms();
  uint8_t sf = 12;
  uint16_t bandwidth = 125;
  lora_emotion::eu868_data_rate(static_cast<uint8_t>(fake_lora.data_rate), sf, bandwidth);
  const uint32_t airtime_us = lora_emotion::time_on_air_us(static_cast<uint16_t>(tx_size_ + 13), sf, bandwidth);
  int rc = static_cast<int>(tx_size_);
  if (!joined_) rc = -6;
  if (tx_size_ > 64) rc = -20;  // ARDUINO_LORA_MAXBUFF
  if (fake_lora.rc_next < fake_lora.rc_count) rc = fake_lora.rc_script[fake_lora.rc_next++];
  const bool answering = modem_answers_now();
  const bool on_air = answering && (rc > 0 || rc == -7);
  const uint32_t answer_ms = airtime_us / 1000 + fake_lora.answer_after_air_ms;
  if (!answering) {
    rc = -1;  // nothing answers, nothing is sent
    delay(1000);
  } else if (on_air && answer_ms > 1000) {
    rc = -1;  // sent, but the answer comes after waitResponse has given up
    delay(1000);
  } else {
    delay(on_air ? answer_ms : 20);
  }
  if (rc == -6) joined_ = false;
  printf("SIM uplink t=%u port=%u size=%u hex=", start, port_, static_cast<unsigned>(tx_size_));
  for (size_t i = 0; i < tx_size_; ++i) printf("%02X", tx_[i]);
  printf(" rc=%d dr=%d on_air=%d airtime_us=%u\n", rc, fake_lora.data_rate, on_air ? 1 : 0, airtime_us);
  rx_size_ = rx_pos_ = 0;
  if (on_air) {
    ++fake_lora.uplinks;
    if (rc != -7 && fake_lora.downlink_size > 0) {
      memcpy(rx_, fake_lora.downlink, fake_lora.downlink_size);
      rx_size_ = fake_lora.downlink_size;
      rx_port_ = fake_lora.downlink_port;
      rx_ready_ms_ = fake_now_ms() + fake_lora.downlink_delay_ms;
      fake_lora.downlink_size = 0;
    }
  }
  tx_size_ = 0;
  return rc;
}

int LoRaModem::parsePacket() { return available(); }
int LoRaModem::available() {
  delay(2);  // MKRWAN's YIELD() before it looks at the modem's output
  return fake_now_ms() >= rx_ready_ms_ ? static_cast<int>(rx_size_ - rx_pos_) : 0;
}
int LoRaModem::read() { return rx_pos_ < rx_size_ ? rx_[rx_pos_++] : -1; }
int LoRaModem::peek() { return rx_pos_ < rx_size_ ? rx_[rx_pos_] : -1; }

int LoRaModem::read(uint8_t* buf, size_t size) {
  size_t n = 0;
  while (n < size && rx_pos_ < rx_size_) buf[n++] = rx_[rx_pos_++];
  return static_cast<int>(n);
}
