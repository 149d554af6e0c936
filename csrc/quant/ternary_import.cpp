#include "quant/ternary_import.h"

#include <cstring>

#include "quant/fp16.h"

namespace mce {

namespace {

constexpr int kTq1Bytes = 54, kTq2Bytes = 66;

int trit(uint8_t byte, int n) {
  static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = uint8_t(byte * pow3[n]);
  return (uint16_t(q) * 3) >> 8;
}

// The 256 codes (t + 1) of one TQ1_0 block in weight order.
void tq1_codes(const uint8_t* blk, uint8_t* codes) {
  const uint8_t* qs = blk;
  const uint8_t* qh = blk + 48;
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) codes[32 * n + m] = uint8_t(trit(qs[m], n));
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) codes[160 + 16 * n + m] = uint8_t(trit(qs[32 + m], n));
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 4; ++j) codes[240 + 4 * n + j] = uint8_t(trit(qh[j], n));
}

// 128 codes in weight order -> one 32-byte t2 chunk.
void pack_chunk(const uint8_t* codes, uint8_t* chunk) {
  for (int j = 0; j < 32; ++j)
    chunk[j] = uint8_t(codes[j] | codes[32 + j] << 2 | codes[64 + j] << 4 | codes[96 + j] << 6);
}

}  // namespace

bool ternary_from_tq(GgmlType type, const uint8_t* src, int64_t rows, int64_t K, uint8_t* dst, float* scale) {
  const bool tq1 = type == GgmlType::TQ1_0;
  const int block_bytes = tq1 ? kTq1Bytes : kTq2Bytes;
  const int64_t blocks = K / 256;
  bool have = false;
  uint16_t d_bits = 0;
  uint8_t codes[256];
  for (int64_t i = 0; i < rows * blocks; ++i) {
    const uint8_t* blk = src + size_t(i) * block_bytes;
    uint8_t* out = dst + size_t(i) * 64;
    if (tq1) {
      tq1_codes(blk, codes);
      pack_chunk(codes, out);
      pack_chunk(codes + 128, out + 32);
    } else {
      std::memcpy(out, blk, 64);
    }
    // A block of zeros (every code 1, i.e. bytes 0x55) may carry any d.
    bool zero = true;
    for (int j = 0; j < 64 && zero; ++j) zero = out[j] == 0x55;
    uint16_t d;
    std::memcpy(&d, blk + block_bytes - 2, sizeof d);
    if (zero) continue;
    if (have && d != d_bits) return false;
    have = true;
    d_bits = d;
  }
  *scale = have ? fp16_to_f32(d_bits) : 0.0f;
  return true;
}

}  // namespace mce
