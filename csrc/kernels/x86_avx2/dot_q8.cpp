// Q8_0 x Q8_0. maddubs needs one unsigned operand, so the sign of the weight
// is moved onto the activation (|w| * sign(w)*x = w*x). |w| = 128 is fine as
// an unsigned byte; the activation never holds -128 (its quantizer clamps to
// +-127), so negating it cannot overflow.
#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/x86_avx2/avx2_util.h"
#include "quant/blocks.h"

namespace mce::avx2 {
namespace {

inline __m256 q8_0_block(const Q8_0Block& w, const Q8_0Block& x, __m256 acc) {
  const __m256 d = _mm256_set1_ps(fp16_scalar(w.d) * fp16_scalar(x.d));
  const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qs));
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i s = dot_u8_i8(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc);
}

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q8_0Block* w = static_cast<const Q8_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  const int64_t nb = n / kQK8_0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = q8_0_block(w[i], x[i], acc0);
    acc1 = q8_0_block(w[i + 1], x[i + 1], acc1);
  }
  if (i < nb) acc0 = q8_0_block(w[i], x[i], acc0);
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

}  // namespace mce::avx2
