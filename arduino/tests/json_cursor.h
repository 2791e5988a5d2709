// json_cursor.h - read-only JSON access over text in memory, without allocating.
//
// Why not a library: the same tests run on the host and on a 16 KB-RAM ARMv6-M emulator with
// the vector files linked into flash, so values are views into the text and every lookup
// rescans it. Enough JSON for tests/vectors/*.json: objects, arrays, integers, strings with
// simple escapes, true/false/null. Malformed text yields invalid cursors, never a crash.
#ifndef LORA_EMOTION_TESTS_JSON_CURSOR_H
#define LORA_EMOTION_TESTS_JSON_CURSOR_H

#include <stddef.h>
#include <stdint.h>

class Json {
 public:
  Json() : p_(nullptr), end_(nullptr) {}
  Json(const char* begin, const char* end) : p_(skip_ws(begin, end)), end_(end) {
    if (p_ == end_) p_ = nullptr;
  }

  bool valid() const { return p_ != nullptr; }
  bool is_null() const { return valid() && *p_ == 'n'; }
  bool is_object() const { return valid() && *p_ == '{'; }
  bool is_array() const { return valid() && *p_ == '['; }
  bool is_string() const { return valid() && *p_ == '"'; }
  bool is_number() const { return valid() && (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')); }
  bool is_true() const { return valid() && *p_ == 't'; }

  // Member of an object (invalid cursor if absent or not an object).
  Json get(const char* key) const {
    if (!is_object()) return Json();
    const char* q = skip_ws(p_ + 1, end_);
    while (q && q < end_ && *q == '"') {
      Json name(q, end_);
      const char* after = skip_value(q, end_);
      if (!after) return Json();
      after = skip_ws(after, end_);
      if (!after || after >= end_ || *after != ':') return Json();
      Json value(after + 1, end_);
      if (name.str_eq(key)) return value;
      q = value.valid() ? skip_value(value.p_, end_) : nullptr;
      if (!q) return Json();
      q = skip_ws(q, end_);
      if (q < end_ && *q == ',') q = skip_ws(q + 1, end_);
    }
    return Json();
  }

  bool has(const char* key) const { return get(key).valid(); }

  // Element i of an array (invalid cursor when out of range).
  Json at(size_t index) const {
    if (!is_array()) return Json();
    const char* q = skip_ws(p_ + 1, end_);
    for (size_t i = 0; q && q < end_ && *q != ']'; ++i) {
      if (i == index) return Json(q, end_);
      q = skip_value(q, end_);
      if (!q) return Json();
      q = skip_ws(q, end_);
      if (q < end_ && *q == ',') q = skip_ws(q + 1, end_);
    }
    return Json();
  }

  // Iteration without rescanning: first() of an array, then next() until invalid.
  Json first() const { return at(0); }
  Json next() const {
    const char* q = valid() ? skip_value(p_, end_) : nullptr;
    q = skip_ws(q, end_);
    if (!q || q >= end_ || *q != ',') return Json();
    return Json(q + 1, end_);
  }

  size_t size() const {
    size_t n = 0;
    while (at(n).valid()) ++n;
    return n;
  }

  long as_int(long fallback = -999999) const {
    if (!is_number()) return fallback;
    const char* q = p_;
    bool negative = *q == '-';
    if (negative) ++q;
    long value = 0;
    while (q < end_ && *q >= '0' && *q <= '9') value = value * 10 + (*q++ - '0');
    return negative ? -value : value;
  }

  // Copies the unescaped string into out (NUL-terminated); returns its length, or 0 if the
  // cursor is not a string or out is too small.
  size_t str(char* out, size_t capacity) const {
    if (!is_string() || capacity == 0) return 0;
    size_t n = 0;
    for (const char* q = p_ + 1; q < end_ && *q != '"'; ++q) {
      char c = *q;
      if (c == '\\' && q + 1 < end_) {
        c = *++q;
        if (c == 'n') c = '\n';
        if (c == 't') c = '\t';
      }
      if (n + 1 >= capacity) return 0;
      out[n++] = c;
    }
    out[n] = '\0';
    return n;
  }

  bool str_eq(const char* s) const {
    if (!is_string()) return false;
    const char* q = p_ + 1;
    while (*s && q < end_ && *q != '"' && *q != '\\' && *q == *s) {
      ++q;
      ++s;
    }
    return *s == '\0' && q < end_ && *q == '"';
  }

 private:
  static const char* skip_ws(const char* q, const char* end) {
    if (!q) return nullptr;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) ++q;
    return q;
  }

  // Pointer just past the value starting at q, or nullptr when malformed.
  static const char* skip_value(const char* q, const char* end) {
    if (!q || q >= end) return nullptr;
    if (*q == '"') {
      for (++q; q < end; ++q) {
        if (*q == '\\') {
          ++q;
        } else if (*q == '"') {
          return q + 1;
        }
      }
      return nullptr;
    }
    if (*q == '{' || *q == '[') {
      int depth = 0;
      for (; q < end; ++q) {
        if (*q == '"') {
          q = skip_value(q, end);
          if (!q) return nullptr;
          --q;
        } else if (*q == '{' || *q == '[') {
          ++depth;
        } else if (*q == '}' || *q == ']') {
          if (--depth == 0) return q + 1;
        }
      }
      return nullptr;
    }
    while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\n' &&
           *q != '\r' && *q != '\t') {
      ++q;
    }
    return q;
  }

  const char* p_;
  const char* end_;
};

#endif  // LORA_EMOTION_TESTS_JSON_CURSOR_H
