// Scalar reference of the W8A8 dots (W8A8DotsFn in kernels/dispatch.h;
// layout in kernels/w8a8_layout.h): the signed weights times the activations,
// summed in int32 (no overflow: |w a| <= 127 * 128 and K <= kW8A8MaxCols).
#include "kernels/ref/ref_kernels.h"
#include "kernels/w8a8_layout.h"

namespace mce::ref {

void w8a8_dots(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
               const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  const int64_t Kp = w8a8_padded_cols(K);
  const size_t gb = w8a8_group_bytes(K);
  for (int t = 0; t < n_tok; ++t) {
    const int8_t* a = act + size_t(t) * act_stride;
    for (int64_t g = 0; g < n_groups; ++g)
      for (int i = 0; i < kW8A8Rows; ++i) {
        int32_t s = 0;
        for (int64_t k = 0; k < Kp; ++k) s += (int32_t(w8a8_code(w + size_t(g) * gb, i, k)) - 128) * int32_t(a[k]);
        out[int64_t(t) * out_stride + kW8A8Rows * g + i] = s;
      }
  }
}

}  // namespace mce::ref
