// y = x W^T for a weight matrix in any supported ggml type: the driver that
// turns the per-type dot products of the kernel table into a threaded matmul.
// With f32 activations, weight rows are decoded to f32 (a k-major panel GEMM
// for batches, per-row dots for decode). With int8 activations, packed
// weights (kernels/packed_layout.h) go through the interleaved GEMMs and other
// types through one integer dot per row, activations converted once into the
// format that dot consumes (ggml's vec_dot_type idea). Rows are split across
// threads in chunks.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/weights.h"

namespace mce {

// How activations meet quantized weights.
enum class ActivationPrecision {
  // f32 activations against weight tiles decoded to f32: the only rounding is
  // the weights' own, as in an fp32 reference (transformers on the
  // dequantized checkpoint).
  Exact,
  // ggml's scheme: activations quantized to int8 blocks (Q8_0/Q8_1/Q8_K) and
  // integer dot products. Faster; about 3% of SmolLM2's top-1 predictions
  // differ from the fp32 reference.
  Int8,
};

// x: [n_tok][w.cols] f32, y: [n_tok][w.rows] f32 (row stride y_stride,
// defaults to w.rows). act_buf is reusable scratch owned by the caller.
void matmul(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            std::vector<uint8_t>& act_buf, ActivationPrecision precision, int64_t y_stride = 0);

// Several matrices applied to the same activations (Q/K/V; gate/up): one
// activation conversion and one parallel region for all of them when they
// are packed (one barrier instead of n in decode); otherwise the same as n
// matmul() calls.
struct MatmulTarget {
  const Weight* w;
  float* y;
  int64_t y_stride = 0;  // 0: w->rows
};
constexpr int kMaxMatmulTargets = 4;
void matmul_multi(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                  std::vector<uint8_t>& act_buf, ActivationPrecision precision);

// Low-bit weights in a batch (prefill) go through table lookup (T-MAC) or
// through the int8 GEMM after converting each tile to Q4_1x8 groups, which
// wins from some bits and batch size on; Auto picks by those measured
// thresholds, Lut and Int8 force a path (benchmarks, tests). Process-wide.
enum class LowBitGemm { Auto, Lut, Int8 };
void set_lowbit_gemm(LowBitGemm path);
// Whether a batch of n_tok tokens of format f takes the int8 GEMM (never for
// one token: decode always looks up).
bool lowbit_gemm_uses_int8(const LowBitFormat& f, int64_t n_tok);

}  // namespace mce
