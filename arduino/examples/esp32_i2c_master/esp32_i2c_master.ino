// esp32_i2c_master.ino - how an ESP32 (camera board) hands its emotion model's output to the
// MKR WAN 1310 relay at I2C address 0x08. Self-contained: copy the frame functions into your
// own sketch. docs/relay-protocol.md is the reference; the bytes match
// tests/vectors/relay_frames.json.
//
// Wiring: ESP32 SDA/SCL to MKR SDA (pin 11) / SCL (pin 12), common GND, 3.3 V logic on both.
// The MKR has no I2C pull-ups of its own: fit 4.7 kOhm to 3.3 V if the ESP32 board has none.
#include <Arduino.h>
#include <Wire.h>

constexpr uint8_t kRelayAddress = 0x08;
constexpr uint8_t kLabelSet = 0;  // FER-2013: angry disgust fear happy sad surprise neutral
constexpr uint8_t kClasses = 7;
constexpr uint8_t kNoFace = 0xFF;
constexpr uint8_t kUnknown = 0xFF;  // "the model gave no confidence"

// CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF), over type, length, payload.
uint16_t crc16(const uint8_t* data, size_t length) {
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < length; ++i) {
    crc ^= static_cast<uint16_t>(data[i] << 8);
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
  }
  return crc;
}

// A5 | type | length | payload | CRC (big-endian). Returns false if the relay did not ACK.
bool send_frame(uint8_t type, const uint8_t* payload, uint8_t length) {
  uint8_t frame[5 + 33];
  frame[0] = 0xA5;
  frame[1] = type;
  frame[2] = length;
  memcpy(frame + 3, payload, length);
  const uint16_t crc = crc16(frame + 1, 2 + length);
  frame[3 + length] = crc >> 8;
  frame[4 + length] = crc & 0xFF;
  Wire.beginTransmission(kRelayAddress);
  Wire.write(frame, 5 + length);  // one write transaction carries exactly one frame
  return Wire.endTransmission() == 0;
}

// Type 1: a class with its confidence in percent (label kNoFace: nobody in view).
bool send_reading(uint8_t label, uint8_t confidence_pct) {
  const uint8_t payload[] = {kLabelSet, label, label == kNoFace ? kUnknown : confidence_pct};
  return send_frame(1, payload, sizeof(payload));
}

// Type 2: the whole softmax, as 16-bit weights of any scale (here 1/10000); the relay
// quantises to whole percent that sum to exactly 100.
bool send_distribution(const float* probabilities) {
  uint8_t payload[1 + 2 * kClasses];
  payload[0] = kLabelSet;
  for (uint8_t i = 0; i < kClasses; ++i) {
    const uint16_t weight = static_cast<uint16_t>(probabilities[i] * 10000.0f + 0.5f);
    payload[1 + 2 * i] = weight >> 8;
    payload[2 + 2 * i] = weight & 0xFF;
  }
  return send_frame(2, payload, sizeof(payload));
}

// The 2021 demo's contract, still accepted: one byte, 0..6 a class, 7 no face.
bool send_legacy(uint8_t label) {
  Wire.beginTransmission(kRelayAddress);
  Wire.write(label == kNoFace ? kClasses : label);
  return Wire.endTransmission() == 0;
}

// Optional: read back two bytes, the count of writes the relay has queued (mod 256) and its
// flags (bit 0 joined, bit 1 its queue has overflowed since boot).
bool relay_status(uint8_t& queued, uint8_t& flags) {
  if (Wire.requestFrom(kRelayAddress, static_cast<uint8_t>(2)) != 2) return false;
  queued = Wire.read();
  flags = Wire.read();
  return true;
}

void setup() {
  Serial.begin(115200);
  Wire.begin();           // ESP32 default pins (SDA 21, SCL 22); Wire.begin(sda, scl) for others
  Wire.setClock(100000);  // 100 kHz: the relay is a SAMD21 slave
}

void loop() {
  // Replace with your model's output. About once a second is what the relay expects; it
  // aggregates anything faster, so sending more often only costs I2C time.
  const float probabilities[kClasses] = {0.02f, 0.01f, 0.03f, 0.87f, 0.04f, 0.02f, 0.01f};
  if (!send_distribution(probabilities)) Serial.println("relay did not acknowledge");
  uint8_t queued, flags;
  if (relay_status(queued, flags)) {
    Serial.printf("relay: %u writes queued, joined=%u\n", queued, flags & 1);
  }
  delay(1000);
}
