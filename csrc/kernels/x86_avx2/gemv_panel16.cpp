// The AVX2 level's decode GEMV over 16-bit panels (see x86_avx2/gemv_panel16_256.h).
#include "kernels/x86_avx2/gemv_panel16_256.h"
#include "kernels/x86_avx2/avx2_kernels.h"

namespace mce::avx2 {

void gemv_f16_panel(int64_t K, const uint16_t* panel, const float* x, float* y) {
  x86_256::gemv_panel16<x86_256::WidenF16>(K, panel, x, y);
}

void gemv_bf16_panel(int64_t K, const uint16_t* panel, const float* x, float* y) {
  x86_256::gemv_panel16<x86_256::WidenBF16>(K, panel, x, y);
}

}  // namespace mce::avx2
