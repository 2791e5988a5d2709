// lora_emotion_relay.ino - Arduino MKR WAN 1310: emotion readings in over I2C (slave 0x08)
// or USB serial, compact LoRaWAN uplinks out on KPN Things. Glue only: the LoraEmotion
// library does the parsing, aggregation, budgeting and encoding (docs/arduino.md).
#include <Arduino.h>
#include <MKRWAN.h>
#include <Wire.h>
#include <LoraEmotion.h>

#include "arduino_secrets.h"  // copy arduino_secrets.h.example; never commit the real one

// The label set of the model on the I2C master: 0 = FER-2013, the 2021 demo's. One-byte
// masters keep it even when a downlink changes the relay's set (docs/downlink.md).
constexpr uint8_t kLabelSet = 0;

LoRaModem modem;
lora_emotion::Relay relay;
// Both run inside the SERCOM interrupt: they copy bytes and nothing else.
void on_i2c_receive(int count) { relay.on_i2c_receive(Wire, count); }
void on_i2c_request() { relay.on_i2c_request(Wire); }

void log_line(const lora_emotion::LogRecord& record) {
  char line[lora_emotion::kMaxLogLine];
  lora_emotion::format_log_line(record, line, sizeof(line));
  Serial.println(line);
}

// At most about 5 s: MKRWAN's begin() never returns while the modem is silent, so it is
// called only once the modem has answered, with the serial framing that answered.
bool start_modem() {
  pinMode(LORA_BOOT0, OUTPUT);
  digitalWrite(LORA_BOOT0, LOW);  // run the modem's firmware, not its boot loader
  pinMode(LORA_RESET, OUTPUT);
  digitalWrite(LORA_RESET, LOW);  // a reset pulse, as MKRWAN's begin() gives
  delay(200);
  digitalWrite(LORA_RESET, HIGH);
  const uint16_t framings[] = {SERIAL_8N2, SERIAL_8N1};
  for (uint16_t framing : framings) {
    SerialLoRa.begin(19200, framing);
    if (lora_emotion::modem_answers(SerialLoRa, millis, delay, 2000)) return modem.begin(EU868, 19200, framing);
  }
  return false;
}

void setup() {
  Serial.begin(115200);  // no while (!Serial): the relay must also run without a USB host
  relay.begin(millis(), kLabelSet, log_line);
  Wire.begin(lora_emotion::kI2cAddress);  // readings are taken from now on, modem or not
  Wire.onReceive(on_i2c_receive);
  Wire.onRequest(on_i2c_request);
}

void loop() {
  // A failed modem start is logged (error code=modem src=setup) and retried every 10 min;
  // run(): host serial frames, queued I2C transactions, then at most one join or uplink.
  if (relay.modem_wanted(millis())) {
    const bool started = start_modem();  // first: millis() after it, the start takes seconds
    relay.modem_result(started, millis());
  }
  relay.run(modem, Serial, millis, SECRET_APP_EUI, SECRET_APP_KEY, SECRET_DEV_EUI);
}
