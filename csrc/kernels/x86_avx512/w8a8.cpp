// W8A8 dots (W8A8DotsFn in kernels/dispatch.h; layout in
// kernels/w8a8_layout.h) with AVX-512 VNNI.
//
// One 64-byte step of a group holds 4 inputs of each of its 16 rows, stored
// as the unsigned codes q = w + 128; vpdpbusd multiplies them (u8) by the
// token's 4 activation bytes broadcast to every lane (s8) and adds each
// lane's 4 products to its int32 accumulator: 16 rows' partial sums per
// instruction, without saturation (|sum_k q a| <= 255 * 128 * K < 2^31 for K
// <= kW8A8MaxCols). The offset is removed once per row and token:
// sum_k w a = sum_k q a - 128 * sum_k a.
//
// Prefill: tiles of 2 groups x 4 tokens (8 accumulators, enough to cover
// vpdpbusd's latency); the broadcasts come straight from memory. Decode: 4
// groups per pass (4 streams, each prefetched ahead as in ternary.cpp).
#include <immintrin.h>

#include <cstring>

#include "kernels/w8a8_driver.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce::avx512 {
namespace {

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

struct Level {
  static constexpr int kDecodeGroups = 4, kGroups = 2, kTokens = 4;

  template <int R, int T>
  static void tile(int64_t steps, const uint8_t* w, size_t gb, const int8_t* act, size_t act_stride,
                   const int32_t* sums, int32_t* out, int64_t out_stride) {
    __m512i acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
    for (int64_t s = 0; s < steps; ++s) {
      __m512i wv[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* p = w + r * gb + 64 * s;
        if constexpr (T == 1) _mm_prefetch(reinterpret_cast<const char*>(p) + 1024, _MM_HINT_T0);
        wv[r] = _mm512_loadu_si512(p);
      }
      for (int t = 0; t < T; ++t) {
        const __m512i a = bcast4(act + t * act_stride + 4 * s);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], wv[r], a);
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m512i offset = _mm512_set1_epi32(sums[t] * 128);
      for (int r = 0; r < R; ++r)
        _mm512_storeu_si512(out + t * out_stride + kW8A8Rows * r, _mm512_sub_epi32(acc[r][t], offset));
    }
  }
};

}  // namespace

void w8a8_dots(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
               const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  w8a8_dots_tiled<Level>(K, w, n_groups, act, act_stride, sums, n_tok, out, out_stride);
}

}  // namespace mce::avx512
