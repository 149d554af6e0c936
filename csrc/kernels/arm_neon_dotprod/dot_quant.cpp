// Quantized dot products of the ARMv8.2 dotprod level: SDOT adds four int8
// products into each int32 lane in one instruction (exact for every byte
// value). The kernels themselves are the baseline level's
// (arm_neon/quant_dots_impl.h); only the byte dot differs.
#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/quant_dots_impl.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "arm_neon_dotprod/ must be compiled with -march=armv8.2-a+dotprod"
#endif

namespace mce::neon_dotprod {
namespace {

struct Sdot {
  static inline int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q8_0_q8_0<Sdot>(n, w, x);
}
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q4_0_q8_0<Sdot>(n, w, x);
}
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q4_1_q8_1<Sdot>(n, w, x);
}
float vec_dot_q4_K_q8_K(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q4_K_q8_K<Sdot>(n, w, x);
}
float vec_dot_q6_K_q8_K(int64_t n, const void* w, const void* x) {
  return neon_impl::vec_dot_q6_K_q8_K<Sdot>(n, w, x);
}

}  // namespace mce::neon_dotprod
