// "tl3" ternary kernels (kernels/ternary_lut_layout.h; TernaryLutBuildFn /
// TernaryLutDotsFn in kernels/dispatch.h) for baseline ARMv8.0 Advanced SIMD
// (the dotprod level uses them as they are: table lookups need no dot product).
//
// Tables as the reference's (per pair of groups: both groups' 16 low entry
// bytes, then both groups' high bytes). A step is one group for the block's
// 32 rows: 16 index bytes (low nibbles rows 0..15, high nibbles rows 16..31),
// TBL of the low and the high table bytes by each nibble vector, the sign as
// a byte mask (CMTST of the group's bit in the sign bytes) XORed into both
// bytes (x XOR -1 = -x - 1; the rows' bias adds the 1s back), ZIP1/ZIP2 of
// low and high bytes into int16 entries, added to four int16 accumulators
// (rows 0-7, 8-15, 16-23, 24-31). Entries are within +-385 and a lane takes
// 16 per octet, so the accumulators are widened into int32 every 4 octets.
// Build: a group's 16 entries are two int16x8 vectors of sum_j digit_j x_j
// (multiply-accumulates by the digit columns), split with XTN (low bytes) and
// SHRN 8 (high bytes).
#include <arm_neon.h>

#include <algorithm>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/ternary_lut_driver.h"

namespace mce::neon {
namespace {

void block_dots(int64_t octets, const uint8_t* block, const int32_t* bias, const uint8_t* tables, int32_t* out) {
  const uint8x16_t nibble = vdupq_n_u8(0x0F);
  int32x4_t acc32[8];
  for (int32x4_t& a : acc32) a = vdupq_n_s32(0);
  for (int64_t o0 = 0; o0 < octets; o0 += 4) {
    const int64_t o1 = std::min(octets, o0 + 4);
    int16x8_t acc[4] = {vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0)};
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* oct = block + size_t(o) * kTl3OctetBytes;
      const uint8_t* tab = tables + size_t(o) * kTl3OctetTableBytes;
      const uint8x16_t sa[2] = {vld1q_u8(oct), vld1q_u8(oct + 16)}, sb[2] = {vld1q_u8(oct + 32), vld1q_u8(oct + 48)};
      for (int p = 0; p < 8; ++p) {
        const uint8x16_t bit = vdupq_n_u8(uint8_t(1 << p));
        for (int l = 0; l < 2; ++l) {
          const uint8x16_t idx = vld1q_u8(oct + 64 + 32 * p + 16 * l);
          const uint8x16_t ia = vandq_u8(idx, nibble), ib = vshrq_n_u8(idx, 4);
          const uint8x16_t tlo = vld1q_u8(tab + 64 * p + 16 * l), thi = vld1q_u8(tab + 64 * p + 32 + 16 * l);
          const uint8x16_t ma = vtstq_u8(sa[l], bit), mb = vtstq_u8(sb[l], bit);
          const uint8x16_t la = veorq_u8(vqtbl1q_u8(tlo, ia), ma), ha = veorq_u8(vqtbl1q_u8(thi, ia), ma);
          const uint8x16_t lb = veorq_u8(vqtbl1q_u8(tlo, ib), mb), hb = veorq_u8(vqtbl1q_u8(thi, ib), mb);
          acc[0] = vaddq_s16(acc[0], vreinterpretq_s16_u8(vzip1q_u8(la, ha)));
          acc[1] = vaddq_s16(acc[1], vreinterpretq_s16_u8(vzip2q_u8(la, ha)));
          acc[2] = vaddq_s16(acc[2], vreinterpretq_s16_u8(vzip1q_u8(lb, hb)));
          acc[3] = vaddq_s16(acc[3], vreinterpretq_s16_u8(vzip2q_u8(lb, hb)));
        }
      }
    }
    for (int q = 0; q < 4; ++q) {
      acc32[2 * q] = vaddw_s16(acc32[2 * q], vget_low_s16(acc[q]));
      acc32[2 * q + 1] = vaddw_high_s16(acc32[2 * q + 1], acc[q]);
    }
  }
  for (int i = 0; i < 8; ++i) vst1q_s32(out + 4 * i, vaddq_s32(acc32[i], vld1q_s32(bias + 4 * i)));
}

// One token per pass (kernels/ternary_lut_driver.h).
struct Level {
  template <int T>
  static void block(int64_t octets, const uint8_t* block, const int32_t* bias, const uint8_t* tables,
                    size_t /*table_stride*/, int32_t* out, int64_t /*out_stride*/, bool /*prefetch*/) {
    static_assert(T == 1, "NEON tl3 dots take one token per pass");
    block_dots(octets, block, bias, tables, out);
  }
};

}  // namespace

void ternary_lut_build(const int8_t* a, int64_t K, uint8_t* tables) {
  static const int16_t kDigits[3][16] = {{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
                                         {0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0},
                                         {0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0}};
  int16x8_t d[3][2];
  for (int j = 0; j < 3; ++j) d[j][0] = vld1q_s16(kDigits[j]), d[j][1] = vld1q_s16(kDigits[j] + 8);
  const int64_t groups = tl3_octets(K) * 16;
  for (int64_t g = 0; g < groups; ++g) {
    int16_t x[3];
    for (int i = 0; i < 3; ++i) x[i] = 3 * g + i < K ? a[3 * g + i] : 0;
    int16x8_t e[2];
    for (int h = 0; h < 2; ++h)
      e[h] = vmlaq_n_s16(vmlaq_n_s16(vmulq_n_s16(d[0][h], x[0]), d[1][h], x[1]), d[2][h], x[2]);
    uint8_t* lo = tables + 64 * (g / 2) + 16 * (g % 2);
    vst1q_u8(lo, vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(e[0]), vmovn_s16(e[1]))));
    vst1q_u8(lo + 32, vreinterpretq_u8_s8(vcombine_s8(vshrn_n_s16(e[0], 8), vshrn_n_s16(e[1], 8))));
  }
}

void ternary_lut_dots(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* bias, const uint8_t* tables,
                      size_t table_stride, int n_tok, int32_t* out, int64_t out_stride) {
  tl3_dots_tiled<Level, 1>(K, w, n_blocks, bias, tables, table_stride, n_tok, out, out_stride);
}

}  // namespace mce::neon
