// Scalar reference of the int8 minifloat dots (Mf8DotsFn in kernels/dispatch.h).
#include "kernels/mf8_driver.h"
#include "kernels/ref/ref_kernels.h"

namespace mce::ref {

namespace {
struct Scalar {
  static void block_sums(const uint8_t* w, const uint8_t* x, int n, int32_t* sums) {
    for (int i = 0; i < n; ++i) {
      const int8_t* q = reinterpret_cast<const int8_t*>(w + size_t(i) * kMf8BlockBytes + 2 * sizeof(float));
      const int8_t* a = reinterpret_cast<const int8_t*>(x + size_t(i) * sizeof(Q8_0Block) + sizeof(uint16_t));
      int32_t lo = 0, hi = 0;
      for (int k = 0; k < 16; ++k) lo += int32_t(q[k]) * a[k];
      for (int k = 16; k < 32; ++k) hi += int32_t(q[k]) * a[k];
      sums[2 * i] = lo;
      sums[2 * i + 1] = hi;
    }
  }
};
}  // namespace

void mf8_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act, size_t act_stride,
              int n_tok, float* out, int64_t out_stride) {
  mf8_dots_impl<Scalar>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

// The scalar block sums, for the SIMD levels' tails.
void mf8_block_sums(const uint8_t* w, const uint8_t* x, int n, int32_t* sums) { Scalar::block_sums(w, x, n, sums); }

}  // namespace mce::ref
