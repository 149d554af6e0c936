// What the AVX2 and AVX-512 "tl3" kernels (kernels/ternary_lut_layout.h)
// share: the table build (TernaryLutBuildFn), in AVX2 for both levels, which
// differ only in where a pair of groups' tables go (Placement::lo / hi: byte
// offsets of pair P's 32 low and 32 high bytes), and the store of a block's
// sums.
//
// A group's 16 int16 entries are one vector: sum_j sign(a_j, digit_j) over
// three broadcasts, with sign_epi16 against the constant digit columns of
// kTl3Digits (digits are -1, 0, 1). Two groups' entries then split into low
// bytes (and 0xFF, packus) and high bytes (srai 8, packs: entries are within
// +-384, so their high bytes are -2..1), the lanes put back in group order.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/ternary_lut_layout.h"

namespace mce::x86 {

inline __m256i tl3_group_entries(const int8_t* x, __m256i d0, __m256i d1, __m256i d2) {
  const __m256i s0 = _mm256_sign_epi16(_mm256_set1_epi16(x[0]), d0);
  const __m256i s1 = _mm256_sign_epi16(_mm256_set1_epi16(x[1]), d1);
  const __m256i s2 = _mm256_sign_epi16(_mm256_set1_epi16(x[2]), d2);
  return _mm256_add_epi16(_mm256_add_epi16(s0, s1), s2);
}

template <class Placement>
inline void tl3_build(const int8_t* a, int64_t K, uint8_t* tables) {
  const __m256i d0 = _mm256_setr_epi16(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
  const __m256i d1 = _mm256_setr_epi16(0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0);
  const __m256i d2 = _mm256_setr_epi16(0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0);
  const __m256i low = _mm256_set1_epi16(0xFF);
  const int64_t pairs = tl3_octets(K) * 8;
  for (int64_t p = 0; p < pairs; ++p) {
    int8_t tail[6];
    const int8_t* x = a + 6 * p;
    if (6 * p + 6 > K) {  // inputs beyond K count as 0
      for (int i = 0; i < 6; ++i) tail[i] = 6 * p + i < K ? a[6 * p + i] : 0;
      x = tail;
    }
    const __m256i e0 = tl3_group_entries(x, d0, d1, d2), e1 = tl3_group_entries(x + 3, d0, d1, d2);
    const __m256i lo = _mm256_packus_epi16(_mm256_and_si256(e0, low), _mm256_and_si256(e1, low));
    const __m256i hi = _mm256_packs_epi16(_mm256_srai_epi16(e0, 8), _mm256_srai_epi16(e1, 8));
    // packs interleave the groups per 128-bit lane: qwords (0, 2, 1, 3) restore them.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tables + Placement::lo(p)), _mm256_permute4x64_epi64(lo, 0xD8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tables + Placement::hi(p)), _mm256_permute4x64_epi64(hi, 0xD8));
  }
}

// Rows 8q .. 8q + 7 of a block from the int32 sums of its even rows (8q + 0,
// 2, 4, 6) and odd rows, plus the rows' bias: out[0..7].
inline void tl3_store_rows8(__m128i even, __m128i odd, const int32_t* bias, int32_t* out) {
  const __m128i* b = reinterpret_cast<const __m128i*>(bias);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_add_epi32(_mm_unpacklo_epi32(even, odd), _mm_loadu_si128(b)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4),
                   _mm_add_epi32(_mm_unpackhi_epi32(even, odd), _mm_loadu_si128(b + 1)));
}

}  // namespace mce::x86
