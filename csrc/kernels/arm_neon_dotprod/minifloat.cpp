// Int8 minifloat dots (Mf8DotsFn in kernels/dispatch.h) with ARMv8.2 dotprod:
// one SDOT per 16 inputs, then an across-vector sum. The float part is the
// shared driver's.
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/mf8_driver.h"

namespace mce::neon_dotprod {

namespace {
struct NeonDotprod {
  static void block_sums(const uint8_t* w, const uint8_t* x, int n, int32_t* sums) {
    for (int i = 0; i < n; ++i) {
      const int8_t* q = reinterpret_cast<const int8_t*>(w + size_t(i) * kMf8BlockBytes + 2 * sizeof(float));
      const int8_t* a = reinterpret_cast<const int8_t*>(x + size_t(i) * sizeof(Q8_0Block) + sizeof(uint16_t));
      sums[2 * i] = vaddvq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(q), vld1q_s8(a)));
      sums[2 * i + 1] = vaddvq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(q + 16), vld1q_s8(a + 16)));
    }
  }
};
}  // namespace

void mf8_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act, size_t act_stride,
              int n_tok, float* out, int64_t out_stride) {
  mf8_dots_impl<NeonDotprod>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::neon_dotprod
