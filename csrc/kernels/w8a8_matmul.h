// y = x W^T for W8A8 matrices (kernels/w8a8_layout.h): the driver behind
// matmul() / matmul_multi() for them (kernels/matmul.h).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/matmul.h"

namespace mce {

// Every target a W8A8 matrix with the same number of inputs; int8 activations
// (their per-token quantization is shared by all targets of the call).
void matmul_w8a8(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                 std::vector<uint8_t>& act_buf);

}  // namespace mce
