// The AVX2 level's packed-weight GEMMs (see x86_avx2/gemm_x8_256.h).
#include "kernels/x86_avx2/gemm_x8_256.h"
#include "kernels/x86_avx2/avx2_kernels.h"

namespace mce::avx2 {

void gemm_q4_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  x86_256::gemm_q4x8<false>(nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

void gemm_q4_1x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  x86_256::gemm_q4x8<true>(nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

void gemm_q8_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t*,
                 int64_t, int64_t n_tok, float* y, int64_t y_stride) {
  x86_256::gemm_q8x8(nb, group, act, act_stride, n_tok, y, y_stride);
}

}  // namespace mce::avx2
