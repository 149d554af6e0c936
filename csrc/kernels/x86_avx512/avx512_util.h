// Small AVX-512 building blocks shared by this folder's kernels. `static
// inline` keeps every copy local to its AVX-512 translation unit.
#pragma once
// GCC 12's AVX-512 headers build vectors from deliberately uninitialised
// `_mm512_undefined_*` values, which -Wall reports as false positives.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

namespace mce::avx512 {

static inline float hsum_ps(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float hsum_ps(__m256 h) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m512i v) {
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

static inline float hmax_ps(__m512 v) {
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

static inline __m512 abs_ps(__m512 v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

static inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

// Two f32 scales as one vector: lanes 0..7 = a, lanes 8..15 = b (one per
// 32-quant block when a register holds two blocks).
static inline __m512 two_scales(float a, float b) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

// 16 bytes of packed nibbles -> 32 bytes in Q4 element order (low nibbles
// first), for blocks a and b side by side in one register.
static inline __m512i unpack_nibbles_2(const uint8_t* a, const uint8_t* b) {
  const __m256i ab = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  // [a, b, a>>4, b>>4] -> [a, a>>4, b, b>>4]
  const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1);
  return _mm512_and_si512(_mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0F));
}

static inline __m256i unpack_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

static inline __m512i load2x256(const void* a, const void* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
}

// C roundf (half away from zero) per lane for |v| < 2^23; mirrors
// round_half_away in quant/quantize_act.h so the result is the same integer.
static inline __m512i round_half_away_epi32(__m512 v) {
  const __m512 a = abs_ps(v);
  __m512i t = _mm512_cvttps_epi32(a);
  const __m512 frac = _mm512_sub_ps(a, _mm512_cvtepi32_ps(t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  t = _mm512_mask_add_epi32(t, up, t, _mm512_set1_epi32(1));
  const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(v));  // sign bits
  return _mm512_mask_sub_epi32(t, neg, _mm512_setzero_si512(), t);
}

}  // namespace mce::avx512
