// AVX-512 element-wise ops: the AVX2 versions on 16 lanes, ragged tails
// through masked loads and stores, bit-identical to the scalar reference in
// the evaluation order kernels/ops.h defines. Its sums run in eight lanes,
// so a 16-wide step adds its two halves one after the other, as two 8-wide
// steps.
#include "kernels/ops.h"
#include "kernels/x86_avx512/avx512_util.h"
#include "kernels/x86_avx512/vec_math_avx512.h"

namespace mce::avx512 {
namespace {

// Lanes [0, k) set, k <= 16.
inline __mmask16 lanes(int64_t k) { return static_cast<__mmask16>((1u << k) - 1u); }

// Sum of squares in double in the reference's eight lanes (one zmm, lane k
// for i % 8 == k): elements i..i+7, then i+8..i+15; missing tail elements
// load as zeros and add nothing. Float squares are exact in double, so the
// fused multiply-add rounds as the reference's add.
inline double sum_squares(const float* x, int64_t n) {
  __m512d a = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(lanes(n - i < 16 ? n - i : 16), x + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    a = _mm512_fmadd_pd(lo, lo, a);
    a = _mm512_fmadd_pd(hi, hi, a);
  }
  // ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)), the reference's tree.
  const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  const float inv = static_cast<float>(1.0 / __builtin_sqrt(sum_squares(x, n) / double(n) + double(eps)));
  const __m512 vi = _mm512_set1_ps(inv);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vi);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
  }
}

void add_scaled(float* y, const float* x, float scale, int64_t n) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void add_rmsnorm(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps) {
  add_scaled(x, delta, scale, n);
  rmsnorm(x, w, out, n, eps);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void scale(float* x, float s, int64_t n) {
  const __m512 v = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), v));
  }
}

void rope_interleaved(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                      const float* sin_t) {
  const int64_t half = n_rot / 2;
  // Lane 2i and 2i+1 take cos/sin[i]: (a, b) -> (a c - b s, b c + a s).
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; i += 8) {
      const int64_t k = half - i < 8 ? half - i : 8;
      const __mmask16 mp = lanes(k), mx = lanes(2 * k);
      const __m512 cc = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(mp, cos_t + i));
      const __m512 ss = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(mp, sin_t + i));
      const __m512 xv = _mm512_maskz_loadu_ps(mx, v + 2 * i);
      const __m512 sw = _mm512_permute_ps(xv, 0xB1);
      _mm512_mask_storeu_ps(v + 2 * i, mx, _mm512_fmaddsub_ps(xv, cc, _mm512_mul_ps(sw, ss)));
    }
  }
}

void softmax(float* x, int64_t n) {
  const __m512 neg_inf = _mm512_set1_ps(-__builtin_inff());
  __m512 mv = neg_inf;
  for (int64_t i = 0; i < n; i += 16)
    mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(neg_inf, lanes(n - i < 16 ? n - i : 16), x + i));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
  __m256 sum = _mm256_setzero_ps();  // the reference's eight lanes
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes(n - i < 16 ? n - i : 16);
    const __m512 e = _mm512_maskz_mov_ps(k, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m)));
    _mm512_mask_storeu_ps(x + i, k, e);
    sum = add_halves_ps(sum, e);
  }
  scale(x, 1.0f / sum_lanes_ps(sum), n);
}

void exp_row(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    _mm512_mask_storeu_ps(y + i, m, exp_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_mask_storeu_epi16(y + i, m, h);
  }
}

void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i < 16 ? n - i : 16);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

constexpr OpsTable kOps{rmsnorm, add_rmsnorm, silu_mul, add_scaled, scale, rope_interleaved,
                        softmax, exp_row,     f32_to_f16, f16_to_f32};

}  // namespace
}  // namespace mce::avx512

namespace mce {
const OpsTable* ops_avx512() { return &avx512::kOps; }
}  // namespace mce
