// Quantized dot products (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K against their
// activation formats), written once over an exact signed-byte dot primitive
// `Dot::dot(acc, a, b)` that adds products of 16 int8 pairs into 4 int32
// lanes. The baseline level (arm_neon/) implements it with widening
// multiplies, the dotprod level (arm_neon_dotprod/) with SDOT; each includes
// this header into its own translation unit. Lane contents differ between the
// two, but every caller only uses lane sums or lanes scaled uniformly, so the
// integer result per block is the exact one of the scalar reference
// (kernels/ref/dot_quant.cpp). Float work: one f32 FMA per block (or
// super-block) into two interleaved accumulators, as on x86.
//
// Everything is in an unnamed namespace: the two levels instantiate the same
// templates with different instruction sets, and internal linkage keeps the
// copies apart.
#pragma once
#include <arm_neon.h>

#include <cstdint>

#include "kernels/arm_neon/neon_util.h"
#include "quant/blocks.h"

namespace mce::neon_impl {
namespace {

using neon_util::half_to_float;
using neon_util::split_nibbles;

template <class Dot>
inline int32x4_t dot32(const int8_t* a, const int8_t* b) {
  const int32x4_t s = Dot::dot(vdupq_n_s32(0), vld1q_s8(a), vld1q_s8(b));
  return Dot::dot(s, vld1q_s8(a + 16), vld1q_s8(b + 16));
}

template <class Dot>
inline float32x4_t q8_0_block(const Q8_0Block& w, const Q8_0Block& x, float32x4_t acc) {
  const int32x4_t s = dot32<Dot>(w.qs, x.qs);
  return vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_to_float(w.d) * half_to_float(x.d));
}

// Q4_0: (q - 8) fits a signed byte, so the offset is removed before the dot.
template <class Dot>
inline float32x4_t q4_0_block(const Q4_0Block& w, const Q8_0Block& x, float32x4_t acc) {
  int8x16_t lo, hi;
  split_nibbles(vld1q_u8(w.qs), &lo, &hi);
  const int8x16_t eight = vdupq_n_s8(8);
  int32x4_t s = Dot::dot(vdupq_n_s32(0), vsubq_s8(lo, eight), vld1q_s8(x.qs));
  s = Dot::dot(s, vsubq_s8(hi, eight), vld1q_s8(x.qs + 16));
  return vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_to_float(w.d) * half_to_float(x.d));
}

// Q4_1: sum_j (d_w q_j + m)(d_x r_j) = d_w d_x sum q_j r_j + m * s, with
// s = d_x sum r_j stored in the Q8_1 block; the min terms go to *mins.
template <class Dot>
inline float32x4_t q4_1_block(const Q4_1Block& w, const Q8_1Block& x, float32x4_t acc, float* mins) {
  int8x16_t lo, hi;
  split_nibbles(vld1q_u8(w.qs), &lo, &hi);
  int32x4_t s = Dot::dot(vdupq_n_s32(0), lo, vld1q_s8(x.qs));
  s = Dot::dot(s, hi, vld1q_s8(x.qs + 16));
  *mins += half_to_float(w.m) * half_to_float(x.s);
  return vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_to_float(w.d) * half_to_float(x.d));
}

template <class Dot>
float vec_dot_q8_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q8_0Block* w = static_cast<const Q8_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  const int64_t nb = n / kQK8_0;
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = q8_0_block<Dot>(w[i], x[i], acc0);
    acc1 = q8_0_block<Dot>(w[i + 1], x[i + 1], acc1);
  }
  if (i < nb) acc0 = q8_0_block<Dot>(w[i], x[i], acc0);
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

template <class Dot>
float vec_dot_q4_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q4_0Block* w = static_cast<const Q4_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  const int64_t nb = n / kQK4_0;
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = q4_0_block<Dot>(w[i], x[i], acc0);
    acc1 = q4_0_block<Dot>(w[i + 1], x[i + 1], acc1);
  }
  if (i < nb) acc0 = q4_0_block<Dot>(w[i], x[i], acc0);
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

template <class Dot>
float vec_dot_q4_1_q8_1(int64_t n, const void* vw, const void* vx) {
  const Q4_1Block* w = static_cast<const Q4_1Block*>(vw);
  const Q8_1Block* x = static_cast<const Q8_1Block*>(vx);
  const int64_t nb = n / kQK4_0;
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  float mins0 = 0.0f, mins1 = 0.0f;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = q4_1_block<Dot>(w[i], x[i], acc0, &mins0);
    acc1 = q4_1_block<Dot>(w[i + 1], x[i + 1], acc1, &mins1);
  }
  if (i < nb) acc0 = q4_1_block<Dot>(w[i], x[i], acc0, &mins0);
  return vaddvq_f32(vaddq_f32(acc0, acc1)) + (mins0 + mins1);
}

