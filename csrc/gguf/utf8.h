// Strict UTF-8 validation (Unicode 15, table 3-7 "well-formed byte sequences"):
// rejects overlong forms, surrogates (U+D800..DFFF) and code points above
// U+10FFFF -- exactly what Python's str decoding rejects, so every string the
// reader accepts can become a Python str without errors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace mce::gguf {

// Length of the well-formed sequence starting at p (1..4), or 0 if none does.
inline size_t utf8_seq_len(const uint8_t* p, size_t n) {
  const uint8_t c = p[0];
  if (c < 0x80) return 1;
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;  // 0x80..0xC1, 0xF5..0xFF never start a sequence
  }
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (p[k] < 0x80 || p[k] > 0xBF) return 0;
  }
  return len;
}

// Byte offset of the first invalid sequence, or npos if s is valid UTF-8.
inline size_t utf8_invalid_at(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_seq_len(p + i, s.size() - i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

// Untrusted bytes made safe to put in an error message: valid UTF-8 text is
// kept, control characters, quotes, backslashes and invalid bytes become \xNN,
// and anything past `limit` bytes is cut (at a character boundary) with a note.
// The result is always valid UTF-8, which Python needs to build the message.
inline std::string escape_for_message(std::string_view s, size_t limit) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  std::string out;
  size_t i = 0;
  while (i < s.size() && i < limit) {
    const size_t len = utf8_seq_len(p + i, s.size() - i);
    const bool plain = len > 1 || (len == 1 && p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\'' && p[i] != '\\');
    if (plain) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", p[i]);
      out += buf;
      ++i;
    }
  }
  if (i < s.size()) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

}  // namespace mce::gguf
