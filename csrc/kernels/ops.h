// Element-wise and normalisation ops of the decoder: one table per ISA level,
// chosen like the kernel table (kernels/dispatch.h). The scalar functions in
// mce::ref are the definition; the SIMD levels agree with them within the
// bounds stated per op below (tests/native/test_ops.cpp checks every level).
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"

namespace mce {

struct OpsTable {
  // out = x / sqrt(mean(x^2) + eps) * w   (RMSNorm, Zhang & Sennrich 2019).
  // Every level sums the squares in double, so levels agree within 2 ulp.
  void (*rmsnorm)(const float* x, const float* w, float* out, int64_t n, float eps);
  // x[i] += scale * delta[i], then out = rmsnorm(x) * w: a residual add and
  // the norm that follows it in one call. out may alias delta (delta is
  // fully read before out is written). Same bounds as its two parts.
  void (*add_rmsnorm)(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps);
  // gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g)  (SwiGLU,
  // Shazeer 2020). SIMD levels use a polynomial exp (rel. error < 2^-22):
  // within 6 eps_f32 relative of exact; below g = -88.7, e^-g overflows
  // and every level returns -0 (|exact| < 1e-35 |up|).
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  // y[i] += scale * x[i]. SIMD levels may fuse the multiply-add: within
  // 1 ulp of |y| + |scale * x|.
  void (*add_scaled)(float* y, const float* x, float scale, int64_t n);
  // x[i] *= s (bit-identical on every level).
  void (*scale)(float* x, float s, int64_t n);
  // Rotates n_heads heads of length head_dim in place with interleaved pairs
  // (x[2i], x[2i+1]) — ggml's "NORM" RoPE mode, the convention of llama.cpp
  // GGUF files whose Q/K rows were permuted at conversion. cos/sin hold
  // n_rot/2 values for this token's position; dims >= n_rot are left as they
  // are. SIMD levels fuse one product: within 1 ulp of |a cos| + |b sin|.
  void (*rope_interleaved)(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                           const float* sin_t);
  // In-place softmax with max subtraction. Every level rounds x[i] - max in
  // f32; SIMD levels use the polynomial exp and f32 sums of W lanes: output
  // i within (n/W + 8 + |x[i] - max|) eps_f32 relative of exact softmax
  // (W = 8 for AVX2, 16 for AVX-512).
  void (*softmax)(float* x, int64_t n);
  // y[i] = e^x[i]. SIMD levels: the vec_math headers' polynomial, relative
  // error < 2^-22 for normal results, within 2^-149 for subnormal ones;
  // inf above 88.7228, 0 below -103.98, NaN stays NaN.
  void (*exp)(const float* x, float* y, int64_t n);
  // binary16 <-> f32, round-to-nearest-even; bit-identical to quant/fp16.h
  // on every level (F16C / AVX-512 conversions round the same way).
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  void (*f16_to_f32)(const uint16_t* x, float* y, int64_t n);
};

const OpsTable& ops_scalar();
const OpsTable* ops_avx2();    // nullptr when not built for x86
const OpsTable* ops_avx512();
// nullptr until an arm_neon/ translation unit defines it (and the build
// defines MCE_NEON_OPS); the NEON levels use the scalar table meanwhile.
const OpsTable* ops_neon();

// The table of a level (scalar for a level without its own table).
const OpsTable& ops_for(Isa isa);
// The table of the current kernel level (kernels().isa).
const OpsTable& ops();

namespace ref {
void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps);
void add_rmsnorm(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps);
void silu_mul(float* gate, const float* up, int64_t n);
void add_scaled(float* y, const float* x, float scale, int64_t n);
void scale(float* x, float s, int64_t n);
void rope_interleaved(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                      const float* sin_t);
void softmax(float* x, int64_t n);
void exp(const float* x, float* y, int64_t n);
void f32_to_f16(const float* x, uint16_t* y, int64_t n);
void f16_to_f32(const uint16_t* x, float* y, int64_t n);
}  // namespace ref

}  // namespace mce
