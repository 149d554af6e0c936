// Table-lookup GEMV for low-bit weights on ARMv8.0 NEON (LutBuildFn /
// LutGemvFn in kernels/dispatch.h; layout in kernels/lut_layout.h).
//
// tbl (vqtbl1q_s8) looks 16 indices up in one 16-byte table, so each 128-bit
// lane of a layout vector is one lookup per nibble half. The lookups of a
// pair vector hold rows' two planes in adjacent bytes: uzp splits them into
// plane a and plane a+1 of 16 rows, and widening multiply-adds by 2^a and
// 2^(a+1) accumulate int16 per row. Each of the two lanes (chunk phases)
// keeps its own accumulators, so a group's int16 sums stay exact as on x86
// (at most 16 chunks x 15 x 127 per accumulator).
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/dispatch.h"

namespace mce::neon {
namespace {

// Accumulators of one chunk phase: rows 0-7 and rows 8-15.
struct Acc16 {
  int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
};

// a += e * ce + o * co for 16 rows, e and o holding rows 0-15 of two lookups.
inline void weigh(Acc16& a, int8x16_t e, int8_t ce, int8x16_t o, int8_t co) {
  a.lo = vmlal_s8(a.lo, vget_low_s8(e), vdup_n_s8(ce));
  a.hi = vmlal_high_s8(a.hi, e, vdupq_n_s8(ce));
  a.lo = vmlal_s8(a.lo, vget_low_s8(o), vdup_n_s8(co));
  a.hi = vmlal_high_s8(a.hi, o, vdupq_n_s8(co));
}

// Pair vector, one lane: planes a and a+1 of rows 0-7 (low nibbles) and
// 8-15 (high nibbles), all looked up in the lane's chunk table.
inline void pair_lane(const uint8_t* p, int8x16_t tab, int a, Acc16& acc) {
  const uint8x16_t w = vld1q_u8(p);
  const int8x16_t rl = vqtbl1q_s8(tab, vandq_u8(w, vdupq_n_u8(0x0F)));
  const int8x16_t rh = vqtbl1q_s8(tab, vshrq_n_u8(w, 4));
  // Even bytes are plane a, odd bytes plane a+1: rows 0-7 from rl, 8-15 from rh.
  weigh(acc, vuzp1q_s8(rl, rh), int8_t(1 << a), vuzp2q_s8(rl, rh), int8_t(2 << a));
}

// Single vector, one lane: plane a of rows 0-15, low nibbles in table ta
// (chunk c+L), high nibbles in tb (chunk c+2+L).
inline void single_lane(const uint8_t* p, int8x16_t ta, int8x16_t tb, int a, Acc16& acc) {
  const uint8x16_t w = vld1q_u8(p);
  weigh(acc, vqtbl1q_s8(ta, vandq_u8(w, vdupq_n_u8(0x0F))), int8_t(1 << a), vqtbl1q_s8(tb, vshrq_n_u8(w, 4)),
        int8_t(1 << a));
}

inline float32x4_t widen_sum(int16x4_t x, int16x4_t y) {
  return vcvtq_f32_s32(vaddq_s32(vmovl_s16(x), vmovl_s16(y)));
}

template <int B, bool kMin>
void gemv_tile(int64_t K, int group, const uint8_t* tile, const int8_t* tables, const float* hs, const float* xs,
               float* y) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  const float32x4_t center = vdupq_n_f32(float((1 << B) - 1) * 0.5f);
  const uint8_t* p = tile;
  const int64_t steps = group / kLutStep;
  for (int64_t g = 0; g < K / group; ++g) {
    const uint16_t* dh = reinterpret_cast<const uint16_t*>(p);
    float32x4_t d[4], m[4];
    for (int v = 0; v < 4; ++v) {
      d[v] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(dh + 4 * v)));
      m[v] = kMin ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(dh + 16 + 4 * v))) : vdupq_n_f32(0.0f);
    }
    p += kMin ? 64 : 32;
    Acc16 ph[2];  // chunk phases 0 and 1
    const int8_t* t = tables + 16 * (g * group / kLutChunk);
    for (int64_t s = 0; s < steps; ++s, t += 64, p += 32 * B) {
      __builtin_prefetch(p + 1024);
      const int8x16_t t0 = vld1q_s8(t), t1 = vld1q_s8(t + 16), t2 = vld1q_s8(t + 32), t3 = vld1q_s8(t + 48);
      if (B == 1) {
        single_lane(p, t0, t2, 0, ph[0]);
        single_lane(p + 16, t1, t3, 0, ph[1]);
      }
      if (B == 2 || B == 3) {
        pair_lane(p, t0, 0, ph[0]);
        pair_lane(p + 16, t1, 0, ph[1]);
        pair_lane(p + 32, t2, 0, ph[0]);
        pair_lane(p + 48, t3, 0, ph[1]);
      }
      if (B == 3) {
        single_lane(p + 64, t0, t2, 2, ph[0]);
        single_lane(p + 80, t1, t3, 2, ph[1]);
      }
      if (B == 4) {
        pair_lane(p, t0, 0, ph[0]);
        pair_lane(p + 16, t1, 0, ph[1]);
        pair_lane(p + 32, t0, 2, ph[0]);
        pair_lane(p + 48, t1, 2, ph[1]);
        pair_lane(p + 64, t2, 0, ph[0]);
        pair_lane(p + 80, t3, 0, ph[1]);
        pair_lane(p + 96, t2, 2, ph[0]);
        pair_lane(p + 112, t3, 2, ph[1]);
      }
    }
    const float32x4_t S[4] = {widen_sum(vget_low_s16(ph[0].lo), vget_low_s16(ph[1].lo)),
                              widen_sum(vget_high_s16(ph[0].lo), vget_high_s16(ph[1].lo)),
                              widen_sum(vget_low_s16(ph[0].hi), vget_low_s16(ph[1].hi)),
                              widen_sum(vget_high_s16(ph[0].hi), vget_high_s16(ph[1].hi))};
    for (int v = 0; v < 4; ++v) {
      acc[v] = vfmaq_f32(acc[v], S[v], vmulq_n_f32(d[v], hs[g]));
      if (kMin) acc[v] = vfmaq_n_f32(acc[v], vfmaq_f32(m[v], d[v], center), xs[g]);
    }
  }
  for (int v = 0; v < 4; ++v) vst1q_f32(y + 4 * v, acc[v]);
}

}  // namespace

