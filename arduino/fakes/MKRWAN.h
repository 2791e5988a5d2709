// Fake MKRWAN.h: LoRaModem with the public signatures of MKRWAN 1.1.x (header-only library,
// class LoRaModem : public Stream), backed by a scripted network (fake_control.h) instead of
// the Murata modem's AT commands. getDownlinkPort() is present as in 1.1.1 and later.
#ifndef FAKE_MKRWAN_H
#define FAKE_MKRWAN_H

#include "Arduino.h"

#define DEFAULT_JOIN_TIMEOUT 60000L

typedef enum {
  AS923 = 0,
  AU915,
  CN470,
  CN779,
  EU433,
  EU868 = 5,
  KR920,
  IN865,
  US915,
  US915_HYBRID,
} _lora_band;

typedef enum {
  RFO = 0,
  PABOOST,
} _rf_mode;

typedef enum {
  ABP = 0,
  OTAA,
} _lora_mode;

typedef enum {
  CLASS_A = 'A',
  CLASS_B,
  CLASS_C,
} _lora_class;

class LoRaModem : public Stream {
 public:
  LoRaModem(Stream& stream = (Stream&)Serial);

  virtual int joinOTAA(const char* appEui, const char* appKey, const char* devEui, uint32_t timeout);
  virtual int joinOTAA(String appEui, String appKey, uint32_t timeout = DEFAULT_JOIN_TIMEOUT);
  virtual int joinOTAA(String appEui, String appKey, String devEui, uint32_t timeout = DEFAULT_JOIN_TIMEOUT);
  virtual int joinABP(const char* devAddr, const char* nwkSKey, const char* appSKey,
                      uint32_t timeout = DEFAULT_JOIN_TIMEOUT);
  virtual int joinABP(String devAddr, String nwkSKey, String appSKey);

  void beginPacket();
  int endPacket(bool confirmed = false);
  size_t write(uint8_t c) override;
  size_t write(const uint8_t* buffer, size_t size) override;
  template <typename T>
  inline size_t write(T val) {
    return write(reinterpret_cast<uint8_t*>(&val), sizeof(T));
  }
  using Print::write;

  int parsePacket();
  int available() override;
  virtual int read(uint8_t* buf, size_t size);
  int read() override;
  int peek() override;
  void flush() override {}
  virtual uint8_t connected();
  virtual operator bool() { return connected(); }

  bool begin(_lora_band band, uint32_t baud = 19200, uint16_t config = SERIAL_8N2);
  bool init();
  bool configureClass(_lora_class _class);
  bool configureBand(_lora_band band);
  String version();
  String deviceEUI();
  void maintain();
  void minPollInterval(unsigned long secs);
  void poll();
  bool restart();
  bool dutyCycle(bool on);
  bool setPort(uint8_t port);
  bool publicNetwork(bool publicNetwork);
  bool sleep(bool on = true);
  bool format(bool hexMode);
  bool dataRate(uint8_t dr);
  int getDataRate();
  bool setADR(bool adr);
  int getADR();
  String getDevAddr();
  uint8_t getDownlinkPort();

 private:
  Stream& stream_;
  bool joined_ = false;
  bool adr_ = false;
  uint8_t port_ = 2;
  uint8_t tx_[256];
  size_t tx_size_ = 0;
  uint8_t rx_[64];
  size_t rx_size_ = 0;
  size_t rx_pos_ = 0;
  uint8_t rx_port_ = 0;
  uint32_t rx_ready_ms_ = 0;
};

#endif  // FAKE_MKRWAN_H
