// startup.cpp - reset handler and vector table for the ARMv6-M emulator run, plus the
// semihosting calls the test harness uses (the test binary needs no other I/O).
#include <stdint.h>

extern "C" {
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern void (*__init_array_start[])(), (*__init_array_end[])();
int main();
void reset_handler();
void fault_handler();
}

namespace {
// ARM semihosting: operation in r0, argument in r1, BKPT 0xAB on ARMv6-M.
uint32_t semihost(uint32_t operation, const void* argument) {
  register uint32_t r0 __asm__("r0") = operation;
  register const void* r1 __asm__("r1") = argument;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
constexpr uint32_t kSysWrite0 = 0x04;
constexpr uint32_t kSysExit = 0x18;
constexpr uint32_t kApplicationExit = 0x20026;  // QEMU exits 0
constexpr uint32_t kRunTimeError = 0x20023;     // QEMU exits 1
}  // namespace

extern "C" void semihost_write(const char* text) { semihost(kSysWrite0, text); }

extern "C" [[noreturn]] void semihost_exit(int status) {
  semihost(kSysExit, reinterpret_cast<const void*>(status == 0 ? kApplicationExit : kRunTimeError));
  for (;;) {
  }
}

extern "C" void reset_handler() {
  for (uint32_t *src = &__data_load, *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  for (void (**ctor)() = __init_array_start; ctor < __init_array_end; ++ctor) (*ctor)();
  semihost_exit(main());
}

// A hard fault (for example an unaligned 32-bit load, which the Cortex-M0 does not allow)
// must fail the run, not hang it.
extern "C" void fault_handler() {
  semihost_write("HARD FAULT\n");
  semihost_exit(1);
}

__attribute__((section(".vectors"), used)) void (*const g_vectors[16])() = {
    reinterpret_cast<void (*)()>(&__stack_top),
    reset_handler,
    fault_handler,  // NMI
    fault_handler,  // HardFault
};
