// test_main.cpp - runs every suite; exit status 0 only if all checks passed.
#include "test_harness.h"

TestStats g_test_stats = {0, 0};

void test_write_u32(uint32_t value) {
  char digits[11];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  char text[12];
  for (int i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
  text[n] = '\0';
  test_write(text);
}

void test_write_i32(int32_t value) {
  if (value < 0) {
    test_write("-");
    test_write_u32(static_cast<uint32_t>(-(value + 1)) + 1u);
  } else {
    test_write_u32(static_cast<uint32_t>(value));
  }
}

void bytes_to_hex(const uint8_t* bytes, size_t length, char* out) {
  static const char kDigits[] = "0123456789ABCDEF";
  for (size_t i = 0; i < length; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xF];
  }
  out[2 * length] = '\0';
}

void test_write_hex(const uint8_t* bytes, size_t length) {
  char text[2 * 64 + 1];
  if (length > 64) length = 64;
  bytes_to_hex(bytes, length, text);
  test_write(text);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int hex_to_bytes(const char* hex, uint8_t* out, size_t capacity) {
  size_t n = 0;
  while (hex[0] != '\0') {
    int high = hex_digit(hex[0]);
    if (high < 0 || hex[1] == '\0') return -1;
    int low = hex_digit(hex[1]);
    if (low < 0 || n >= capacity) return -1;
    out[n++] = static_cast<uint8_t>(high * 16 + low);
    hex += 2;
  }
  return static_cast<int>(n);
}

bool str_equal(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

static const char* g_current_suite = "";

void test_fail(const char* file, int line, const char* what) {
  ++g_test_stats.failures;
  test_write("FAIL [");
  test_write(g_current_suite);
  test_write("] ");
  test_write(file);
  test_write(":");
  test_write_u32(static_cast<uint32_t>(line));
  test_write(": ");
  test_write(what);
  test_write("\n");
}

void test_fail_values(const char* file, int line, const char* what, long expected, long got) {
  test_fail(file, line, what);
  test_write("    expected ");
  test_write_i32(static_cast<int32_t>(expected));
  test_write(", got ");
  test_write_i32(static_cast<int32_t>(got));
  test_write("\n");
}

void run_suite(const char* name, TestSuite suite) {
  g_current_suite = name;
  const uint32_t before_checks = g_test_stats.checks;
  const uint32_t before_failures = g_test_stats.failures;
  suite();
  test_write(g_test_stats.failures == before_failures ? "ok   " : "FAIL ");
  test_write(name);
  test_write(" (");
  test_write_u32(g_test_stats.checks - before_checks);
  test_write(" checks)\n");
}

// Suites live in test_codec.cpp, test_relay.cpp.
void register_codec_suites();
void register_relay_suites();

int run_all_tests() {
  register_codec_suites();
  register_relay_suites();
  test_write("checks: ");
  test_write_u32(g_test_stats.checks);
  test_write(", failures: ");
  test_write_u32(g_test_stats.failures);
  test_write("\n");
  return g_test_stats.failures == 0 && g_test_stats.checks > 0 ? 0 : 1;
}
