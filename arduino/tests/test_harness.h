// test_harness.h - a few CHECK macros that work without stdio (for the ARMv6-M emulator).
//
// The platform supplies test_write() (host: stdout; emulator: semihosting) and
// test_vectors(), which returns the text of a file in tests/vectors (host: read from disk;
// emulator: linked into flash with .incbin).
#ifndef LORA_EMOTION_TESTS_HARNESS_H
#define LORA_EMOTION_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "json_cursor.h"

void test_write(const char* text);
// The document held in tests/vectors/<name>, or an invalid cursor if it is missing.
Json test_vectors(const char* name);

struct TestStats {
  uint32_t checks;
  uint32_t failures;
};
extern TestStats g_test_stats;

void test_write_u32(uint32_t value);
void test_write_i32(int32_t value);
void test_write_hex(const uint8_t* bytes, size_t length);
void test_fail(const char* file, int line, const char* what);
void test_fail_values(const char* file, int line, const char* what, long expected, long got);

#define CHECK(cond)                                                   \
  do {                                                                \
    ++g_test_stats.checks;                                            \
    if (!(cond)) test_fail(__FILE__, __LINE__, #cond);                \
  } while (0)

#define CHECK_EQ(expected, got)                                                             \
  do {                                                                                      \
    ++g_test_stats.checks;                                                                  \
    long le_expected_ = static_cast<long>(expected);                                        \
    long le_got_ = static_cast<long>(got);                                                  \
    if (le_expected_ != le_got_) {                                                          \
      test_fail_values(__FILE__, __LINE__, #expected " == " #got, le_expected_, le_got_);  \
    }                                                                                       \
  } while (0)

// Each test file registers its suites here; test_main.cpp runs them in order.
typedef void (*TestSuite)();
void run_suite(const char* name, TestSuite suite);

// Hex text to bytes; returns the byte count, or -1 if malformed or longer than capacity.
int hex_to_bytes(const char* hex, uint8_t* out, size_t capacity);
// Bytes to uppercase hex (NUL-terminated); out needs 2 * length + 1 chars.
void bytes_to_hex(const uint8_t* bytes, size_t length, char* out);
bool str_equal(const char* a, const char* b);

#endif  // LORA_EMOTION_TESTS_HARNESS_H
