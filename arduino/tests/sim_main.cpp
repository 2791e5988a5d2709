// sim_main.cpp - drives the unchanged lora_emotion_relay.ino through setup() and loop()
// against the fakes, with an I2C master writing about once a second and a host sending
// frames over USB serial. The sketch's log lines and the fake network's own record of what
// went on the air ("SIM ..." lines) go to stdout; tests/arduino/test_arduino.py checks them.
//
// Usage: sim [--seconds N] [--dr D] [--seed S] [--join-failures J] [--downlink-at S]
//            [--modem-silent S] [--naive-begin 1]
// --modem-silent S: the modem answers nothing for the first S seconds (a dead or unflashed
// modem for a whole run). --naive-begin 1: call MKRWAN's modem.begin(EU868) first, as a
// sketch without the relay's probe would (the fake, like the real library, never returns
// while the modem is silent: "SIM hang" and exit status 86).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Arduino.h>
#include <LoraEmotion.h>
#include <MKRWAN.h>
#include <Wire.h>

#include "../fakes/fake_control.h"

void setup();
void loop();
extern lora_emotion::Relay relay;  // the sketch's

namespace {

uint32_t g_seed = 1;
uint32_t random_below(uint32_t n) {
  g_seed = g_seed * 1103515245u + 12345u;  // a fixed LCG: the same run on every host
  return (g_seed >> 8) % n;
}

struct Counts {
  uint32_t readings;           // readings the relay should count (matching label set)
  uint32_t mismatch_readings;  // readings in frames of another label set (counted dropped)
  uint32_t invalid;            // inputs the relay should reject
  uint32_t i2c_writes;
  uint32_t serial_frames;
  uint32_t nacked;
} g_counts;

uint8_t g_dominant = 3;
uint32_t g_segment_end_s = 0;
uint32_t g_start_ms = 0;
uint32_t g_downlink_at_s = 1200;
bool g_downlink_queued = false;

size_t frame(uint8_t type, const uint8_t* payload, uint8_t length, uint8_t* out) {
  out[0] = 0xA5;
  out[1] = type;
  out[2] = length;
  memcpy(out + 3, payload, length);
  const uint16_t crc = lora_emotion::crc16_ccitt(out + 1, 2u + length);
  out[3 + length] = static_cast<uint8_t>(crc >> 8);
  out[4 + length] = static_cast<uint8_t>(crc);
  return 5u + length;
}

// The class a 1 Hz model reports: mostly the current dominant emotion.
uint8_t next_label(uint32_t t_s) {
  if (t_s >= g_segment_end_s) {
    g_dominant = static_cast<uint8_t>(random_below(7));
    g_segment_end_s = t_s + 120 + random_below(360);
  }
  const uint32_t pick = random_below(100);
  if (pick < 5) return lora_emotion::kNoFace;
  if (pick < 25) return static_cast<uint8_t>(random_below(7));
  return g_dominant;
}

void i2c_write(const uint8_t* data, size_t size) {
  ++g_counts.i2c_writes;
  if (!Wire.fake_master_write(lora_emotion::kI2cAddress, data, size)) ++g_counts.nacked;
}

void master_writes(uint32_t t_s) {
  const uint8_t label = next_label(t_s);
  const uint32_t form = random_below(100);
  uint8_t out[64];
  uint8_t payload[40];
  if (form < 45) {  // the 2021 contract: one byte
    const uint8_t byte = label == lora_emotion::kNoFace ? 7 : label;
    i2c_write(&byte, 1);
    ++g_counts.readings;
  } else if (form < 75) {  // label + confidence
    payload[0] = 0;
    payload[1] = label;
    payload[2] = label == lora_emotion::kNoFace ? 0xFF : static_cast<uint8_t>(55 + random_below(45));
    i2c_write(out, frame(1, payload, 3, out));
    ++g_counts.readings;
  } else if (form < 85 && label != lora_emotion::kNoFace) {  // a distribution
    payload[0] = 0;
    for (uint8_t i = 0; i < 7; ++i) {
      const uint16_t w = static_cast<uint16_t>(i == label ? 6000 + random_below(3000) : random_below(700));
      payload[1 + 2 * i] = static_cast<uint8_t>(w >> 8);
      payload[2 + 2 * i] = static_cast<uint8_t>(w);
    }
    i2c_write(out, frame(2, payload, 15, out));
    ++g_counts.readings;
  } else if (form < 90) {  // two faces in one camera frame
    payload[0] = 0;
    payload[1] = label == lora_emotion::kNoFace ? 6 : label;
    payload[2] = 80;
    payload[3] = static_cast<uint8_t>(random_below(7));
    payload[4] = 0xFF;
    i2c_write(out, frame(3, payload, 5, out));
    g_counts.readings += 2;
  } else if (form < 93) {  // vitals with a reading (only the reading counts in summary mode)
    const uint8_t vitals[] = {0, 70, 0x01, 0x2C, label, static_cast<uint8_t>(label == lora_emotion::kNoFace ? 0xFF : 77)};
    i2c_write(out, frame(4, vitals, sizeof(vitals), out));
    ++g_counts.readings;
  } else if (form < 95) {  // a frame of another label set: dropped, counted
    payload[0] = 1;
    payload[1] = 2;
    payload[2] = 50;
    i2c_write(out, frame(1, payload, 3, out));
    ++g_counts.mismatch_readings;
  } else if (form < 98) {  // out of range for the one-byte contract
    const uint8_t byte = static_cast<uint8_t>(8 + random_below(200));
    i2c_write(&byte, 1);
    ++g_counts.invalid;
  } else {  // a frame damaged on the bus
    payload[0] = 0;
    payload[1] = 3;
    payload[2] = 90;
    const size_t n = frame(1, payload, 3, out);
    out[n - 1] ^= 0x40;
    i2c_write(out, n);
    ++g_counts.invalid;
  }
}

void host_writes(uint32_t t_s) {
  uint8_t out[64];
  const uint8_t payload[] = {0, 4, 66};  // "sad" 66 %
  const size_t n = frame(1, payload, 3, out);
  if (t_s % 120 == 0) {
    const char text[] = "hello from the host\r\n";  // noise before a frame is skipped
    fake_serial_input(reinterpret_cast<const uint8_t*>(text), sizeof(text) - 1);
  }
  fake_serial_input(out, n);
  ++g_counts.serial_frames;
  ++g_counts.readings;
}

void on_tick(uint32_t now_ms) {
  const uint32_t elapsed = now_ms - g_start_ms;
  if (elapsed % 1000 == 500) master_writes(elapsed / 1000);
  if (elapsed % 30000 == 250) host_writes(elapsed / 1000);
  if (!g_downlink_queued && elapsed >= g_downlink_at_s * 1000) {
    // Window 120 s and a status now, as sequence 42 (docs/downlink.md).
    const uint8_t command[] = {42, 1, 0, 119, 5};
    memcpy(fake_lora.downlink, command, sizeof(command));
    fake_lora.downlink_size = sizeof(command);
    fake_lora.downlink_port = 3;
    g_downlink_queued = true;
  }
}

uint32_t arg(int argc, char** argv, const char* name, uint32_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], name) == 0) return static_cast<uint32_t>(strtoul(argv[i + 1], nullptr, 10));
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const uint32_t seconds = arg(argc, argv, "--seconds", 3600);
  fake_lora.data_rate = static_cast<int>(arg(argc, argv, "--dr", 5));
  fake_lora.join_failures = static_cast<int>(arg(argc, argv, "--join-failures", 1));
  g_seed = arg(argc, argv, "--seed", 1);
  g_downlink_at_s = arg(argc, argv, "--downlink-at", 1200);
  fake_lora.modem_silent_until_ms = arg(argc, argv, "--modem-silent", 0) * 1000;
  fake_set_now_ms(0);
  if (arg(argc, argv, "--naive-begin", 0) != 0) {
    LoRaModem naive;
    printf("SIM naive begin=%d t=%u\n", naive.begin(EU868) ? 1 : 0, fake_now_ms());
  }
  setup();
  g_start_ms = fake_now_ms();
  fake_set_tick_hook(on_tick);
  const uint32_t end_ms = g_start_ms + seconds * 1000;
  while (fake_now_ms() < end_ms) {
    loop();
    fake_advance_ms(5);
  }
  fake_set_tick_hook(nullptr);
  loop();  // take in whatever arrived during the last step
  relay.log_stats(millis());
  uint8_t reply[2];
  Wire.fake_master_read(lora_emotion::kI2cAddress, reply, sizeof(reply));
  printf("SIM summary seconds=%u readings=%u mismatch_readings=%u invalid=%u i2c_writes=%u "
         "serial_frames=%u nacked=%u joins=%u uplinks=%u adr=%d i2c_reply=%02X%02X\n",
         seconds, g_counts.readings, g_counts.mismatch_readings, g_counts.invalid,
         g_counts.i2c_writes, g_counts.serial_frames, g_counts.nacked, fake_lora.joins,
         fake_lora.uplinks, fake_lora.adr ? 1 : 0, reply[0], reply[1]);
  return 0;
}
