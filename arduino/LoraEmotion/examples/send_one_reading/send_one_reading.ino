// send_one_reading.ino - the smallest use of the LoraEmotion codec on an MKR WAN 1310: join
// KPN Things (OTAA), encode one emotion reading (FER-2013 "happy", 87 %) and send it once.
// The payload is 2 bytes on port 16; the lora-emotion webhook or `lora-emotion decode`
// reads it back (docs/payload-format.md).
#include <Arduino.h>
#include <MKRWAN.h>

#include <LoraEmotion.h>

#include "arduino_secrets.h"  // copy arduino_secrets.h.example; never commit the real one

LoRaModem modem;

// Stops here with the reason on USB serial: a sketch that cannot go on should not retry in a
// loop that keeps the radio busy.
void halt(const char* reason) {
  Serial.println(reason);
  for (;;) delay(1000);
}

void setup() {
  Serial.begin(115200);
  const unsigned long start = millis();
  while (!Serial && millis() - start < 5000) {}  // give a USB host 5 s to connect
  // MKRWAN's begin() never returns while the modem is silent: ask it first.
  SerialLoRa.begin(19200, SERIAL_8N2);
  if (!lora_emotion::modem_answers(SerialLoRa, millis, delay, 3000) || !modem.begin(EU868)) {
    halt("the modem does not answer: update it with MKRWAN's MKRWANFWUpdate_standalone");
  }
  modem.setADR(true);  // KPN requires ADR
  if (!modem.joinOTAA(SECRET_APP_EUI, SECRET_APP_KEY)) halt("join failed: check the keys and coverage");

  lora_emotion::LabelSet fer2013;
  lora_emotion::builtin_label_set(0, fer2013);
  lora_emotion::Payload payload;
  if (lora_emotion::encode_reading(fer2013, 3, 87, payload) != lora_emotion::Result::kOk) halt("encode failed");
  modem.setPort(payload.port);
  modem.beginPacket();
  modem.write(payload.bytes, payload.size);
  // -1: no answer within a second, which at SF11-12 also happens when the uplink went out.
  const int rc = modem.endPacket(false);
  Serial.print(rc > 0 || rc == -1 ? "sent, endPacket " : "not sent, endPacket ");
  Serial.println(rc);
}

void loop() {}
