// unaligned_canary.cpp - a negative control for the emulator run: an unaligned 32-bit load
// must end in a hard fault (exit status 1) on the Cortex-M0, as on the SAMD21. If it ever
// passed, a green emulator run of the core's tests would prove nothing about alignment.
#include <stdint.h>

extern "C" void semihost_write(const char* text);

uint8_t g_bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
uint8_t* volatile g_where = g_bytes + 1;  // volatile: the compiler cannot see the misalignment

int main() {
  semihost_write("unaligned load\n");
  const uint32_t value = *reinterpret_cast<const uint32_t*>(g_where);
  return value == 0 ? 3 : 0;
}
