// Scalar reference quantizers for activation rows (the formats ggml calls
// vec_dot_type). They follow ggml's quantize_row_q8_{0,1,K}_ref formulas:
//   Q8_0: d = amax/127, q = roundf(x/d)            (round half away from zero)
//   Q8_1: as Q8_0, plus s = fp16(d * sum(q))
//   Q8_K: iscale = -127/x_amax (signed value of the first element with the
//         largest |x|), q = min(127, nearest_even(iscale*x)), d = 1/iscale
//         (f32), bsums = sums of each 16 quants.
// Every SIMD variant must produce identical bytes so that a model's output
// does not depend on the ISA level.
#pragma once
#include <cstdint>

namespace mce {

// n must be a multiple of 32 (Q8_0, Q8_1) or 256 (Q8_K); y must hold
// n/32 * 34, n/32 * 36 or n/256 * 292 bytes respectively (4-byte aligned for Q8_K).
void quantize_row_q8_0(const float* x, void* y, int64_t n);
void quantize_row_q8_1(const float* x, void* y, int64_t n);
void quantize_row_q8_K(const float* x, void* y, int64_t n);

// C's roundf for the range a quantizer produces (|v| < 2^23): half-way cases
// go away from zero. Written out so no libm call or rounding-mode dependence
// remains, and so SIMD variants can mirror it step by step.
static inline int round_half_away(float v) {
  const float a = v < 0 ? -v : v;
  int t = static_cast<int>(a);                       // truncation, exact
  if (a - static_cast<float>(t) >= 0.5f) ++t;        // a - t is exact
  return v < 0 ? -t : t;
}

// ggml's nearest_int: round to nearest, ties to even (the 1.5*2^23 trick),
// valid for |v| < 2^22.
static inline int round_nearest_even(float v) {
  float shifted = v + 12582912.f;
  uint32_t bits;
  __builtin_memcpy(&bits, &shifted, sizeof bits);
  return static_cast<int>(bits & 0x007fffffu) - 0x00400000;
}

}  // namespace mce
