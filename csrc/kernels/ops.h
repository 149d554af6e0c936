// Element-wise and normalisation ops of the decoder. They are a small share of
// the time next to the matmuls, so one portable version serves every ISA.
#pragma once
#include <cstdint>

namespace mce {

// out = x / sqrt(mean(x^2) + eps) * w   (RMSNorm, Zhang & Sennrich 2019)
void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps);

// x[i] = silu(gate[i]) * up[i]  (SwiGLU, Shazeer 2020), in place over gate.
void silu_mul(float* gate, const float* up, int64_t n);

// y[i] += scale * x[i]
void add_scaled(float* y, const float* x, float scale, int64_t n);

// Rotates `n_heads` heads of length head_dim in place with interleaved pairs
// (x[2i], x[2i+1]) — ggml's "NORM" RoPE mode, the convention of llama.cpp
// GGUF files whose Q/K rows were permuted at conversion. cos/sin hold n_rot/2
// values for this token's position; dims >= n_rot are left unrotated.
void rope_interleaved(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                      const float* sin_t);

// In-place softmax; returns nothing, uses max subtraction for stability.
void softmax(float* x, int64_t n);

}  // namespace mce
