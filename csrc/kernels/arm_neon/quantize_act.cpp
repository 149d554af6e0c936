// Activation quantizers. They must give the same bytes as the scalar
// reference (quant/quantize_act.cpp), so each element goes through the same
// f32 operations: x * id (or x * iscale) as a separate multiply (this file is
// built with -ffp-contract=off, see CMakeLists.txt), then the reference's
// rounding, which aarch64 has as single instructions:
//   Q8_0/Q8_1: C roundf = round half away from zero = FCVTAS (vcvtaq_s32_f32);
//   Q8_K: ggml's nearest_int = round half to even = FCVTNS (vcvtnq_s32_f32).
// Maxima are exact; scales go through the same scalar code as the reference.
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/neon_util.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::neon {
namespace {

// Quantizes one 32-element block: writes the quants, returns d = amax/127
// (unrounded f32) and the sum of the quants.
inline float quantize_block_q8(const float* x, int8_t* qs, int* sum) {
  float32x4_t v[8];
  float32x4_t m = vdupq_n_f32(0.0f);
  for (int k = 0; k < 8; ++k) {
    v[k] = vld1q_f32(x + 4 * k);
    m = vmaxq_f32(m, vabsq_f32(v[k]));
  }
  const float d = vmaxvq_f32(m) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int32x4_t q[8];
  for (int k = 0; k < 8; ++k) q[k] = vcvtaq_s32_f32(vmulq_n_f32(v[k], id));
  vst1q_s8(qs, neon_util::narrow_i32x16(q[0], q[1], q[2], q[3]));
  vst1q_s8(qs + 16, neon_util::narrow_i32x16(q[4], q[5], q[6], q[7]));
  if (sum) {
    const int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])),
                                  vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])));
    *sum = vaddvq_s32(s);
  }
  return d;
}

}  // namespace

void quantize_row_q8_0(const float* x, void* vy, int64_t n) {
  Q8_0Block* y = static_cast<Q8_0Block*>(vy);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    y[i].d = f32_to_fp16(quantize_block_q8(x + i * kQK8_0, y[i].qs, nullptr));
  }
}

void quantize_row_q8_1(const float* x, void* vy, int64_t n) {
  Q8_1Block* y = static_cast<Q8_1Block*>(vy);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int sum = 0;
    const float d = quantize_block_q8(x + i * kQK8_0, y[i].qs, &sum);
    y[i].d = f32_to_fp16(d);
    y[i].s = f32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_row_q8_K(const float* x, void* vy, int64_t n) {
  Q8_KBlock* y = static_cast<Q8_KBlock*>(vy);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < kQK_K; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    const float amax = vmaxvq_f32(m);
    if (amax == 0.0f) {
      __builtin_memset(&y[i], 0, sizeof(Q8_KBlock));
      continue;
    }
    // The reference keeps the sign of the first element reaching amax.
    int first = 0;
    for (int j = 0; j < kQK_K; j += 4) {
      const uint32x4_t eq = vceqq_f32(vabsq_f32(vld1q_f32(x + j)), vdupq_n_f32(amax));
      if (vmaxvq_u32(eq) != 0) {
        first = j;
        while (!(x[first] == amax || x[first] == -amax)) ++first;
        break;
      }
    }
    const float iscale = -127.0f / x[first];
    const int32x4_t max127 = vdupq_n_s32(127);
    for (int j = 0; j < kQK_K; j += 16) {
      int32x4_t q[4];
      for (int k = 0; k < 4; ++k) {
        q[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4 * k), iscale)), max127);
      }
      vst1q_s8(y[i].qs + j, neon_util::narrow_i32x16(q[0], q[1], q[2], q[3]));
      y[i].bsums[j / 16] = static_cast<int16_t>(vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]))));
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace mce::neon
