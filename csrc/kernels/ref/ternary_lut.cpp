// Scalar reference of the "tl3" kernels (kernels/ternary_lut_layout.h;
// TernaryLutBuildFn / TernaryLutDotsFn in kernels/dispatch.h).
//
// Tables, per pair of groups (2P, 2P + 1), 64 bytes: the low bytes of group
// 2P's 16 int16 entries, those of group 2P + 1, then the high bytes of both
// (the AVX2 and NEON levels use the same arrangement). Inputs beyond K count
// as 0. The dots apply signs exactly (negation), so they do not need the
// rows' bias.
#include "kernels/ref/ref_kernels.h"

namespace mce::ref {

void ternary_lut_build(const int8_t* a, int64_t K, uint8_t* tables) {
  const int64_t groups = tl3_octets(K) * 16;
  for (int64_t g = 0; g < groups; ++g) {
    int x[3];
    for (int i = 0; i < 3; ++i) x[i] = 3 * g + i < K ? a[3 * g + i] : 0;
    uint8_t* lo = tables + 64 * (g / 2) + 16 * (g % 2);
    for (int e = 0; e < 16; ++e) {
      const int v = kTl3Digits[e][0] * x[0] + kTl3Digits[e][1] * x[1] + kTl3Digits[e][2] * x[2];
      lo[e] = uint8_t(v & 0xFF);
      lo[32 + e] = uint8_t((v >> 8) & 0xFF);
    }
  }
}

void ternary_lut_dots(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* /*bias*/, const uint8_t* tables,
                      size_t table_stride, int n_tok, int32_t* out, int64_t out_stride) {
  const int64_t groups = tl3_octets(K) * 16;
  for (int t = 0; t < n_tok; ++t) {
    const uint8_t* tab = tables + size_t(t) * table_stride;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* block = w + size_t(b) * tl3_block_bytes(K);
      for (int r = 0; r < kTl3BlockRows; ++r) {
        int32_t s = 0;
        for (int64_t g = 0; g < groups; ++g) {
          int index, negative;
          tl3_entry(block, r, g, &index, &negative);
          const uint8_t* lo = tab + 64 * (g / 2) + 16 * (g % 2);
          const int v = int16_t(uint16_t(lo[index] | (lo[32 + index] << 8)));
          s += negative ? -v : v;
        }
        out[int64_t(t) * out_stride + b * kTl3BlockRows + r] = s;
      }
    }
  }
}

}  // namespace mce::ref
