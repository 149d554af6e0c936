// Int8 minifloat dots (Mf8DotsFn in kernels/dispatch.h) with ARMv8.0 NEON:
// per 16 inputs one widening multiply and one multiply-accumulate into int16
// (a lane adds two products of at most 60 * 127, no overflow), then an
// across-vector widening sum. The float part is the shared driver's.
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/mf8_driver.h"

namespace mce::neon {

namespace {
inline int32_t half_dot(const int8_t* q, const int8_t* a) {
  const int8x16_t w = vld1q_s8(q), x = vld1q_s8(a);
  int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
  p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));
  return vaddlvq_s16(p);
}

struct Neon {
  static void block_sums(const uint8_t* w, const uint8_t* x, int n, int32_t* sums) {
    for (int i = 0; i < n; ++i) {
      const int8_t* q = reinterpret_cast<const int8_t*>(w + size_t(i) * kMf8BlockBytes + 2 * sizeof(float));
      const int8_t* a = reinterpret_cast<const int8_t*>(x + size_t(i) * sizeof(Q8_0Block) + sizeof(uint16_t));
      sums[2 * i] = half_dot(q, a);
      sums[2 * i + 1] = half_dot(q + 16, a + 16);
    }
  }
};
}  // namespace

void mf8_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act, size_t act_stride,
              int n_tok, float* out, int64_t out_stride) {
  mf8_dots_impl<Neon>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::neon
