// test_platform_host.cpp - stdout and vector files on disk (directory in LE_VECTORS_DIR).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_harness.h"

void test_write(const char* text) { fputs(text, stdout); }

namespace {
struct Loaded {
  char name[64];
  char* text;
  size_t length;
};
Loaded g_loaded[16];
size_t g_count = 0;
}  // namespace

Json test_vectors(const char* name) {
  for (size_t i = 0; i < g_count; ++i) {
    if (strcmp(g_loaded[i].name, name) == 0) {
      return Json(g_loaded[i].text, g_loaded[i].text + g_loaded[i].length);
    }
  }
  const char* dir = getenv("LE_VECTORS_DIR");
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", name);
  FILE* file = fopen(path, "rb");
  if (!file || g_count >= 16) {
    fprintf(stdout, "missing vector file %s\n", path);
    if (file) fclose(file);
    return Json();
  }
  fseek(file, 0, SEEK_END);
  long size = ftell(file);
  fseek(file, 0, SEEK_SET);
  char* text = static_cast<char*>(malloc(static_cast<size_t>(size) + 1));
  size_t got = fread(text, 1, static_cast<size_t>(size), file);
  fclose(file);
  text[got] = '\0';
  Loaded& slot = g_loaded[g_count++];
  snprintf(slot.name, sizeof(slot.name), "%s", name);
  slot.text = text;
  slot.length = got;
  return Json(text, text + got);
}

int run_all_tests();

int main() {
  int status = run_all_tests();
  for (size_t i = 0; i < g_count; ++i) free(g_loaded[i].text);
  return status;
}
