// Bounds-checked little-endian cursor over an untrusted byte buffer. Every read
// first proves that the bytes exist; a short buffer throws FormatError naming
// the field being read, where it starts and how many bytes were missing.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace mce::gguf {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - pos_; }

  // `what` is a callable returning a description of the field; it is only
  // invoked on failure, so hot loops (vocabularies of 100k+ strings) do not
  // pay for building messages.
  template <class What>
  void need(uint64_t n, const What& what) const {
    if (n > remaining()) {
      throw FormatError("GGUF: file truncated: " + std::string(what()) + " needs " +
                        std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                        " but only " + std::to_string(remaining()) +
                        " remain (file size " + std::to_string(size_) + ")");
    }
  }

  // Unsigned little-endian integer of N bytes. Assembled byte by byte so the
  // result does not depend on the host's byte order; compilers turn this into
  // a single load on little-endian machines.
  template <class T, class What>
  T read_uint(const What& what) {
    need(sizeof(T), what);
    T v = 0;
    for (size_t k = 0; k < sizeof(T); ++k) v |= static_cast<T>(data_[pos_ + k]) << (8 * k);
    pos_ += sizeof(T);
    return v;
  }

  template <class What> uint8_t u8(const What& w) { return read_uint<uint8_t>(w); }
  template <class What> uint16_t u16(const What& w) { return read_uint<uint16_t>(w); }
  template <class What> uint32_t u32(const What& w) { return read_uint<uint32_t>(w); }
  template <class What> uint64_t u64(const What& w) { return read_uint<uint64_t>(w); }
  template <class What> int64_t i64(const What& w) { return static_cast<int64_t>(u64(w)); }

  // A raw span of n bytes (n already checked by the caller or checked here).
  template <class What>
  std::string_view bytes(uint64_t n, const What& what) {
    need(n, what);
    std::string_view v(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += n;
    return v;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

}  // namespace mce::gguf
