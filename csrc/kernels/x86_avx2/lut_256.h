// Table-lookup GEMV for low-bit weights (LutBuildFn / LutGemvFn in
// kernels/dispatch.h) with 256-bit AVX2, shared by the AVX2 and AVX-512
// levels. Layout and method: kernels/lut_layout.h (T-MAC, arXiv 2407.00088).
//
// Lookup: vpshufb looks each 128-bit lane's 16 indices up in that lane's own
// 16-byte table, so with the tables of chunks (c, c+1) in the two lanes one
// instruction does 32 lookups. maddubs then weighs a row's two lookups (two
// planes, or one plane of two chunks) by their 2^i into one int16 per row.
// int16 is exact per group: a lane adds at most 16 chunks (G = 128) x
// (2^4 - 1) x 127 = 30480 < 2^15.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/lut_layout.h"

namespace mce::x86_256 {

// Tables of one token (contract in dispatch.h). Entries of a chunk:
// t = 0..7 in one vector, 8..15 in the other; a lane's sign pattern flips
// x_r where bit r of t is clear. (x0 +- x1) and +-x2 are shared by both
// halves, which is T-MAC's mirror consolidation done in registers.
static inline void lut_build(const float* x, int64_t K, int group, int8_t* tables, float* half_sigma, float* xsum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 flip0 = _mm256_castsi256_ps(_mm256_setr_epi32(INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0));
  const __m256 flip1 = _mm256_castsi256_ps(_mm256_setr_epi32(INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN, 0, 0));
  const __m256 flip2 = _mm256_castsi256_ps(_mm256_setr_epi32(INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, 0, 0, 0, 0));
  const __m256 lo_clamp = _mm256_set1_ps(-127.0f), hi_clamp = _mm256_set1_ps(127.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5);
  const int64_t cpg = group / kLutChunk;
  for (int64_t g = 0; g < K / group; ++g) {
    const float* xg = x + g * group;
    // a = max over chunks of (|x0| + |x1|) + (|x2| + |x3|): two horizontal
    // adds of |x| give exactly that order, 8 chunks per vector.
    __m256 amax = _mm256_setzero_ps();
    for (int64_t j = 0; j < cpg; j += 8) {
      const __m256 a0 = _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 4 * j));
      const __m256 a1 = _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 4 * j + 8));
      const __m256 a2 = _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 4 * j + 16));
      const __m256 a3 = _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + 4 * j + 24));
      // max_ps returns its second operand when either is NaN: a NaN sum is
      // skipped, as the reference's std::max skips it.
      amax = _mm256_max_ps(_mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3)), amax);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float a = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    half_sigma[g] = (a / 127.0f) * 0.5f;
    const __m256 inv = _mm256_set1_ps(a > 0.0f ? 127.0f / a : 0.0f);
    float sum = 0.0f;
    for (int64_t j = 0; j < cpg; ++j) {
      const float* c = xg + kLutChunk * j;
      const __m256 v0 = _mm256_xor_ps(_mm256_broadcast_ss(c), flip0);
      const __m256 v1 = _mm256_xor_ps(_mm256_broadcast_ss(c + 1), flip1);
      const __m256 v2 = _mm256_xor_ps(_mm256_broadcast_ss(c + 2), flip2);
      const __m256 x3 = _mm256_broadcast_ss(c + 3);
      const __m256 p01 = _mm256_add_ps(v0, v1);
      const __m256 t_lo = _mm256_add_ps(p01, _mm256_sub_ps(v2, x3));  // v2 + (-x3), exactly
      const __m256 t_hi = _mm256_add_ps(p01, _mm256_add_ps(v2, x3));
      // Clamp before rounding; max(v, -127) returns -127 for NaN (its second
      // operand), as the reference does.
      const __m256i q_lo = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(t_lo, inv), lo_clamp), hi_clamp));
      const __m256i q_hi = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(t_hi, inv), lo_clamp), hi_clamp));
      const __m256i w16 = _mm256_packs_epi32(q_lo, q_hi);   // lane: lo0-3 hi0-3 | lo4-7 hi4-7
      const __m256i w8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w16, w16), order);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tables + 16 * (g * cpg + j)), _mm256_castsi256_si128(w8));
      sum += (c[0] + c[1]) + (c[2] + c[3]);
    }
    xsum[g] = sum;
  }
}

// A pair vector (planes a, a+1) against the tables of its chunk pair: the
// low-nibble lookups are rows 0-7 with their two planes side by side, the
// high-nibble ones rows 8-15; coef = (2^a, 2^(a+1)) per byte pair.
static inline void lut_pair(const uint8_t* p, __m256i tab, __m256i coef, __m256i& a0, __m256i& a1) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(coef, _mm256_shuffle_epi8(tab, _mm256_and_si256(w, low4))));
  a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(
                                coef, _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(w, 4), low4))));
}

// A single vector (plane a, chunks c..c+3): low nibbles looked up in the
// tables of (c, c+1), high ones in (c+2, c+3), interleaved so that a row's
// two lookups meet in one multiply-add with coef = (2^a, 2^a).
static inline void lut_single(const uint8_t* p, __m256i ta, __m256i tb, __m256i coef, __m256i& a0, __m256i& a1) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i rl = _mm256_shuffle_epi8(ta, _mm256_and_si256(w, low4));
  const __m256i rh = _mm256_shuffle_epi8(tb, _mm256_and_si256(_mm256_srli_epi16(w, 4), low4));
  a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(coef, _mm256_unpacklo_epi8(rl, rh)));
  a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(coef, _mm256_unpackhi_epi8(rl, rh)));
}

