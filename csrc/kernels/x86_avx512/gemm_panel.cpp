// The AVX-512 level's f32 panel GEMM (see x86_avx2/gemm_panel_256.h).
#include "kernels/x86_avx2/gemm_panel_256.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce::avx512 {

void gemm_f32_panel(int64_t K, const float* panel, const float* x, int64_t ldx, int64_t n_tok, float* y,
                    int64_t ldy, int n_rows, bool accumulate) {
  x86_256::gemm_panel(K, panel, x, ldx, n_tok, y, ldy, n_rows, accumulate);
}

}  // namespace mce::avx512
