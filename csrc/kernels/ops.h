// Element-wise and normalisation ops of the decoder: one table per ISA level,
// chosen like the kernel table (kernels/dispatch.h).
//
// The scalar functions in mce::ref are the definition, and every level gives
// the scalar reference's bits: each op below states one evaluation order
// (which products are fused into an fma, how sums are split into lanes and
// combined) that the scalar code spells out with std::fma and the SIMD levels
// reproduce, as the matmul kernels do (GemmPanelFn, GemvPanel16Fn). The one
// exception: where a result is NaN it is NaN on every level, but its sign and
// payload may differ. tests/native/test_ops.cpp checks the bits of every level
// against the scalar ones, and every level against exact (double) values
// within the bounds stated per op.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"

namespace mce {

struct OpsTable {
  // out = x / sqrt(mean(x^2) + eps) * w   (RMSNorm, Zhang & Sennrich 2019).
  // Squares of floats are exact in double, so only the order of their sum
  // matters: eight double lanes, lane k summing x[i]^2 for i % 8 == k in
  // order of i, combined as ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)) (the
  // halving tree of a 4-wide or 8-wide register). Then
  // inv = float(1 / sqrt(ss / n + eps)) and out[i] = (x[i] * inv) * w[i].
  // Within 2 ulp of exact.
  void (*rmsnorm)(const float* x, const float* w, float* out, int64_t n, float eps);
  // x = add_scaled(x, delta, scale), then out = rmsnorm(x) * w: a residual add
  // and the norm that follows it in one call. out may alias delta (delta is
  // fully read before out is written). Same bounds as its two parts.
  void (*add_rmsnorm)(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps);
  // gate[i] = (g / (1 + e)) * up[i] with e = exp(0 - g), exp as below
  // (SwiGLU, Shazeer 2020; silu(g) = g / (1 + e^-g)): within 6 eps_f32
  // relative of exact; below g = -88.7, e overflows and the result is -0
  // (|exact| < 1e-35 |up|).
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  // y[i] = fma(scale, x[i], y[i]): correctly rounded scale * x + y.
  void (*add_scaled)(float* y, const float* x, float scale, int64_t n);
  // x[i] *= s.
  void (*scale)(float* x, float s, int64_t n);
  // Rotates n_heads heads of length head_dim in place with interleaved pairs
  // (x[2i], x[2i+1]) — ggml's "NORM" RoPE mode, the convention of llama.cpp
  // GGUF files whose Q/K rows were permuted at conversion. cos/sin hold
  // n_rot/2 values for this token's position; dims >= n_rot are left as they
  // are. A pair (a, b) with c = cos[i], s = sin[i] becomes
  // (fma(a, c, -(b s)), fma(b, c, a s)) (what x86's fmaddsub computes): within
  // 1 ulp of |a c| + |b s|.
  void (*rope_interleaved)(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                           const float* sin_t);
  // In-place softmax with max subtraction: m = max x, e_i = exp(x[i] - m)
  // (the difference rounded in f32, exp as below), their sum in eight f32
  // lanes (lane k: the e_i with i % 8 == k, in order of i) combined as
  // rmsnorm's, then x[i] = e_i * (1 / sum). Output i within
  // (n/8 + 8 + |x[i] - m|) eps_f32 relative of exact softmax.
  void (*softmax)(float* x, int64_t n);
  // y[i] = e^x[i] by exp_poly below: relative error < 2^-22 for normal
  // results, within 2^-149 for subnormal ones; inf above 88.7228, 0 below
  // -103.98, NaN stays NaN.
  void (*exp)(const float* x, float* y, int64_t n);
  // binary16 <-> f32, round-to-nearest-even, as quant/fp16.h (F16C and
  // AVX-512 conversions round the same way).
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
// e^x, the exp of every level's ops and attention kernels. Method of Cephes'
// expf (Moshier): x = n ln2 + r with n = round-to-even(x log2(e)) and ln2
// split in two (Cody-Waite), each step one fma, so r is exact to ~2^-32;
// e^r = 1 + (r + r^2 P(r)) with Cephes' degree-5 minimax P evaluated by
// Horner's rule in fmas, and r + r^2 P(r) one fma; then two multiplies by
// 2^(n/2) halves, so n from -150 (subnormal results) to 128 stays
// representable. x is first clamped to [-104, 88.72283935546875]; above it
// the result is inf, NaN returns x. Max relative error 8.4e-8 (about 1 ulp),
// measured on every 7th float with a normal result.
float exp_poly(float x);

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps);
void add_rmsnorm(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps);
void silu_mul(float* gate, const float* up, int64_t n);
void add_scaled(float* y, const float* x, float scale, int64_t n);
void scale(float* x, float s, int64_t n);
void rope_interleaved(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                      const float* sin_t);
void softmax(float* x, int64_t n);
void exp(const float* x, float* y, int64_t n);
// BitNet's two element-wise ops have no SIMD level (they are a few thousand
// flops per token against millions of weight bytes); the scalar function
// serves every level.
// rope_interleaved's arithmetic on the pairs (x[i], x[i + n_rot/2]) —
// ggml's NEOX mode, HF's rotate_half.
void rope_neox(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t, const float* sin_t);
// gate[i] = (r * r) * up[i], r = max(gate[i], 0): BitNet b1.58's squared ReLU
// gate (transformers' "relu2").
void relu2_mul(float* gate, const float* up, int64_t n);
void f32_to_f16(const float* x, uint16_t* y, int64_t n);
void f16_to_f32(const uint16_t* x, float* y, int64_t n);
}  // namespace ref

}  // namespace mce
