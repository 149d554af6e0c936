// Small AVX2 building blocks shared by this folder's kernels. `static inline`
// keeps every copy local to its AVX2 translation unit.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace mce::avx2 {

static inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

static inline float hmax_ps(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

static inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of packed nibbles -> 32 bytes: the low nibbles of bytes 0..15 form
// bytes 0..15, the high nibbles bytes 16..31 (the Q4_0/Q4_1/Q4_K element order).
static inline __m256i unpack_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Sum of pairwise products of unsigned bytes u and signed bytes s, as 8 int32.
// No saturation when |u*s| pairs stay below 2^15 (true for 4/6-bit x int8).
static inline __m256i dot_u8_i8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// C roundf (half away from zero) per lane for |v| < 2^23; mirrors
// round_half_away in quant/quantize_act.h step by step, so the result is the
// same integer.
static inline __m256i round_half_away_epi32(__m256 v) {
  const __m256 a = abs_ps(v);
  __m256i t = _mm256_cvttps_epi32(a);
  const __m256 frac = _mm256_sub_ps(a, _mm256_cvtepi32_ps(t));
  const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ));
  t = _mm256_sub_epi32(t, up);                                   // up is -1 where frac >= 0.5
  const __m256i neg = _mm256_srai_epi32(_mm256_castps_si256(v), 31);  // -1 where v is negative
  return _mm256_sub_epi32(_mm256_xor_si256(t, neg), neg);
}

// 32 int32 (four vectors, in element order) -> 32 int8, in element order.
static inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i bytes = _mm256_packs_epi16(ab, cd);
  // packs work per 128-bit lane; restore element order of the 4-byte groups.
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace mce::avx2
