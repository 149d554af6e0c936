// Strict UTF-8 validation (Unicode 15, table 3-7 "well-formed byte sequences"):
// rejects overlong forms, surrogates (U+D800..DFFF) and code points above
// U+10FFFF -- exactly what Python's str decoding rejects, so every string the
// reader accepts can become a Python str without errors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mce::gguf {

// Returns the byte offset of the first invalid sequence, or npos if valid.
inline size_t utf8_invalid_at(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;        // no overlongs
      if (c == 0xED) hi = 0x9F;        // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;        // no overlongs
      if (c == 0xF4) hi = 0x8F;        // nothing above U+10FFFF
    } else {
      return i;                        // 0x80..0xC1, 0xF5..0xFF never start a sequence
    }
    if (n - i < len) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace mce::gguf
