// lora_emotion_relay.ino - Arduino MKR WAN 1310: emotion readings in over I2C (slave 0x08)
// or USB serial, compact LoRaWAN uplinks out on KPN Things. Glue only: the LoraEmotion
// library does the parsing, aggregation, budgeting and encoding (docs/arduino.md).
#include <Arduino.h>
#include <MKRWAN.h>
#include <Wire.h>

#include <LoraEmotion.h>

#include "arduino_secrets.h"  // copy arduino_secrets.h.example; never commit the real one

// The label set of the model on the I2C master: 0 = FER-2013, the 2021 demo's. A downlink
// can change it later (docs/downlink.md).
constexpr uint8_t kLabelSet = 0;

LoRaModem modem;
lora_emotion::Relay relay;

void on_i2c_receive(int count);
void on_i2c_request();
void log_line(const lora_emotion::LogRecord& record);

// Both run inside the SERCOM interrupt: they copy bytes and nothing else.
void on_i2c_receive(int count) { relay.on_i2c_receive(Wire, count); }
void on_i2c_request() { relay.on_i2c_request(Wire); }

void log_line(const lora_emotion::LogRecord& record) {
  char line[lora_emotion::kMaxLogLine];
  lora_emotion::format_log_line(record, line, sizeof(line));
  Serial.println(line);
}

void setup() {
  Serial.begin(115200);  // no while (!Serial): the relay must also run without a USB host
  relay.begin(millis(), kLabelSet, log_line);
  if (!modem.begin(EU868)) {
    relay.report_error(lora_emotion::Name::kModem, lora_emotion::Name::kSetup, millis());
  }
  Wire.begin(lora_emotion::kI2cAddress);
  Wire.onReceive(on_i2c_receive);
  Wire.onRequest(on_i2c_request);
}

void loop() {
  // Host serial frames, queued I2C transactions, then at most one join or uplink.
  relay.run(modem, Serial, millis, SECRET_APP_EUI, SECRET_APP_KEY, SECRET_DEV_EUI);
}