void lut_build(const float* x, int64_t K, int group, int8_t* tables, float* half_sigma, float* xsum) {
  const int64_t cpg = group / kLutChunk;
  for (int64_t g = 0; g < K / group; ++g) {
    const float* xg = x + g * group;
    float a = 0.0f;
    for (int64_t j = 0; j < cpg; ++j) {
      const float32x4_t v = vabsq_f32(vld1q_f32(xg + 4 * j));
      const float32x2_t h = vpadd_f32(vget_low_f32(v), vget_high_f32(v));  // |x0|+|x1|, |x2|+|x3|
      const float sum4 = vget_lane_f32(h, 0) + vget_lane_f32(h, 1);
      a = a < sum4 ? sum4 : a;  // as the reference's std::max: a NaN is skipped
    }
    half_sigma[g] = (a / 127.0f) * 0.5f;
    const float inv = a > 0.0f ? 127.0f / a : 0.0f;
    float sum = 0.0f;
    for (int64_t j = 0; j < cpg; ++j) {
      const float* c = xg + kLutChunk * j;
      // Entries t = 4u + v: (s0 x0 + s1 x1) depends on v = t & 3, (s2 x2 +
      // s3 x3) on u = t >> 2.
      const float32x4_t p01 = {-c[0] - c[1], c[0] - c[1], -c[0] + c[1], c[0] + c[1]};
      const float p23[4] = {-c[2] - c[3], c[2] - c[3], -c[2] + c[3], c[2] + c[3]};
      int32x4_t q[4];
      for (int u = 0; u < 4; ++u) {
        float32x4_t v = vmulq_n_f32(vaddq_f32(p01, vdupq_n_f32(p23[u])), inv);
        // maxnm returns the number for a NaN operand: NaN -> -127 as the reference.
        v = vminq_f32(vmaxnmq_f32(v, vdupq_n_f32(-127.0f)), vdupq_n_f32(127.0f));
        q[u] = vcvtnq_s32_f32(v);
      }
      const int16x8_t q01 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
      const int16x8_t q23 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
      vst1q_s8(tables + 16 * (g * cpg + j), vcombine_s8(vmovn_s16(q01), vmovn_s16(q23)));
      sum += (c[0] + c[1]) + (c[2] + c[3]);
    }
    xsum[g] = sum;
  }
}

void lut_gemv(const LowBitFormat& f, int64_t K, const uint8_t* tile, const int8_t* tables, const float* half_sigma,
              const float* xsum, float* y) {
  switch (f.bits * 2 + (f.has_min ? 1 : 0)) {
    case 2: gemv_tile<1, false>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 3: gemv_tile<1, true>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 4: gemv_tile<2, false>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 5: gemv_tile<2, true>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 6: gemv_tile<3, false>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 7: gemv_tile<3, true>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 8: gemv_tile<4, false>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    case 9: gemv_tile<4, true>(K, f.group, tile, tables, half_sigma, xsum, y); break;
    default: break;
  }
}

}  // namespace mce::neon
