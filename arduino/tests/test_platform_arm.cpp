// test_platform_arm.cpp - semihosting output and the vector files linked into flash.
#include "test_harness.h"

extern "C" void semihost_write(const char* text);

void test_write(const char* text) { semihost_write(text); }

// .incbin puts each file, unchanged, into flash; LE_VECTORS_DIR is the absolute path of
// tests/vectors, given on the command line.
#define LE_EMBED(symbol, file)                                                   \
  __asm__(".section .rodata." #symbol ",\"a\"\n.global " #symbol "_begin\n" #symbol \
          "_begin:\n.incbin \"" LE_VECTORS_DIR "/" file "\"\n.global " #symbol     \
          "_end\n" #symbol "_end:\n.byte 0\n.previous\n");                       \
  extern "C" const char symbol##_begin[], symbol##_end[];

LE_EMBED(le_messages, "messages.json")
LE_EMBED(le_airtime, "airtime.json")
LE_EMBED(le_quantise, "quantise.json")
LE_EMBED(le_ledger, "ledger.json")
LE_EMBED(le_frames, "relay_frames.json")
LE_EMBED(le_downlinks, "downlinks.json")

Json test_vectors(const char* name) {
  struct File {
    const char* name;
    const char* begin;
    const char* end;
  };
  static const File kFiles[] = {
      {"messages.json", le_messages_begin, le_messages_end},
      {"airtime.json", le_airtime_begin, le_airtime_end},
      {"quantise.json", le_quantise_begin, le_quantise_end},
      {"ledger.json", le_ledger_begin, le_ledger_end},
      {"relay_frames.json", le_frames_begin, le_frames_end},
      {"downlinks.json", le_downlinks_begin, le_downlinks_end},
  };
  for (const File& file : kFiles) {
    if (str_equal(file.name, name)) return Json(file.begin, file.end);
  }
  test_write("missing vector file ");
  test_write(name);
  test_write("\n");
  return Json();
}

int run_all_tests();

int main() {
  test_write("lora-emotion core tests on ARMv6-M (qemu microbit)\n");
  return run_all_tests();
}
