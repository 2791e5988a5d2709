// Fake Arduino.h for host builds of the unchanged sketch (ArduinoCore-samd 1.8.14 names and
// signatures; values of the serial configuration constants are placeholders). Time is
// simulated: millis() returns fake_now_ms(), delay() advances it (fake_control.h).
#ifndef FAKE_ARDUINO_H
#define FAKE_ARDUINO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef bool boolean;
typedef uint8_t byte;

#define HIGH 0x1
#define LOW 0x0
#define INPUT 0x0
#define OUTPUT 0x1
#define LED_BUILTIN 6
#define SERIAL_8N1 0x413
#define SERIAL_8N2 0x433
// The MKR WAN 1310 variant's pins to the Murata modem (variant.h of mkrwan1300).
#define LORA_RESET (30u)
#define LORA_BOOT0 (33u)

unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long ms);
void pinMode(uint32_t pin, uint32_t mode);
void digitalWrite(uint32_t pin, uint32_t value);
int digitalRead(uint32_t pin);

// Just enough of WString for MKRWAN's signatures: a fixed buffer, no allocation.
class String {
 public:
  String(const char* text = "") { assign(text); }
  String(const String& other) { assign(other.text_); }
  String& operator=(const String& other) {
    assign(other.text_);
    return *this;
  }
  const char* c_str() const { return text_; }
  unsigned int length() const { return static_cast<unsigned int>(strlen(text_)); }
  bool operator==(const char* other) const { return strcmp(text_, other) == 0; }

 private:
  void assign(const char* text) {
    strncpy(text_, text ? text : "", sizeof(text_) - 1);
    text_[sizeof(text_) - 1] = '\0';
  }
  char text_[80];
};

class Print {
 public:
  virtual ~Print() {}
  virtual size_t write(uint8_t c) = 0;
  virtual size_t write(const uint8_t* buffer, size_t size) {
    size_t n = 0;
    while (size-- > 0) n += write(*buffer++);
    return n;
  }
  size_t write(const char* text) { return text ? write(reinterpret_cast<const uint8_t*>(text), strlen(text)) : 0; }
  size_t write(const char* buffer, size_t size) { return write(reinterpret_cast<const uint8_t*>(buffer), size); }
  size_t print(const char* text) { return write(text); }
  size_t print(const String& text) { return write(text.c_str()); }
  size_t print(unsigned long value);
  size_t print(long value);
  size_t print(int value) { return print(static_cast<long>(value)); }
  size_t println(const char* text) { return print(text) + println(); }
  size_t println(const String& text) { return print(text) + println(); }
  size_t println(unsigned long value) { return print(value) + println(); }
  size_t println(long value) { return print(value) + println(); }
  size_t println(int value) { return print(value) + println(); }
  size_t println(void) { return write("\r\n"); }
};

class Stream : public Print {
 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
  virtual void flush() {}
};

// The native USB port (SerialUSB, which the MKR variant calls Serial). Output goes to the
// host's stdout; input comes from fake_serial_input().
class Serial_ : public Stream {
 public:
  void begin(uint32_t baud);
  void begin(uint32_t baud, uint8_t config);
  void end() {}
  int available() override;
  int read() override;
  int peek() override;
  void flush() override;
  size_t write(uint8_t c) override;
  size_t write(const uint8_t* buffer, size_t size) override;
  using Print::write;
  operator bool() { return true; }
};

extern Serial_ SerialUSB;
#define Serial SerialUSB

// The SERCOM UART to the Murata modem (Serial2, which the variant calls SerialLoRa). Behind it
// a fake modem answers "AT" commands with "+OK" while fake_lora says it is present.
class Uart : public Stream {
 public:
  void begin(unsigned long baud);
  void begin(unsigned long baud, uint16_t config);
  void end() {}
  int available() override;
  int read() override;
  int peek() override;
  size_t write(uint8_t c) override;
  using Print::write;
};

extern Uart Serial2;
#define SerialLoRa Serial2

#endif  // FAKE_ARDUINO_H
