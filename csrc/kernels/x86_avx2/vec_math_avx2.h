// Vector exp and the eight-lane sum for the AVX2 ops and attention kernels,
// each the scalar reference's evaluation order (kernels/ops.h), lane by lane.
// `static inline` keeps each copy local to its AVX2 translation unit.
#pragma once
#include <immintrin.h>

namespace mce::avx2 {

// e^x for 8 lanes: ref::exp_poly (kernels/ops.h) step for step, the same
// fmas and roundings, so every lane gives the reference's bits. Method of
// Cephes' expf (Moshier): x = n ln2 + r with n = round(x / ln2),
// |r| <= ln2/2, ln2 split in two (Cody-Waite) so r is exact to ~2^-32;
// e^r = 1 + r + r^2 P(r) with Cephes' degree-5 minimax P. 2^n is applied as
// two halves, so n from -150 (subnormal results) to 128 stays representable.
// Max relative error 8.4e-8 (about 1 ulp), measured on every 7th float with a
// normal result (tests/native/test_ops.cpp checks < 2^-22 = 2.4e-7 on a
// sweep); subnormal results within 1 subnormal ulp; exp(x > 88.7228) = inf,
// exp(x < -103.98) = 0, exp(-inf) = 0, NaN -> NaN.
static inline __m256 exp_ps(__m256 x) {
  const __m256 max_x = _mm256_set1_ps(88.72283935546875f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), max_x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, max_x, _CMP_GT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// Sum of the eight lanes s0..s7 in the reference's tree,
// ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)).
static inline float sum_lanes_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace mce::avx2
