// Decode GEMV over 16-bit k-major panels (GemvPanel16Fn in kernels/dispatch.h)
// with 256-bit FMA, shared by the AVX2 and AVX-512 levels.
//
// One panel column is 16 values = 32 bytes = two vectors after widening;
// four columns per step give the four k-mod-4 chains of the contract (8
// accumulators, enough independent FMAs to cover their latency). The panel is
// read once, front to back, so the loop asks for its cache lines 1 KiB ahead
// itself, as the packed integer GEMMs do (gemm_x8_256.h): measured on Zen 3
// from DRAM this took F16 decode from ~80% to ~88% of a plain read's rate.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/dispatch.h"

namespace mce::x86_256 {

struct WidenF16 {
  static inline __m256 load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

// bfloat16 is the top half of an f32.
struct WidenBF16 {
  static inline __m256 load(const uint16_t* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
};

constexpr int64_t kPanel16PrefetchAhead = 1024;

// panel must be 16-byte aligned (packed groups are).
template <typename Widen>
static inline void gemv_panel16(int64_t K, const uint16_t* panel, const float* x, float* y) {
  __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, l3 = l0;  // rows 0-7, chains 0-3
  __m256 h0 = l0, h1 = l0, h2 = l0, h3 = l0;                   // rows 8-15
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const uint16_t* p = panel + k * kPanel16Rows;
    const char* ahead = reinterpret_cast<const char*>(p) + kPanel16PrefetchAhead;
    _mm_prefetch(ahead, _MM_HINT_T0);
    _mm_prefetch(ahead + 64, _MM_HINT_T0);
    __m256 xb = _mm256_broadcast_ss(x + k);
    l0 = _mm256_fmadd_ps(Widen::load(p), xb, l0);
    h0 = _mm256_fmadd_ps(Widen::load(p + 8), xb, h0);
    xb = _mm256_broadcast_ss(x + k + 1);
    l1 = _mm256_fmadd_ps(Widen::load(p + 16), xb, l1);
    h1 = _mm256_fmadd_ps(Widen::load(p + 24), xb, h1);
    xb = _mm256_broadcast_ss(x + k + 2);
    l2 = _mm256_fmadd_ps(Widen::load(p + 32), xb, l2);
    h2 = _mm256_fmadd_ps(Widen::load(p + 40), xb, h2);
    xb = _mm256_broadcast_ss(x + k + 3);
    l3 = _mm256_fmadd_ps(Widen::load(p + 48), xb, l3);
    h3 = _mm256_fmadd_ps(Widen::load(p + 56), xb, h3);
  }
  // Ragged tail: the remaining columns continue chains 0, 1, 2 in turn.
  for (int j = 0; k < K; ++k, ++j) {
    const uint16_t* p = panel + k * kPanel16Rows;
    const __m256 xb = _mm256_broadcast_ss(x + k);
    const __m256 lo = Widen::load(p), hi = Widen::load(p + 8);
    if (j == 0) { l0 = _mm256_fmadd_ps(lo, xb, l0); h0 = _mm256_fmadd_ps(hi, xb, h0); }
    if (j == 1) { l1 = _mm256_fmadd_ps(lo, xb, l1); h1 = _mm256_fmadd_ps(hi, xb, h1); }
    if (j == 2) { l2 = _mm256_fmadd_ps(lo, xb, l2); h2 = _mm256_fmadd_ps(hi, xb, h2); }
  }
  _mm256_storeu_ps(y, _mm256_add_ps(_mm256_add_ps(l0, l1), _mm256_add_ps(l2, l3)));
  _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_add_ps(h0, h1), _mm256_add_ps(h2, h3)));
}

}  // namespace mce::x86_256
