// Quantized dot products of the ARMv8.0 baseline level. Without SDOT, 16
// signed-byte products are formed with two widening multiplies (int16 holds
// any int8 x int8 product, -128 * -128 included) and added pairwise into the
// int32 lanes, so the sums are exact for every byte value.
#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/quant_dots_impl.h"

namespace mce::neon {
namespace {

struct WideningDot {
  static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
  }
};

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q8_0_q8_0<WideningDot>(n, w, x);
}
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q4_0_q8_0<WideningDot>(n, w, x);
}
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q4_1_q8_1<WideningDot>(n, w, x);
}
float vec_dot_q4_K_q8_K(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q4_K_q8_K<WideningDot>(n, w, x);
}
float vec_dot_q6_K_q8_K(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q6_K_q8_K<WideningDot>(n, w, x);
}

}  // namespace mce::neon
