// fake_control.h - what a simulation sets and observes behind the fakes. The sketch never
// includes this; sim_main.cpp does.
#ifndef FAKE_CONTROL_H
#define FAKE_CONTROL_H

#include <stddef.h>
#include <stdint.h>

uint32_t fake_now_ms();
void fake_set_now_ms(uint32_t now_ms);
// Advances simulated time in 1 ms steps, calling the hook each step (so that I2C writes due
// while the sketch is blocked in a modem call still arrive, as interrupts would).
void fake_advance_ms(uint32_t ms);
void fake_set_tick_hook(void (*hook)(uint32_t now_ms));

// Bytes the host sends to the USB serial port.
void fake_serial_input(const uint8_t* data, size_t size);

// The network behind the fake modem.
struct FakeLoRaNetwork {
  bool modem_present = true;
  uint32_t modem_silent_until_ms = 0;  // the modem answers nothing before this time
  int data_rate = 5;                // what getDataRate() reports (ADR would change it)
  int join_data_rate = 0;           // the data rate of the join request on the air
  int join_failures = 0;            // joins that fail before one succeeds
  uint32_t join_ms = 6000;          // how long joinOTAA blocks
  // The modem answers an uplink's AT+UTX after the transmission plus this; MKRWAN's
  // endPacket waits 1000 ms for the answer and returns -1 without it (at SF11-12 nearly
  // always, though the uplink went out).
  uint32_t answer_after_air_ms = 60;
  int rc_script[32] = {0};          // endPacket results to return first (0: none)
  int rc_count = 0;
  int rc_next = 0;
  uint8_t downlink[64] = {0};       // delivered after the next successful uplink
  size_t downlink_size = 0;
  uint8_t downlink_port = 3;
  uint32_t downlink_delay_ms = 1500;  // the +RECV event arrives after endPacket returned
  uint32_t joins = 0;
  uint32_t uplinks = 0;
  bool adr = false;
};
extern FakeLoRaNetwork fake_lora;

#endif  // FAKE_CONTROL_H
