// Scalar IEEE binary16 and bfloat16 conversions by bit manipulation, so the
// results are the same on every CPU and compiler (no dependence on F16C/FP16
// hardware). Rounding of f32 -> f16/bf16 is round-to-nearest-even, matching
// numpy's float16 cast and ggml's GGML_FP32_TO_FP16 / ggml_compute_fp32_to_bf16.
//
// Functions are `static inline` on purpose: this header is also included by
// ISA-specific translation units, and internal linkage keeps an AVX-compiled
// copy from being picked by the linker for baseline code.
#pragma once
#include <cstdint>
#include <cstring>

namespace mce {

static inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

static inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Exact: every binary16 value (subnormals included) is representable in f32.
// Inf/NaN keep sign and payload. Branch-free so loops over it vectorize:
// normal numbers are rebased by shifting exponent and mantissa into f32
// position and multiplying by 2^-112 (exact: a power of two); a subnormal's
// mantissa is read as the f32 0.5 + mant * 2^-24 (exponent field 126), and
// subtracting 0.5 leaves mant * 2^-24 exactly.
static inline float fp16_to_f32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent and mantissa at the top, sign dropped
  // Exponent field 31 (inf/NaN) lands on f32 exponent 255 after adding 224 and
  // stays inf/NaN under the scaling.
  const float normal = bits_to_f32((two_w >> 4) + (224u << 23)) * 0x1p-112f;
  const float subnormal = bits_to_f32((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t is_sub = 0u - static_cast<uint32_t>(two_w < (1u << 27));  // all ones or zero
  const uint32_t mag = (f32_to_bits(subnormal) & is_sub) | (f32_to_bits(normal) & ~is_sub);
  return bits_to_f32(sign | mag);
}

// Round-to-nearest-even; overflow (|x| >= 65520) -> inf; NaN stays NaN with the
// quiet bit set (as x86 F16C and ARM FCVT do).
static inline uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((ax >> 13) & 0x3ffu);
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // 65520 and above round to inf
  if (ax < 0x38800000u) {
    // Below 2^-14: the f16 result is subnormal (or the smallest normal after
    // rounding). Adding 0.5f puts the value's 2^-24 quantum at the f32 ulp,
    // so the FPU performs the nearest-even rounding for us.
    const float v = bits_to_f32(ax) + 0.5f;
    return sign | static_cast<uint16_t>(f32_to_bits(v) - 0x3f000000u);
  }
  // Normal range: rebias the exponent and round the 13 dropped bits to
  // nearest-even; a mantissa carry correctly bumps the exponent.
  const uint32_t odd = (ax >> 13) & 1u;
  const uint32_t r = ax + ((15u - 127u) << 23) + 0xfffu + odd;
  return sign | static_cast<uint16_t>(r >> 13);
}

static inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }

// As ggml_compute_fp32_to_bf16: NaN -> quiet NaN (payload top bits kept),
// otherwise round-to-nearest-even on the 16 dropped bits.
static inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace mce
