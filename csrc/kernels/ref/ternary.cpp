// Scalar reference of the ternary kernels (kernels/ternary_layout.h;
// TernaryQuantizeFn / TernaryDotsFn in kernels/dispatch.h).
#include <algorithm>
#include <cmath>

#include "kernels/ref/ref_kernels.h"
#include "quant/quantize_act.h"

namespace mce::ref {

TernaryActivation ternary_quantize(const float* x, int64_t K, int8_t* a) {
  float amax = 0.0f;
  for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  TernaryActivation r;
  r.inv = 127.0f / std::max(amax, 1e-5f);
  for (int64_t k = 0; k < K; ++k) {
    // |x * inv| <= 127 up to one rounding, so the clamp only guards that.
    const int q = std::clamp(round_nearest_even(x[k] * r.inv), -128, 127);
    a[k] = int8_t(q);
    r.sum += q;
  }
  return r;
}

void ternary_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act, size_t act_stride,
                  int n_tok, int32_t* out, int64_t out_stride) {
  for (int t = 0; t < n_tok; ++t) {
    const int8_t* a = act + size_t(t) * act_stride;
    for (int r = 0; r < n_rows; ++r) {
      const uint8_t* row = w + size_t(r) * row_bytes;
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += ternary_code(row, k) * int32_t(a[k]);
      out[int64_t(t) * out_stride + r] = s;
    }
  }
}

}  // namespace mce::ref
