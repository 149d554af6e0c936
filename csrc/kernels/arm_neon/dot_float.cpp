// Float dot products and axpy with 4-wide FMA. Four independent accumulators
// (16 elements per step) hide the FMA latency; ragged tails finish in scalar
// code. binary16 weights convert with FCVTL (exact), bfloat16 by a shift.
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/neon_util.h"
#include "quant/fp16.h"

namespace mce::neon {
namespace {

template <typename LoadVec, typename LoadOne>
float dot_with(int64_t n, const float* b, LoadVec load_vec, LoadOne load_one) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  float32x4_t acc2 = vdupq_n_f32(0.0f), acc3 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = vfmaq_f32(acc0, load_vec(i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, load_vec(i + 4), vld1q_f32(b + i + 4));
    acc2 = vfmaq_f32(acc2, load_vec(i + 8), vld1q_f32(b + i + 8));
    acc3 = vfmaq_f32(acc3, load_vec(i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, load_vec(i), vld1q_f32(b + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < n; ++i) sum += load_one(i) * b[i];
  return sum;
}

}  // namespace

float dot_f32(int64_t n, const float* a, const float* b) {
  return dot_with(
      n, b, [a](int64_t i) { return vld1q_f32(a + i); }, [a](int64_t i) { return a[i]; });
}

void axpy_f32(int64_t n, float a, const float* x, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vld1q_f32(x + i + 4), a));
  }
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
  for (; i < n; ++i) y[i] += a * x[i];
}

float vec_dot_f32(int64_t n, const void* w, const void* x) {
  return dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(x));
}

float vec_dot_f16_f32(int64_t n, const void* w, const void* x) {
  const uint16_t* h = static_cast<const uint16_t*>(w);
  return dot_with(
      n, static_cast<const float*>(x), [h](int64_t i) { return neon_util::load_f16x4(h + i); },
      [h](int64_t i) { return neon_util::half_to_float(h[i]); });
}

float vec_dot_bf16_f32(int64_t n, const void* w, const void* x) {
  const uint16_t* h = static_cast<const uint16_t*>(w);
  return dot_with(
      n, static_cast<const float*>(x), [h](int64_t i) { return neon_util::load_bf16x4(h + i); },
      [h](int64_t i) { return bf16_to_f32(h[i]); });
}

}  // namespace mce::neon
