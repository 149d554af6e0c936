// W8A8 dots (W8A8DotsFn in kernels/dispatch.h; layout in
// kernels/w8a8_layout.h) with AVX2.
//
// A 64-byte step is two 32-byte halves (rows 0-7 and 8-15, 4 inputs each).
// The codes' top bit is flipped back to the signed weights w (one XOR per
// vector, shared by the tile's tokens), then the sign trick: maddubs(|a|,
// sign(w, a)) = pairs of a * w as int16, exact since |a| <= 128 and |w| <=
// 127 (|pair| <= 32512; it would not be with w = -128, which the loader
// refuses, or with the unsigned codes, up to 255). madd by ones widens the
// pairs to int32 at once (two pairs would overflow int16).
//
// Prefill: tiles of 1 group x 4 tokens (8 accumulators, the 2 weight halves,
// the constants: 13 of 16 registers). Decode: 2 groups per pass.
#include <immintrin.h>

#include <cstring>

#include "kernels/w8a8_driver.h"
#include "kernels/x86_avx2/avx2_kernels.h"

namespace mce::avx2 {
namespace {

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

struct Level {
  static constexpr int kDecodeGroups = 2, kGroups = 1, kTokens = 4;

  template <int R, int T>
  static void tile(int64_t steps, const uint8_t* w, size_t gb, const int8_t* act, size_t act_stride,
                   const int32_t* sums, int32_t* out, int64_t out_stride) {
    const __m256i flip = _mm256_set1_epi8(int8_t(0x80)), ones = _mm256_set1_epi16(1);
    __m256i acc[R][T][2];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t][0] = acc[r][t][1] = _mm256_setzero_si256();
    for (int64_t s = 0; s < steps; ++s) {
      __m256i wv[R][2];
      for (int r = 0; r < R; ++r) {
        const uint8_t* p = w + r * gb + 64 * s;
        if constexpr (T == 1) _mm_prefetch(reinterpret_cast<const char*>(p) + 1024, _MM_HINT_T0);
        wv[r][0] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), flip);
        wv[r][1] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), flip);
      }
      for (int t = 0; t < T; ++t) {
        const __m256i a = bcast4(act + t * act_stride + 4 * s);
        const __m256i ua = _mm256_abs_epi8(a);
        for (int r = 0; r < R; ++r)
          for (int h = 0; h < 2; ++h) {
            const __m256i p16 = _mm256_maddubs_epi16(ua, _mm256_sign_epi8(wv[r][h], a));
            acc[r][t][h] = _mm256_add_epi32(acc[r][t][h], _mm256_madd_epi16(p16, ones));
          }
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r)
        for (int h = 0; h < 2; ++h)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t * out_stride + kW8A8Rows * r + 8 * h),
                              acc[r][t][h]);
  }
};

}  // namespace

void w8a8_dots(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
               const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  w8a8_dots_tiled<Level>(K, w, n_groups, act, act_stride, sums, n_tok, out, out_stride);
}

}  // namespace mce::avx2
