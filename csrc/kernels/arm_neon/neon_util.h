// Small Advanced SIMD building blocks shared by arm_neon/ and
// arm_neon_dotprod/. Everything is `static inline` so each translation unit
// keeps its own copy, compiled with its own flags (the linker can never pick a
// dotprod-compiled copy for baseline code).
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace mce::neon_util {

// binary16 -> f32 with the hardware conversion (FCVT): exact, like
// quant/fp16.h's fp16_to_f32, for every non-NaN value.
static inline float half_to_float(uint16_t h) {
  __fp16 f;
  std::memcpy(&f, &h, sizeof f);
  return static_cast<float>(f);
}

static inline float32x4_t load_f16x4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

// bfloat16 is the top half of an f32.
static inline float32x4_t load_bf16x4(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

// 16 packed bytes -> their low nibbles (elements 0..15 of a Q4 block) and high
// nibbles (elements 16..31), as unsigned values in signed bytes.
static inline void split_nibbles(uint8x16_t b, int8x16_t* lo, int8x16_t* hi) {
  *lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F)));
  *hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
}

// 16 int32 (four vectors, in element order) -> 16 int8, saturating (the
// quantizers' values are already within int8).
static inline int8x16_t narrow_i32x16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
  const int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
  return vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
}

// 8 signed bytes -> two vectors of 4 f32 (exact).
static inline void widen_i8x8_f32(int8x8_t q, float32x4_t* lo, float32x4_t* hi) {
  const int16x8_t w = vmovl_s8(q);
  *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
  *hi = vcvtq_f32_s32(vmovl_high_s16(w));
}

}  // namespace mce::neon_util
