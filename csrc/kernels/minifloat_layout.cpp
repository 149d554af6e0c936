#include "kernels/minifloat_layout.h"

#include <cmath>
#include <cstring>

namespace mce {

bool mf8_applies(const MiniFloatFormat& f, int64_t K) {
  return f.int_multiplier() > 0 && K % kMf8Block == 0;
}

void mf8_pack_row(const MiniFloatFormat& f, int64_t K, const uint8_t* codes, const uint8_t* scales, uint8_t* dst) {
  const float* table = minifloat_table(f.exp_bits, f.man_bits);
  const int m = f.int_multiplier(), bits = f.bits();
  for (int64_t b = 0; b < K / kMf8Block; ++b) {
    uint8_t* blk = dst + size_t(b) * kMf8BlockBytes;
    float s[2];
    for (int h = 0; h < 2; ++h)
      s[h] = minifloat_block_scale(f, scales, (b * kMf8Block + 16 * h) / f.block) / float(m);
    std::memcpy(blk, s, sizeof s);
    int8_t* q = reinterpret_cast<int8_t*>(blk + sizeof s);
    for (int i = 0; i < kMf8Block; ++i)
      q[i] = int8_t(std::lrint(table[minifloat_code(codes, bits, b * kMf8Block + i)] * float(m)));
  }
}

void mf8_decode_row(const uint8_t* row, int64_t k0, int64_t k1, float* out) {
  for (int64_t b = k0 / kMf8Block; b < k1 / kMf8Block; ++b) {
    const uint8_t* blk = row + size_t(b) * kMf8BlockBytes;
    float s[2];
    std::memcpy(s, blk, sizeof s);
    const int8_t* q = reinterpret_cast<const int8_t*>(blk + sizeof s);
    for (int i = 0; i < kMf8Block; ++i) *out++ = s[i / 16] * float(q[i]);
  }
}

}  // namespace mce
