// AVX-512 attention tile kernel: vector traits for
// kernels/attention_tile_impl.h. One zmm holds a whole key tile (16
// positions); score micro-kernel 4 rows x 32 keys and P.V micro-kernel
// 4 rows x 32 value components, each with two accumulator sets, use 16 of
// the 32 registers as accumulators.
#include "kernels/x86_avx512/avx512_util.h"
#include "kernels/x86_avx512/vec_math_avx512.h"

namespace mce {
namespace {

struct Avx512Vec {
  using F = __m512;
  static constexpr int W = 16;
  static constexpr int kScoreRows = 4, kScoreVecs = 2, kPvRows = 4, kPvVecs = 2;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F load(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static float hmax(F v) { return avx512::hmax_ps(v); }
  static F exp(F v) { return avx512::exp_ps(v); }
  static float exp1(float x) { return _mm_cvtss_f32(_mm512_castps512_ps128(avx512::exp_ps(_mm512_set1_ps(x)))); }
  // The reference's eight-lane sum: a vector of 16 keys is two steps.
  using Sum8 = __m256;
  static Sum8 sum8_zero() { return _mm256_setzero_ps(); }
  static Sum8 sum8_add(Sum8 acc, F v) { return avx512::add_halves_ps(acc, v); }
  static float sum8_total(Sum8 acc) { return avx512::sum_lanes_ps(acc); }
  // Lanes >= n_valid -> -inf.
  static F mask_keys(F s, int64_t n_valid) {
    if (n_valid >= W) return s;
    const __mmask16 keep = n_valid <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n_valid) - 1u);
    return _mm512_mask_mov_ps(_mm512_set1_ps(-__builtin_inff()), keep, s);
  }
};

}  // namespace
}  // namespace mce

#include "kernels/attention_tile_impl.h"

namespace mce {
AttendTileFn attend_tile_avx512() { return AttentionTileSimd<Avx512Vec>::run; }
}  // namespace mce
