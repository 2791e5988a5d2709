// Fake Wire.h: TwoWire with the signatures of ArduinoCore-samd 1.8.14's slave side. The
// simulation delivers a master's write with fake_master_write(), which calls the onReceive
// handler as the SERCOM interrupt does and then clears the receive buffer.
#ifndef FAKE_WIRE_H
#define FAKE_WIRE_H

#include "Arduino.h"

#define WIRE_HAS_END 1

class TwoWire : public Stream {
 public:
  void begin();
  void begin(uint8_t address);
  void end();
  void setClock(uint32_t clock);

  void beginTransmission(uint8_t address);
  uint8_t endTransmission(bool stop_bit);
  uint8_t endTransmission(void);

  uint8_t requestFrom(uint8_t address, size_t quantity, bool stop_bit);
  uint8_t requestFrom(uint8_t address, size_t quantity);

  size_t write(uint8_t data) override;
  size_t write(const uint8_t* data, size_t quantity) override;

  int available(void) override;
  int read(void) override;
  int peek(void) override;
  void flush(void) override;
  void onReceive(void (*handler)(int));
  void onRequest(void (*handler)(void));

  inline size_t write(unsigned long n) { return write(static_cast<uint8_t>(n)); }
  inline size_t write(long n) { return write(static_cast<uint8_t>(n)); }
  inline size_t write(unsigned int n) { return write(static_cast<uint8_t>(n)); }
  inline size_t write(int n) { return write(static_cast<uint8_t>(n)); }
  using Print::write;

  // ---- simulation only ----
  // A master writes `size` bytes to our address: returns false if the slave is not begun at
  // that address (the master would see a NACK).
  bool fake_master_write(uint8_t address, const uint8_t* data, size_t size);
  // A master reads up to `size` bytes; an empty transmit buffer answers 0xFF, as on SAMD.
  size_t fake_master_read(uint8_t address, uint8_t* out, size_t size);

 private:
  int address_ = -1;
  uint8_t rx_[256];
  size_t rx_size_ = 0;
  size_t rx_pos_ = 0;
  uint8_t tx_[256];
  size_t tx_size_ = 0;
  void (*on_receive_)(int) = nullptr;
  void (*on_request_)(void) = nullptr;
};

extern TwoWire Wire;

#endif  // FAKE_WIRE_H
