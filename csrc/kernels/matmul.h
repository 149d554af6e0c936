// y = x W^T for a weight matrix in any supported ggml type: the driver that
// turns the per-type dot products of the kernel table into a threaded matmul.
// For single tokens (decode) activations are converted once into the format
// the weight type's dot consumes (ggml's vec_dot_type idea) and every output
// row is one dot; batches (prefill) decode weight tiles to f32 instead and keep
// activations exact (see matmul.cpp). Rows are split across threads in chunks.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/weights.h"

namespace mce {

// x: [n_tok][w.cols] f32, y: [n_tok][w.rows] f32 (row stride y_stride,
// defaults to w.rows). act_buf is reusable scratch owned by the caller.
void matmul(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            std::vector<uint8_t>& act_buf, int64_t y_stride = 0);

}  // namespace mce
