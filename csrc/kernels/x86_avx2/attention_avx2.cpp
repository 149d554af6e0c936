// AVX2+FMA+F16C attention tile kernel: vector traits for
// kernels/attention_tile_impl.h. Score micro-kernel 3 rows x 16 keys and
// P.V micro-kernel 3 rows x 16 value components, each with two accumulator
// sets: 12 of the 16 ymm registers (3 rows = one decode step of a GQA group
// of 3); binary16 keys and values widen with vcvtph2ps.
#include "kernels/x86_avx2/avx2_util.h"
#include "kernels/x86_avx2/vec_math_avx2.h"

namespace mce {
namespace {

struct Avx2Vec {
  using F = __m256;
  static constexpr int W = 8;
  static constexpr int kScoreRows = 3, kScoreVecs = 2, kPvRows = 3, kPvVecs = 2;

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F load(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static float hmax(F v) { return avx2::hmax_ps(v); }
  static F exp(F v) { return avx2::exp_ps(v); }
  static float exp1(float x) { return _mm256_cvtss_f32(avx2::exp_ps(_mm256_set1_ps(x))); }
  // The reference's eight-lane sum: one vector is one step.
  using Sum8 = __m256;
  static Sum8 sum8_zero() { return _mm256_setzero_ps(); }
  static Sum8 sum8_add(Sum8 acc, F v) { return _mm256_add_ps(acc, v); }
  static float sum8_total(Sum8 acc) { return avx2::sum_lanes_ps(acc); }
  // Lanes >= n_valid -> -inf.
  static F mask_keys(F s, int64_t n_valid) {
    if (n_valid >= W) return s;
    const int c = n_valid < 0 ? 0 : static_cast<int>(n_valid);
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_blendv_ps(_mm256_set1_ps(-__builtin_inff()), s, _mm256_castsi256_ps(keep));
  }
};

}  // namespace
}  // namespace mce

#include "kernels/attention_tile_impl.h"

namespace mce {
AttendTileFn attend_tile_avx2() { return AttentionTileSimd<Avx2Vec>::run; }
}  // namespace mce
