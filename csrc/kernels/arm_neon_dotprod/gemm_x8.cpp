// Packed-weight GEMMs for the dotprod level. In the interleaved layout
// (kernels/packed_layout.h) the 16 bytes of rows 0-3 of one weight vector hold
// 4 consecutive quants per row, which is exactly what SDOT by element
// (vdotq_laneq_s32) consumes: each int32 lane (a row) adds the products of its
// 4 bytes with the 4 activation bytes of the selected lane. Rows 4-7 are the
// next 16 bytes. Integer sums are exact (Q4_0's offset of 8 is removed from
// the nibbles first, leaving signed bytes); the float steps are the ones the
// GemmX8Fn contract in kernels/dispatch.h prescribes, as explicit FMAs, so the
// results equal the scalar reference bit for bit. Up to 4 tokens share each
// decoded weight vector.
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/neon_util.h"
#include "quant/blocks.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "arm_neon_dotprod/ must be compiled with -march=armv8.2-a+dotprod"
#endif

namespace mce::neon_dotprod {
namespace {

enum class Kind { Q4_0, Q4_1, Q8_0 };

constexpr size_t block_bytes(Kind k) { return k == Kind::Q4_0 ? 144 : k == Kind::Q4_1 ? 160 : 272; }
constexpr size_t qs_offset(Kind k) { return k == Kind::Q4_1 ? 32 : 16; }

// Integer sums of one block for T tokens: s[t][0] rows 0-3, s[t][1] rows 4-7.
// The lane index of SDOT must be a constant, hence the template over J.
template <int J, int T, Kind K>
inline void q4_step(const uint8_t* qs, const int8x16_t* xa, const int8x16_t* xb, int32x4_t (*s)[2]) {
  int8x16_t lo0, hi0, lo1, hi1;
  neon_util::split_nibbles(vld1q_u8(qs + 32 * J), &lo0, &hi0);
  neon_util::split_nibbles(vld1q_u8(qs + 32 * J + 16), &lo1, &hi1);
  if (K == Kind::Q4_0) {
    const int8x16_t eight = vdupq_n_s8(8);
    lo0 = vsubq_s8(lo0, eight), hi0 = vsubq_s8(hi0, eight);
    lo1 = vsubq_s8(lo1, eight), hi1 = vsubq_s8(hi1, eight);
  }
  for (int t = 0; t < T; ++t) {
    // Low nibbles are elements 4J..4J+3, high nibbles 16+4J..16+4J+3.
    s[t][0] = vdotq_laneq_s32(vdotq_laneq_s32(s[t][0], lo0, xa[t], J), hi0, xb[t], J);
    s[t][1] = vdotq_laneq_s32(vdotq_laneq_s32(s[t][1], lo1, xa[t], J), hi1, xb[t], J);
  }
}

// Q8_0: vector S holds elements 4S..4S+3 of every row.
template <int S, int T>
inline void q8_step(const uint8_t* qs, const int8x16_t* xa, const int8x16_t* xb, int32x4_t (*s)[2]) {
  const int8x16_t w0 = vld1q_s8(reinterpret_cast<const int8_t*>(qs + 32 * S));
  const int8x16_t w1 = vld1q_s8(reinterpret_cast<const int8_t*>(qs + 32 * S + 16));
  for (int t = 0; t < T; ++t) {
    const int8x16_t& x = S < 4 ? xa[t] : xb[t];
    s[t][0] = vdotq_laneq_s32(s[t][0], w0, x, S % 4);
    s[t][1] = vdotq_laneq_s32(s[t][1], w1, x, S % 4);
  }
}

template <int T, Kind K>
void gemm_tile(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
               int64_t sums_stride, float* y, int64_t y_stride) {
  float32x4_t acc[T][2];
  const Q8_0Block* x[T];
  for (int t = 0; t < T; ++t) {
    acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);
    x[t] = reinterpret_cast<const Q8_0Block*>(act + size_t(t) * act_stride);
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + size_t(b) * block_bytes(K);
    const uint8_t* qs = blk + qs_offset(K);
    int8x16_t xa[T], xb[T];
    int32x4_t s[T][2];
    for (int t = 0; t < T; ++t) {
      xa[t] = vld1q_s8(x[t][b].qs);
      xb[t] = vld1q_s8(x[t][b].qs + 16);
      s[t][0] = s[t][1] = vdupq_n_s32(0);
    }
    if (K == Kind::Q8_0) {
      q8_step<0, T>(qs, xa, xb, s), q8_step<1, T>(qs, xa, xb, s);
      q8_step<2, T>(qs, xa, xb, s), q8_step<3, T>(qs, xa, xb, s);
      q8_step<4, T>(qs, xa, xb, s), q8_step<5, T>(qs, xa, xb, s);
      q8_step<6, T>(qs, xa, xb, s), q8_step<7, T>(qs, xa, xb, s);
    } else {
      q4_step<0, T, K>(qs, xa, xb, s), q4_step<1, T, K>(qs, xa, xb, s);
      q4_step<2, T, K>(qs, xa, xb, s), q4_step<3, T, K>(qs, xa, xb, s);
    }
    const float16x8_t dh = vreinterpretq_f16_u8(vld1q_u8(blk));
    const float32x4_t dw0 = vcvt_f32_f16(vget_low_f16(dh)), dw1 = vcvt_high_f32_f16(dh);
    for (int t = 0; t < T; ++t) {
      const float dx = neon_util::half_to_float(x[t][b].d);
      // acc = fma(float(s), d_w * d_x, acc), per row.
      acc[t][0] = vfmaq_f32(acc[t][0], vcvtq_f32_s32(s[t][0]), vmulq_n_f32(dw0, dx));
      acc[t][1] = vfmaq_f32(acc[t][1], vcvtq_f32_s32(s[t][1]), vmulq_n_f32(dw1, dx));
      if (K == Kind::Q4_1) {
        // acc = fma(m_w, d_x * float(sum_x), acc).
        const float16x8_t mh = vreinterpretq_f16_u8(vld1q_u8(blk + 16));
        const float c = dx * static_cast<float>(sums[t * sums_stride + b]);
        acc[t][0] = vfmaq_n_f32(acc[t][0], vcvt_f32_f16(vget_low_f16(mh)), c);
        acc[t][1] = vfmaq_n_f32(acc[t][1], vcvt_high_f32_f16(mh), c);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    vst1q_f32(y + t * y_stride, acc[t][0]);
    vst1q_f32(y + t * y_stride + 4, acc[t][1]);
  }
}

// Whole token range in tiles of 4 (remainder 1..3).
template <Kind K>
void gemm(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
          int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4) {
    gemm_tile<4, K>(nb, group, act + t * act_stride, act_stride, sums + t * sums_stride, sums_stride,
                    y + t * y_stride, y_stride);
  }
  const uint8_t* a = act + t * act_stride;
  const int32_t* s = sums + t * sums_stride;
  float* yt = y + t * y_stride;
  switch (n_tok - t) {
    case 3: gemm_tile<3, K>(nb, group, a, act_stride, s, sums_stride, yt, y_stride); break;
    case 2: gemm_tile<2, K>(nb, group, a, act_stride, s, sums_stride, yt, y_stride); break;
    case 1: gemm_tile<1, K>(nb, group, a, act_stride, s, sums_stride, yt, y_stride); break;
    default: break;
  }
}

}  // namespace

void gemm_q4_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  gemm<Kind::Q4_0>(nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

void gemm_q4_1x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  gemm<Kind::Q4_1>(nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

// Q8_0 reads no sums (the pointer may be null).
void gemm_q8_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  gemm<Kind::Q8_0>(nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

}  // namespace mce::neon_dotprod