// Q4_K: per 64-element chunk c, sub-block 2c takes the low nibbles against
// activations 64c..64c+31 and sub-block 2c+1 the high nibbles against the
// next 32. Scales multiply the int32 lanes (exact: |sum| < 2^26 per block);
// mins meet the activation's bsums once per sub-block.
template <class Dot>
float vec_dot_q4_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q4_KBlock* w = static_cast<const Q4_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    alignas(16) uint8_t sm[16];  // scales 0..7, mins 0..7
    q4_k_unpack_scales(w[i].scales, sm);
    // bsums of 16 -> sums of each 32-element sub-block (|.| <= 32 * 128: int16).
    const int16x8_t bs = vpaddq_s16(vld1q_s16(x[i].bsums), vld1q_s16(x[i].bsums + 8));
    const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
    const int32x4_t mp = vmlal_high_s16(vmull_s16(vget_low_s16(mins), vget_low_s16(bs)), mins, bs);
    const int summ = vaddvq_s32(mp);

    int32x4_t sumi = vdupq_n_s32(0);
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    for (int c = 0; c < 4; ++c, q4 += 32, q8 += 64) {
      int8x16_t lo0, hi0, lo1, hi1;
      split_nibbles(vld1q_u8(q4), &lo0, &hi0);
      split_nibbles(vld1q_u8(q4 + 16), &lo1, &hi1);
      const int32x4_t plo = Dot::dot(Dot::dot(vdupq_n_s32(0), lo0, vld1q_s8(q8)), lo1, vld1q_s8(q8 + 16));
      const int32x4_t phi = Dot::dot(Dot::dot(vdupq_n_s32(0), hi0, vld1q_s8(q8 + 32)), hi1, vld1q_s8(q8 + 48));
      sumi = vmlaq_n_s32(sumi, plo, sm[2 * c]);
      sumi = vmlaq_n_s32(sumi, phi, sm[2 * c + 1]);
    }
    const float d = half_to_float(w[i].d) * x[i].d;
    const float dmin = half_to_float(w[i].dmin) * x[i].d;
    sum += d * static_cast<float>(vaddvq_s32(sumi)) - dmin * static_cast<float>(summ);
  }
  return sum;
}

// Q6_K: per 128-element half, byte l of the 32-byte ql/qh vectors yields
// elements l, l+32, l+64, l+96 (layout in quant/dequantize.cpp). Each
// 16-element group is then one 16-byte vector with one scale: the quants
// minus 32 fit a signed byte and meet the activation directly.
template <class Dot>
float vec_dot_q6_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q6_KBlock* w = static_cast<const Q6_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
  const int8x16_t k32 = vdupq_n_s8(32);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int32x4_t sumi = vdupq_n_s32(0);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[i].ql + 64 * h;
      const uint8_t* qh = w[i].qh + 32 * h;
      const int8_t* sc = w[i].scales + 8 * h;
      const int8_t* q8 = x[i].qs + 128 * h;
      for (int part = 0; part < 2; ++part) {  // lanes l = 16*part .. 16*part+15
        const uint8x16_t l0 = vld1q_u8(ql + 16 * part);
        const uint8x16_t l1 = vld1q_u8(ql + 32 + 16 * part);
        const uint8x16_t hb = vld1q_u8(qh + 16 * part);
        const uint8x16_t q[4] = {
            vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(hb, 4), m30)),  // qh bits 0-1
            vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(hb, 2), m30)),  // bits 2-3
            vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30)),                // bits 4-5
            vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m30)), // bits 6-7
        };
        for (int k = 0; k < 4; ++k) {
          // Elements 32k + 16*part .. +15 of the half: group 2k + part.
          const int8x16_t qk = vsubq_s8(vreinterpretq_s8_u8(q[k]), k32);
          const int32x4_t p = Dot::dot(vdupq_n_s32(0), qk, vld1q_s8(q8 + 32 * k + 16 * part));
          sumi = vmlaq_n_s32(sumi, p, sc[2 * k + part]);
        }
      }
    }
    sum += half_to_float(w[i].d) * x[i].d * static_cast<float>(vaddvq_s32(sumi));
  }
  return sum;
}

}  // namespace
}  // namespace mce::neon_impl
