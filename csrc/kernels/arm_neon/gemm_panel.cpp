// f32 GEMM against a k-major panel of 16 weight rows (GemmPanelFn in
// kernels/dispatch.h). The 16 weights of one column are four vectors; each
// token's 16 outputs are four accumulators advanced by one FMA per k, in
// order, which is exactly the reference's std::fma sequence, so the bits
// match the scalar level. Four tokens share each loaded panel column
// (16 accumulators + 4 weight vectors of the 32 registers).
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/dispatch.h"

namespace mce::neon {
namespace {

template <int T>
void panel_tile(int64_t K, const float* panel, const float* x, int64_t ldx, float* y, int64_t ldy, int n_rows,
                bool accumulate) {
  float32x4_t acc[T][4];
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < 4; ++j) acc[t][j] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < K; ++k) {
    const float* p = panel + k * kPanelRows;
    const float32x4_t w0 = vld1q_f32(p), w1 = vld1q_f32(p + 4), w2 = vld1q_f32(p + 8), w3 = vld1q_f32(p + 12);
    for (int t = 0; t < T; ++t) {
      const float xv = x[t * ldx + k];
      acc[t][0] = vfmaq_n_f32(acc[t][0], w0, xv);
      acc[t][1] = vfmaq_n_f32(acc[t][1], w1, xv);
      acc[t][2] = vfmaq_n_f32(acc[t][2], w2, xv);
      acc[t][3] = vfmaq_n_f32(acc[t][3], w3, xv);
    }
  }
  for (int t = 0; t < T; ++t) {
    float* yt = y + t * ldy;
    if (n_rows == kPanelRows) {
      for (int j = 0; j < 4; ++j) {
        const float32x4_t v = accumulate ? vaddq_f32(vld1q_f32(yt + 4 * j), acc[t][j]) : acc[t][j];
        vst1q_f32(yt + 4 * j, v);
      }
    } else {
      float tmp[kPanelRows];
      for (int j = 0; j < 4; ++j) vst1q_f32(tmp + 4 * j, acc[t][j]);
      for (int i = 0; i < n_rows; ++i) yt[i] = accumulate ? yt[i] + tmp[i] : tmp[i];
    }
  }
}

}  // namespace

void gemm_f32_panel(int64_t K, const float* panel, const float* x, int64_t ldx, int64_t n_tok, float* y,
                    int64_t ldy, int n_rows, bool accumulate) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4) panel_tile<4>(K, panel, x + t * ldx, ldx, y + t * ldy, ldy, n_rows, accumulate);
  switch (n_tok - t) {
    case 3: panel_tile<3>(K, panel, x + t * ldx, ldx, y + t * ldy, ldy, n_rows, accumulate); break;
    case 2: panel_tile<2>(K, panel, x + t * ldx, ldx, y + t * ldy, ldy, n_rows, accumulate); break;
    case 1: panel_tile<1>(K, panel, x + t * ldx, ldx, y + t * ldy, ldy, n_rows, accumulate); break;
    default: break;
  }
}

}  // namespace mce::neon
