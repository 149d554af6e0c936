// Scalar reference of the decode GEMV over 16-bit k-major panels
// (GemvPanel16Fn in kernels/dispatch.h): four fma chains by k mod 4, joined
// as (s0 + s1) + (s2 + s3). Every SIMD level reproduces these bits.
#include <cmath>

#include "kernels/dispatch.h"
#include "kernels/ref/ref_kernels.h"
#include "quant/fp16.h"

namespace mce::ref {
namespace {

template <float (*Widen)(uint16_t)>
void gemv_panel16(int64_t K, const uint16_t* panel, const float* x, float* y) {
  for (int i = 0; i < kPanel16Rows; ++i) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k = 0; k < K; ++k) s[k % 4] = std::fma(Widen(panel[k * kPanel16Rows + i]), x[k], s[k % 4]);
    y[i] = (s[0] + s[1]) + (s[2] + s[3]);
  }
}

}  // namespace

void gemv_f16_panel(int64_t K, const uint16_t* panel, const float* x, float* y) {
  gemv_panel16<fp16_to_f32>(K, panel, x, y);
}

void gemv_bf16_panel(int64_t K, const uint16_t* panel, const float* x, float* y) {
  gemv_panel16<bf16_to_f32>(K, panel, x, y);
}

}  // namespace mce::ref
