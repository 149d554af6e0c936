// Q4_0 x Q8_0 and Q4_1 x Q8_1. Nibbles are expanded to unsigned bytes so one
// maddubs (u8 x s8 -> s16 pairs) does the multiplications; Q4_0's offset of 8
// is removed by subtracting 8 * (pair sums of the activation), which keeps the
// integer result exact. Each block's int32 lanes are converted once and
// scaled by d_w*d_x with an FMA; two accumulators interleave two blocks.
#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/x86_avx2/avx2_util.h"
#include "quant/blocks.h"

namespace mce::avx2 {
namespace {

inline __m256 q4_0_block(const Q4_0Block& w, const Q8_0Block& x, __m256 acc) {
  const __m256 d = _mm256_set1_ps(fp16_scalar(w.d) * fp16_scalar(x.d));
  const __m256i qw = unpack_nibbles(w.qs);
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  // (q - 8) * x summed in pairs: |.| <= 2 * 8 * 127, no saturation.
  const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(qw, qx),
                                     _mm256_maddubs_epi16(_mm256_set1_epi8(8), qx));
  const __m256i s = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc);
}

// Q4_1 stores (d, m) and Q8_1 (d, s) as adjacent binary16 pairs: one
// conversion and one multiply give both d_w*d_x and m_w*s_x. The second lane
// (the min term) is summed in `mins`.
inline __m256 q4_1_block(const Q4_1Block& w, const Q8_1Block& x, __m256 acc, __m128* mins) {
  uint32_t wdm, xds;
  __builtin_memcpy(&wdm, &w.d, 4);
  __builtin_memcpy(&xds, &x.d, 4);
  const __m128 prod = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(wdm))),
                                 _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(xds))));
  *mins = _mm_add_ps(*mins, prod);
  const __m256i qw = unpack_nibbles(w.qs);
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8_i8(qw, qx)), _mm256_broadcastss_ps(prod), acc);
}

}  // namespace

float vec_dot_q4_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q4_0Block* w = static_cast<const Q4_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  const int64_t nb = n / kQK4_0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = q4_0_block(w[i], x[i], acc0);
    acc1 = q4_0_block(w[i + 1], x[i + 1], acc1);
  }
  if (i < nb) acc0 = q4_0_block(w[i], x[i], acc0);
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

// The weight minimum m contributes m * d_x * sum(q_x) = m * s per block.
float vec_dot_q4_1_q8_1(int64_t n, const void* vw, const void* vx) {
  const Q4_1Block* w = static_cast<const Q4_1Block*>(vw);
  const Q8_1Block* x = static_cast<const Q8_1Block*>(vx);
  const int64_t nb = n / kQK4_0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 mins0 = _mm_setzero_ps(), mins1 = _mm_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = q4_1_block(w[i], x[i], acc0, &mins0);
    acc1 = q4_1_block(w[i + 1], x[i + 1], acc1, &mins1);
  }
  if (i < nb) acc0 = q4_1_block(w[i], x[i], acc0, &mins0);
  const __m128 mins = _mm_add_ps(mins0, mins1);
  return hsum_ps(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_movehdup_ps(mins));
}

}  // namespace mce::avx2
