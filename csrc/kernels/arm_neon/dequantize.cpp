// Row decoders. Results must be the bits of the scalar decoders in
// quant/dequantize.cpp, so every element goes through the same f32 operations
// in the same order: scale products are formed in scalar f32 exactly as there,
// and q*d + m is a multiply and an add, never an FMA (this file is built with
// -ffp-contract=off; GCC's vmulq/vaddq are plain vector arithmetic that
// contraction would otherwise fuse). F32 rows keep the scalar decoder (a copy).
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/neon_util.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::neon {
namespace {

// 16 signed bytes -> y[0..15] = q * d.
inline void store_scaled_i8x16(int8x16_t q, float d, float* y) {
  float32x4_t a, b, c, e;
  neon_util::widen_i8x8_f32(vget_low_s8(q), &a, &b);
  neon_util::widen_i8x8_f32(vget_high_s8(q), &c, &e);
  vst1q_f32(y, vmulq_n_f32(a, d));
  vst1q_f32(y + 4, vmulq_n_f32(b, d));
  vst1q_f32(y + 8, vmulq_n_f32(c, d));
  vst1q_f32(y + 12, vmulq_n_f32(e, d));
}

// 16 bytes of values 0..15 -> y[0..15] = d * q - m (Q4_K's order of operands).
inline void store_q4_k_x16(int8x16_t q, float d, float m, float* y) {
  float32x4_t v[4];
  neon_util::widen_i8x8_f32(vget_low_s8(q), &v[0], &v[1]);
  neon_util::widen_i8x8_f32(vget_high_s8(q), &v[2], &v[3]);
  const float32x4_t vm = vdupq_n_f32(m);
  for (int k = 0; k < 4; ++k) vst1q_f32(y + 4 * k, vsubq_f32(vmulq_n_f32(v[k], d), vm));
}

}  // namespace

void dequantize_row_f16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
    vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(y + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

void dequantize_row_bf16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(x + i);
    vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
    vst1q_f32(y + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

// x = q * d
void dequantize_row_q8_0(const void* src, float* y, int64_t n) {
  const Q8_0Block* x = static_cast<const Q8_0Block*>(src);
  for (int64_t i = 0; i < n / kQK8_0; ++i, y += kQK8_0) {
    const float d = fp16_to_f32(x[i].d);
    store_scaled_i8x16(vld1q_s8(x[i].qs), d, y);
    store_scaled_i8x16(vld1q_s8(x[i].qs + 16), d, y + 16);
  }
}

// x = (q - 8) * d
void dequantize_row_q4_0(const void* src, float* y, int64_t n) {
  const Q4_0Block* x = static_cast<const Q4_0Block*>(src);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t i = 0; i < n / kQK4_0; ++i, y += kQK4_0) {
    const float d = fp16_to_f32(x[i].d);
    int8x16_t lo, hi;
    neon_util::split_nibbles(vld1q_u8(x[i].qs), &lo, &hi);
    store_scaled_i8x16(vsubq_s8(lo, eight), d, y);
    store_scaled_i8x16(vsubq_s8(hi, eight), d, y + 16);
  }
}

// x = q * d + m
void dequantize_row_q4_1(const void* src, float* y, int64_t n) {
  const Q4_1Block* x = static_cast<const Q4_1Block*>(src);
  for (int64_t i = 0; i < n / kQK4_0; ++i, y += kQK4_0) {
    const float d = fp16_to_f32(x[i].d);
    const float32x4_t m = vdupq_n_f32(fp16_to_f32(x[i].m));
    int8x16_t half[2];
    neon_util::split_nibbles(vld1q_u8(x[i].qs), &half[0], &half[1]);
    for (int h = 0; h < 2; ++h) {
      float32x4_t v[4];
      neon_util::widen_i8x8_f32(vget_low_s8(half[h]), &v[0], &v[1]);
      neon_util::widen_i8x8_f32(vget_high_s8(half[h]), &v[2], &v[3]);
      for (int k = 0; k < 4; ++k) vst1q_f32(y + 16 * h + 4 * k, vaddq_f32(vmulq_n_f32(v[k], d), m));
    }
  }
}

// x = (d * sc) * q - dmin * m, per 32-element sub-block
void dequantize_row_q4_K(const void* src, float* y, int64_t n) {
  const Q4_KBlock* x = static_cast<const Q4_KBlock*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float dmin = fp16_to_f32(x[i].dmin);
    uint8_t sm[16];
    q4_k_unpack_scales(x[i].scales, sm);
    const uint8_t* q = x[i].qs;
    for (int c = 0; c < 4; ++c, q += 32, y += 64) {
      const float d1 = d * sm[2 * c], m1 = dmin * sm[8 + 2 * c];
      const float d2 = d * sm[2 * c + 1], m2 = dmin * sm[8 + 2 * c + 1];
      for (int j = 0; j < 32; j += 16) {
        int8x16_t lo, hi;
        neon_util::split_nibbles(vld1q_u8(q + j), &lo, &hi);
        store_q4_k_x16(lo, d1, m1, y + j);
        store_q4_k_x16(hi, d2, m2, y + 32 + j);
      }
    }
  }
}

// x = (d * scales[g]) * (q - 32); per 128-element half, byte l of the ql/qh
// vectors gives elements l, l+32, l+64, l+96 (quant/dequantize.cpp).
void dequantize_row_q6_K(const void* src, float* y, int64_t n) {
  const Q6_KBlock* x = static_cast<const Q6_KBlock*>(src);
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
  const int8x16_t k32 = vdupq_n_s8(32);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_f32(x[i].d);
    for (int h = 0; h < 2; ++h, y += 128) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      const int8_t* sc = x[i].scales + 8 * h;
      for (int part = 0; part < 2; ++part) {
        const uint8x16_t l0 = vld1q_u8(ql + 16 * part);
        const uint8x16_t l1 = vld1q_u8(ql + 32 + 16 * part);
        const uint8x16_t hb = vld1q_u8(qh + 16 * part);
        const uint8x16_t q[4] = {
            vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(hb, 4), m30)),
            vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(hb, 2), m30)),
            vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30)),
            vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m30)),
        };
        for (int k = 0; k < 4; ++k) {
          const float s = d * static_cast<float>(sc[2 * k + part]);
          store_scaled_i8x16(vsubq_s8(vreinterpretq_s8_u8(q[k]), k32), s, y + 32 * k + 16 * part);
        }
      }
    }
  }
}

}  // namespace mce::neon
