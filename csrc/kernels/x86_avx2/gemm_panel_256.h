// f32 panel GEMM with 256-bit FMA, shared by the AVX2 and AVX-512 levels.
// Register blocking after BLIS (Van Zee & van de Geijn, 2015): 16 panel rows
// (two vectors) x up to 6 tokens = 12 accumulators; per k, two panel loads and
// six broadcasts feed twelve FMAs, so the loop is bound by FMA throughput, not
// by loads. Each output is one fma per k in order (GemmPanelFn contract).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace mce::x86_256 {

template <int T>
static inline void gemm_panel_tile(int64_t K, const float* panel, const float* x, int64_t ldx, float* y,
                                   int64_t ldy, int n_rows, bool accumulate) {
  // Named accumulators rather than arrays: GCC keeps arrays of vectors in
  // memory here and stores all twelve every iteration.
  __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, l3 = l0, l4 = l0, l5 = l0;
  __m256 h0 = l0, h1 = l0, h2 = l0, h3 = l0, h4 = l0, h5 = l0;
  const float* x0 = x;
  const float* x1 = x + (T > 1 ? 1 : 0) * ldx;
  const float* x2 = x + (T > 2 ? 2 : 0) * ldx;
  const float* x3 = x + (T > 3 ? 3 : 0) * ldx;
  const float* x4 = x + (T > 4 ? 4 : 0) * ldx;
  const float* x5 = x + (T > 5 ? 5 : 0) * ldx;
  for (int64_t k = 0; k < K; ++k) {
    const __m256 p0 = _mm256_loadu_ps(panel + k * 16);
    const __m256 p1 = _mm256_loadu_ps(panel + k * 16 + 8);
    __m256 xb = _mm256_broadcast_ss(x0 + k);
    l0 = _mm256_fmadd_ps(p0, xb, l0);
    h0 = _mm256_fmadd_ps(p1, xb, h0);
    if (T > 1) { xb = _mm256_broadcast_ss(x1 + k); l1 = _mm256_fmadd_ps(p0, xb, l1); h1 = _mm256_fmadd_ps(p1, xb, h1); }
    if (T > 2) { xb = _mm256_broadcast_ss(x2 + k); l2 = _mm256_fmadd_ps(p0, xb, l2); h2 = _mm256_fmadd_ps(p1, xb, h2); }
    if (T > 3) { xb = _mm256_broadcast_ss(x3 + k); l3 = _mm256_fmadd_ps(p0, xb, l3); h3 = _mm256_fmadd_ps(p1, xb, h3); }
    if (T > 4) { xb = _mm256_broadcast_ss(x4 + k); l4 = _mm256_fmadd_ps(p0, xb, l4); h4 = _mm256_fmadd_ps(p1, xb, h4); }
    if (T > 5) { xb = _mm256_broadcast_ss(x5 + k); l5 = _mm256_fmadd_ps(p0, xb, l5); h5 = _mm256_fmadd_ps(p1, xb, h5); }
  }
  const __m256 lo[6] = {l0, l1, l2, l3, l4, l5}, hi[6] = {h0, h1, h2, h3, h4, h5};
  for (int j = 0; j < T; ++j) {
    float* yj = y + j * ldy;
    if (n_rows == 16 && !accumulate) {
      _mm256_storeu_ps(yj, lo[j]);
      _mm256_storeu_ps(yj + 8, hi[j]);
      continue;
    }
    alignas(32) float tmp[16];
    _mm256_store_ps(tmp, lo[j]);
    _mm256_store_ps(tmp + 8, hi[j]);
    for (int i = 0; i < n_rows; ++i) yj[i] = accumulate ? yj[i] + tmp[i] : tmp[i];
  }
}

static inline void gemm_panel(int64_t K, const float* panel, const float* x, int64_t ldx, int64_t n_tok, float* y,
                              int64_t ldy, int n_rows, bool accumulate) {
  int64_t t = 0;
  for (; t + 6 <= n_tok; t += 6) gemm_panel_tile<6>(K, panel, x + t * ldx, ldx, y + t * ldy, ldy, n_rows, accumulate);
  const float* xt = x + t * ldx;
  float* yt = y + t * ldy;
  switch (n_tok - t) {
    case 5: gemm_panel_tile<5>(K, panel, xt, ldx, yt, ldy, n_rows, accumulate); break;
    case 4: gemm_panel_tile<4>(K, panel, xt, ldx, yt, ldy, n_rows, accumulate); break;
    case 3: gemm_panel_tile<3>(K, panel, xt, ldx, yt, ldy, n_rows, accumulate); break;
    case 2: gemm_panel_tile<2>(K, panel, xt, ldx, yt, ldy, n_rows, accumulate); break;
    case 1: gemm_panel_tile<1>(K, panel, xt, ldx, yt, ldy, n_rows, accumulate); break;
    default: break;
  }
}

}  // namespace mce::x86_256
