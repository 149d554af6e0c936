// Vector exp and eight-lane sums for the AVX-512 ops and attention kernels.
// exp_ps is ref::exp_poly (kernels/ops.h) and the AVX2 exp_ps
// (x86_avx2/vec_math_avx2.h) step for step on 16 lanes, so every level gives
// the same bits and shares its measured error (max relative 8.4e-8).
#pragma once
#include "kernels/x86_avx512/avx512_util.h"

namespace mce::avx512 {

static inline __m512 exp_ps(__m512 x) {
  const __m512 max_x = _mm512_set1_ps(88.72283935546875f);
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), max_x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  y = _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
  y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, max_x, _CMP_GT_OQ), _mm512_set1_ps(__builtin_inff()));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// The sums of the ops and attention kernels run in eight f32 lanes (lane k
// for element i % 8 == k), the reference's order: a 16-wide vector of terms
// is two 8-wide steps, low half first.
static inline __m256 add_halves_ps(__m256 acc, __m512 v) {
  acc = _mm256_add_ps(acc, _mm512_castps512_ps256(v));
  return _mm256_add_ps(acc, _mm512_extractf32x8_ps(v, 1));
}

// Sum of the eight lanes s0..s7 in the reference's tree,
// ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)).
static inline float sum_lanes_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace mce::avx512
