// The AVX-512 level's table-lookup GEMV for low-bit weights (see x86_avx2/lut_256.h).
#include "kernels/x86_avx2/lut_256.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce::avx512 {

void lut_build(const float* x, int64_t K, int group, int8_t* tables, float* half_sigma, float* xsum) {
  x86_256::lut_build(x, K, group, tables, half_sigma, xsum);
}

void lut_gemv(const LowBitFormat& f, int64_t K, const uint8_t* tile, const int8_t* tables, const float* half_sigma,
              const float* xsum, float* y) {
  x86_256::lut_gemv(f, K, tile, tables, half_sigma, xsum, y);
}

}  // namespace mce::avx512
