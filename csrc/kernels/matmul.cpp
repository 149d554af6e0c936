#include "kernels/matmul.h"

#include <algorithm>

#include "kernels/dispatch.h"

namespace mce {

namespace {
// Rows per task: enough to amortise the hand-out, small enough that two
// threads stay balanced on the narrowest matrices (576 rows in SmolLM2).
constexpr int64_t kRowsPerTask = 16;
// Tokens per tile in prefill: the activation tile stays in L2 while a row
// chunk of weights streams through L1.
constexpr int64_t kTokensPerTile = 64;
}  // namespace

// Exact-activation path: each task decodes its chunk of weight rows to f32
// once and dots it with the f32 activations of every token, so the only
// rounding is that of the weights themselves (no int8 activations).
static void matmul_f32_act(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
                           int64_t y_stride) {
  const KernelTable& kt = kernels();
  const int64_t K = w.cols;
  const int64_t n_row_chunks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t n_tok_tiles = (n_tok + kTokensPerTile - 1) / kTokensPerTile;
  pool.parallel_for(n_row_chunks * n_tok_tiles, [&](int64_t task, int) {
    thread_local std::vector<float> rows;
    const int64_t r0 = (task % n_row_chunks) * kRowsPerTask;
    const int64_t r1 = std::min(w.rows, r0 + kRowsPerTask);
    const int64_t t0 = (task / n_row_chunks) * kTokensPerTile;
    const int64_t t1 = std::min(n_tok, t0 + kTokensPerTile);
    if (rows.size() < size_t((r1 - r0) * K)) rows.resize(size_t((r1 - r0) * K));
    for (int64_t r = r0; r < r1; ++r) kt.dequantize_row[uint32_t(w.type)](w.row(r), rows.data() + (r - r0) * K, K);
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * K;
      float* yt = y + t * y_stride;
      for (int64_t r = r0; r < r1; ++r) yt[r] = kt.dot_f32(K, rows.data() + (r - r0) * K, xt);
    }
  });
}

void matmul(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            std::vector<uint8_t>& act_buf, ActivationPrecision precision, int64_t y_stride) {
  const KernelTable& kt = kernels();
  const WeightKernel& wk = kt.weight[static_cast<uint32_t>(w.type)];
  if (y_stride == 0) y_stride = w.rows;
  const int64_t K = w.cols;
  if (wk.act_type != GgmlType::F32 && precision == ActivationPrecision::Exact) {
    matmul_f32_act(w, x, n_tok, y, pool, y_stride);
    return;
  }

  const uint8_t* act = reinterpret_cast<const uint8_t*>(x);
  size_t act_stride = static_cast<size_t>(K) * sizeof(float);
  if (wk.act_type != GgmlType::F32) {
    QuantizeRowFn q = wk.act_type == GgmlType::Q8_0 ? kt.quantize_q8_0
                    : wk.act_type == GgmlType::Q8_1 ? kt.quantize_q8_1 : kt.quantize_q8_K;
    act_stride = act_row_bytes(wk.act_type, K);
    if (act_buf.size() < act_stride * static_cast<size_t>(n_tok)) act_buf.resize(act_stride * n_tok);
    uint8_t* dst = act_buf.data();
    pool.parallel_for(n_tok, [&](int64_t t, int) { q(x + t * K, dst + t * act_stride, K); });
    act = act_buf.data();
  }

  const int64_t n_row_chunks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t n_tok_tiles = (n_tok + kTokensPerTile - 1) / kTokensPerTile;
  const VecDotFn dot = wk.vec_dot;
  pool.parallel_for(n_row_chunks * n_tok_tiles, [&](int64_t task, int) {
    const int64_t r0 = (task % n_row_chunks) * kRowsPerTask;
    const int64_t r1 = std::min(w.rows, r0 + kRowsPerTask);
    const int64_t t0 = (task / n_row_chunks) * kTokensPerTile;
    const int64_t t1 = std::min(n_tok, t0 + kTokensPerTile);
    for (int64_t t = t0; t < t1; ++t) {
      const uint8_t* a = act + static_cast<size_t>(t) * act_stride;
      float* yt = y + t * y_stride;
      for (int64_t r = r0; r < r1; ++r) yt[r] = dot(K, w.row(r), a);
    }
  });
}

}  // namespace mce
