// Int8 minifloat dots (Mf8DotsFn in kernels/dispatch.h) with AVX-512 VNNI:
// as the AVX2 level, but one vpdpbusd (|w| unsigned times sign(x, w)) per
// block replaces maddubs + madd; lanes 0-3 hold the first 16 inputs, 4-7 the
// second. The float part is the shared driver's.
#include <immintrin.h>

#include "kernels/mf8_driver.h"
#include "kernels/ref/ref_kernels.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce::avx512 {

namespace {
inline __m256i block_dot(const uint8_t* w, const uint8_t* x) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * sizeof(float)));
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + sizeof(uint16_t)));
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
}

struct Avx512 {
  static void block_sums(const uint8_t* w, const uint8_t* x, int n, int32_t* sums) {
    if (n < kMf8SumBlocks) {
      ref::mf8_block_sums(w, x, n, sums);
      return;
    }
    const __m256i b0 = block_dot(w, x), b1 = block_dot(w + kMf8BlockBytes, x + sizeof(Q8_0Block));
    const __m256i b2 = block_dot(w + 2 * kMf8BlockBytes, x + 2 * sizeof(Q8_0Block));
    const __m256i b3 = block_dot(w + 3 * kMf8BlockBytes, x + 3 * sizeof(Q8_0Block));
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(b0, b1), _mm256_hadd_epi32(b2, b3));
    const __m256i v = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), v);
  }
};
}  // namespace

void mf8_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act, size_t act_stride,
              int n_tok, float* out, int64_t out_stride) {
  mf8_dots_impl<Avx512>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::avx512
