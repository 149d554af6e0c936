// Scalar reference of the f32 panel GEMM: one fma per k in order for every
// output, the sequence every SIMD level reproduces bit for bit.
#include <cmath>

#include "kernels/dispatch.h"
#include "kernels/ref/ref_kernels.h"

namespace mce::ref {

void gemm_f32_panel(int64_t K, const float* panel, const float* x, int64_t ldx, int64_t n_tok, float* y,
                    int64_t ldy, int n_rows, bool accumulate) {
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int i = 0; i < n_rows; ++i) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(panel[k * kPanelRows + i], x[t * ldx + k], acc);
      y[t * ldy + i] = accumulate ? y[t * ldy + i] + acc : acc;
    }
  }
}

}  // namespace mce::ref
