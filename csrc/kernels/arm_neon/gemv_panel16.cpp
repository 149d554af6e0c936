// Decode GEMV over 16-bit k-major panels (GemvPanel16Fn in kernels/dispatch.h).
// A panel column is 16 values = four 4-lane vectors after widening (FCVTL for
// binary16, exact; a shift for bfloat16); the four k-mod-4 chains of the
// contract make 16 accumulators, half of the register file. Each chain is
// one vfmaq per column in order, as the scalar reference's std::fma.
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/neon_util.h"
#include "kernels/dispatch.h"

namespace mce::neon {
namespace {

struct WidenF16 {
  static inline float32x4_t load(const uint16_t* p) { return neon_util::load_f16x4(p); }
};
struct WidenBF16 {
  static inline float32x4_t load(const uint16_t* p) { return neon_util::load_bf16x4(p); }
};

template <typename Widen>
inline void column(const uint16_t* p, float xv, float32x4_t* acc) {
  acc[0] = vfmaq_n_f32(acc[0], Widen::load(p), xv);
  acc[1] = vfmaq_n_f32(acc[1], Widen::load(p + 4), xv);
  acc[2] = vfmaq_n_f32(acc[2], Widen::load(p + 8), xv);
  acc[3] = vfmaq_n_f32(acc[3], Widen::load(p + 12), xv);
}

template <typename Widen>
void gemv_panel16(int64_t K, const uint16_t* panel, const float* x, float* y) {
  float32x4_t acc[4][4];
  for (int j = 0; j < 4; ++j)
    for (int v = 0; v < 4; ++v) acc[j][v] = vdupq_n_f32(0.0f);
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const uint16_t* p = panel + k * kPanel16Rows;
    __builtin_prefetch(reinterpret_cast<const char*>(p) + 1024);
    __builtin_prefetch(reinterpret_cast<const char*>(p) + 1024 + 64);
    for (int j = 0; j < 4; ++j) column<Widen>(p + j * kPanel16Rows, x[k + j], acc[j]);
  }
  for (int j = 0; k < K; ++k, ++j) column<Widen>(panel + k * kPanel16Rows, x[k], acc[j]);
  for (int v = 0; v < 4; ++v)
    vst1q_f32(y + 4 * v, vaddq_f32(vaddq_f32(acc[0][v], acc[1][v]), vaddq_f32(acc[2][v], acc[3][v])));
}

}  // namespace

void gemv_f16_panel(int64_t K, const uint16_t* panel, const float* x, float* y) {
  gemv_panel16<WidenF16>(K, panel, x, y);
}

void gemv_bf16_panel(int64_t K, const uint16_t* panel, const float* x, float* y) {
  gemv_panel16<WidenBF16>(K, panel, x, y);
}

}  // namespace mce::neon