// Sum of the two lanes' int16 (chunk phases) of 8 rows, as int32 -> f32.
static inline __m256 lanes_to_f32(__m256i a) {
  const __m256i s = _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a)),
                                     _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)));
  return _mm256_cvtepi32_ps(s);
}

// Weights stream once per token from DRAM: one prefetch per cache line of a
// group, 1 KiB ahead (as gemm_x8_256.h).
constexpr int64_t kLutPrefetchAhead = 1024;

// One tile; kSteps = G/16 steps per group, so the step loop has a constant
// trip count and unrolls.
template <int B, bool kMin, int kSteps>
static inline void lut_gemv_tile(int64_t K, const uint8_t* tile, const int8_t* tables, const float* hs,
                                 const float* xs, float* y) {
  constexpr int64_t kGroup = int64_t(kSteps) * kLutStep;
  constexpr int64_t kGroupBytes = (kMin ? 64 : 32) + int64_t(kSteps) * 32 * B;
  const __m256i c01 = _mm256_set1_epi16(0x0201), c23 = _mm256_set1_epi16(0x0804);
  const __m256i c0 = _mm256_set1_epi16(0x0101), c2 = _mm256_set1_epi16(0x0404);
  const __m256 center = _mm256_set1_ps(float((1 << B) - 1) * 0.5f);
  __m256 y0 = _mm256_setzero_ps(), y1 = _mm256_setzero_ps();
  const uint8_t* p = tile;
  const int8_t* t = tables;
  const int64_t groups = K / kGroup;
  for (int64_t g = 0; g < groups; ++g, p += kGroupBytes) {
    for (int64_t off = 0; off < kGroupBytes; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(p) + kLutPrefetchAhead + off, _MM_HINT_T0);
    const __m128i* dh = reinterpret_cast<const __m128i*>(p);
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    const uint8_t* v = p + (kMin ? 64 : 32);
    for (int s = 0; s < kSteps; ++s, t += 64, v += 32 * B) {
      const __m256i t01 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t));
      const __m256i t23 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 32));
      if (B == 1) lut_single(v, t01, t23, c0, a0, a1);
      if (B == 2 || B == 3) {
        lut_pair(v, t01, c01, a0, a1);
        lut_pair(v + 32, t23, c01, a0, a1);
      }
      if (B == 3) lut_single(v + 64, t01, t23, c2, a0, a1);
      if (B == 4) {
        lut_pair(v, t01, c01, a0, a1);
        lut_pair(v + 32, t01, c23, a0, a1);
        lut_pair(v + 64, t23, c01, a0, a1);
        lut_pair(v + 96, t23, c23, a0, a1);
      }
    }
    const __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128(dh)), d1 = _mm256_cvtph_ps(_mm_loadu_si128(dh + 1));
    const __m256 h = _mm256_set1_ps(hs[g]);
    y0 = _mm256_fmadd_ps(lanes_to_f32(a0), _mm256_mul_ps(d0, h), y0);
    y1 = _mm256_fmadd_ps(lanes_to_f32(a1), _mm256_mul_ps(d1, h), y1);
    if (kMin) {
      const __m256 m0 = _mm256_cvtph_ps(_mm_loadu_si128(dh + 2)), m1 = _mm256_cvtph_ps(_mm_loadu_si128(dh + 3));
      const __m256 xg = _mm256_set1_ps(xs[g]);
      y0 = _mm256_fmadd_ps(_mm256_fmadd_ps(d0, center, m0), xg, y0);
      y1 = _mm256_fmadd_ps(_mm256_fmadd_ps(d1, center, m1), xg, y1);
    }
  }
  _mm256_storeu_ps(y, y0);
  _mm256_storeu_ps(y + 8, y1);
}

template <int B, bool kMin>
static inline void lut_gemv_bits(int64_t K, int group, const uint8_t* tile, const int8_t* tables, const float* hs,
                                 const float* xs, float* y) {
  switch (group) {
    case 32: lut_gemv_tile<B, kMin, 2>(K, tile, tables, hs, xs, y); break;
    case 64: lut_gemv_tile<B, kMin, 4>(K, tile, tables, hs, xs, y); break;
    case 128: lut_gemv_tile<B, kMin, 8>(K, tile, tables, hs, xs, y); break;
    default: break;
  }
}

static inline void lut_gemv(const LowBitFormat& f, int64_t K, const uint8_t* tile, const int8_t* tables,
                            const float* hs, const float* xs, float* y) {
  switch (f.bits * 2 + (f.has_min ? 1 : 0)) {
    case 2: lut_gemv_bits<1, false>(K, f.group, tile, tables, hs, xs, y); break;
    case 3: lut_gemv_bits<1, true>(K, f.group, tile, tables, hs, xs, y); break;
    case 4: lut_gemv_bits<2, false>(K, f.group, tile, tables, hs, xs, y); break;
    case 5: lut_gemv_bits<2, true>(K, f.group, tile, tables, hs, xs, y); break;
    case 6: lut_gemv_bits<3, false>(K, f.group, tile, tables, hs, xs, y); break;
    case 7: lut_gemv_bits<3, true>(K, f.group, tile, tables, hs, xs, y); break;
    case 8: lut_gemv_bits<4, false>(K, f.group, tile, tables, hs, xs, y); break;
    case 9: lut_gemv_bits<4, true>(K, f.group, tile, tables, hs, xs, y); break;
    default: break;
  }
}

}  // namespace mce::x86_256
