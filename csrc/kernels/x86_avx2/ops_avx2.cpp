// AVX2+FMA+F16C element-wise ops, bit-identical to the scalar reference in
// the evaluation order kernels/ops.h defines. Ragged tails use masked loads
// and stores, so a tail element goes through the same arithmetic as the
// others (and, in sums, lands in its own lane).
#include <cmath>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/x86_avx2/avx2_util.h"
#include "kernels/x86_avx2/vec_math_avx2.h"
#include "quant/fp16.h"

namespace mce::avx2 {
namespace {

// Lanes [0, k) set, k < 8.
inline __m256i tail_mask(int64_t k) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Sum of squares of x[0, n) in double, in the reference's eight lanes:
// a0 holds lanes 0-3 (i % 8 < 4), a1 lanes 4-7; the tail's missing elements
// load as zeros, which add nothing. Squares of floats are exact in double, so
// the fused multiply-add rounds as the reference's add.
inline double sum_squares(const float* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  auto add8 = [&](__m256 v) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) add8(_mm256_loadu_ps(x + i));
  if (i < n) add8(_mm256_maskload_ps(x + i, tail_mask(n - i)));
  // ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)), the reference's tree.
  a0 = _mm256_add_pd(a0, a1);
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a0), _mm256_extractf128_pd(a0, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

inline float rms_inverse(double ss, int64_t n, float eps) {
  return static_cast<float>(1.0 / __builtin_sqrt(ss / double(n) + double(eps)));
}

// out = x * inv * w, in the reference's order of the two products.
inline void scale_by_weight(const float* x, float inv, const float* w, float* out, int64_t n) {
  const __m256 vi = _mm256_set1_ps(inv);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) out[i] = x[i] * inv * w[i];
}

void add_scaled(float* y, const float* x, float scale, int64_t n) {
  const __m256 s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(s, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(s, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
  }
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  scale_by_weight(x, rms_inverse(sum_squares(x, n), n, eps), w, out, n);
}

void add_rmsnorm(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps) {
  add_scaled(x, delta, scale, n);
  rmsnorm(x, w, out, n, eps);
}

inline __m256 silu_times(__m256 g, __m256 u) {
  const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, silu_times(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(gate + i, m, silu_times(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
  }
}

void scale(float* x, float s, int64_t n) {
  const __m256 v = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), v));
  for (; i < n; ++i) x[i] *= s;
}

void rope_interleaved(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                      const float* sin_t) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    int64_t i = 0;
    for (; i + 4 <= half; i += 4) {
      // Pairs (a, b) -> (fma(a, c, -(b s)), fma(b, c, a s)), the reference's
      // order: fmaddsub subtracts its addend in even lanes and adds it in odd
      // ones; the swapped copy supplies (b, a) for the products b s, a s.
      const __m128 c = _mm_loadu_ps(cos_t + i), s = _mm_loadu_ps(sin_t + i);
      const __m256 cc = _mm256_set_m128(_mm_unpackhi_ps(c, c), _mm_unpacklo_ps(c, c));
      const __m256 ss = _mm256_set_m128(_mm_unpackhi_ps(s, s), _mm_unpacklo_ps(s, s));
      const __m256 xv = _mm256_loadu_ps(v + 2 * i);
      const __m256 sw = _mm256_permute_ps(xv, 0xB1);
      _mm256_storeu_ps(v + 2 * i, _mm256_fmaddsub_ps(xv, cc, _mm256_mul_ps(sw, ss)));
    }
    for (; i < half; ++i) {  // the same two fmas per pair, one pair at a time
      const float a = v[2 * i], b = v[2 * i + 1], c = cos_t[i], s = sin_t[i];
      v[2 * i] = std::fma(a, c, -(b * s));
      v[2 * i + 1] = std::fma(b, c, a * s);
    }
  }
}

void softmax(float* x, int64_t n) {
  const int64_t nv = n / 8 * 8;
  const __m256i tm = tail_mask(n - nv);
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_inff());
  __m256 mv = neg_inf;
  for (int64_t i = 0; i < nv; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
  if (nv < n) mv = _mm256_max_ps(mv, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + nv, tm), _mm256_castsi256_ps(tm)));
  const __m256 m = _mm256_set1_ps(hmax_ps(mv));
  // The reference's eight lanes (i % 8), the tail's missing lanes adding +0.
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < nv; i += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (nv < n) {
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, tm), m)), _mm256_castsi256_ps(tm));
    _mm256_maskstore_ps(x + nv, tm, e);
    sum = _mm256_add_ps(sum, e);
  }
  scale(x, 1.0f / sum_lanes_ps(sum), n);
}

void exp_row(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_ps(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, exp_ps(_mm256_maskload_ps(x + i, m)));
  }
}

void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

constexpr OpsTable kOps{rmsnorm, add_rmsnorm, silu_mul, add_scaled, scale, rope_interleaved,
                        softmax, exp_row,     f32_to_f16, f16_to_f32};

}  // namespace
}  // namespace mce::avx2

namespace mce {
const OpsTable* ops_avx2() { return &avx2::kOps; }
}  // namespace mce
