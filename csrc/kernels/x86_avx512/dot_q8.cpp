// Q8_0 x Q8_0 with VNNI. vpdpbusd needs one unsigned operand, so the sign of
// the weight moves onto the activation (|w| * sign(w)*x = w*x); |w| = 128 is
// fine as an unsigned byte and the activation never holds -128 (its quantizer
// clamps to +-127), so negating it cannot overflow.
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512/avx512_util.h"
#include "quant/blocks.h"

namespace mce::avx512 {
namespace {

inline __m512 q8_0_pair(const Q8_0Block* w, const Q8_0Block* x, __m512 acc) {
  const __m512i qw = load2x256(w[0].qs, w[1].qs);
  const __m512i qx = load2x256(x[0].qs, x[1].qs);
  const __m512i sx = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), _mm512_setzero_si512(), qx);
  const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(qw), sx);
  const __m512 d = two_scales(fp16_scalar(w[0].d) * fp16_scalar(x[0].d), fp16_scalar(w[1].d) * fp16_scalar(x[1].d));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
}

inline float q8_0_single(const Q8_0Block& w, const Q8_0Block& x) {
  const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qs));
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
  return hsum_ps(_mm256_cvtepi32_ps(s)) * (fp16_scalar(w.d) * fp16_scalar(x.d));
}

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q8_0Block* w = static_cast<const Q8_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  const int64_t nb = n / kQK8_0;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    acc0 = q8_0_pair(w + i, x + i, acc0);
    acc1 = q8_0_pair(w + i + 2, x + i + 2, acc1);
  }
  for (; i + 2 <= nb; i += 2) acc0 = q8_0_pair(w + i, x + i, acc0);
  float sum = hsum_ps(_mm512_add_ps(acc0, acc1));
  if (i < nb) sum += q8_0_single(w[i], x[i]);
  return sum;
}

}  // namespace mce::avx512
