// Ternary kernels (TernaryQuantizeFn / TernaryDotsFn in kernels/dispatch.h;
// layout "t2" in kernels/ternary_layout.h) with AVX-512 (BW for the masks,
// VNNI's vpdpbusd for the products).
//
// Dots: a 32-byte chunk is broadcast to both halves of a register; masking
// the halves with 0x03 | 0x0C leaves q0 in the low half and 4 q1 in the high
// one, and 0x30 | 0xC0 leaves 16 q2 and 64 q3. The first pair lines up with
// activation bytes 128c + 0..63, the second with 128c + 64..127, so each
// meets one plain 64-byte load in a vpdpbusd (u8 codes up to 192 times s8,
// four products a lane, summed in int32 without saturation). The two masks
// replace the shifts: per chunk and row, two ANDs and two vpdpbusd. An int32
// lane thus holds a sum of products scaled by 1, 4, 16 or 64 (fixed per
// half); the halves are shifted back, exactly, once per row. Codes are 2-bit
// fields (3 never occurs in a valid file but is multiplied as 3, like the
// reference); lanes stay exact for K < 2^21 (64 * 3 * 128 * 4 per chunk).
//
// Decode (one token) streams the matrix: four rows per pass share the
// activation loads, and, as in x86_avx2/ternary.cpp, a software prefetch runs
// through the matrix in address order one pass ahead (four rows are four
// short streams that hardware prefetchers follow poorly). Prefill: tiles of
// two rows x four tokens (16 accumulators), four tokens at a time over 4 KiB
// blocks of the inputs so their activations stay in L1 while the rows pass.
//
// Quantize: the reference's f32 operations and rounding (cvtps is round to
// nearest even under the default MXCSR), 16 lanes at a time.
#include <algorithm>
#include <cmath>

#include "kernels/ternary_driver.h"
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512/avx512_util.h"
#include "quant/quantize_act.h"

namespace mce::avx512 {
namespace {

inline __m512i halves(int8_t lo, int8_t hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8(lo)), _mm256_set1_epi8(hi), 1);
}

inline int hsum256_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// The dot from the two scaled accumulators (halves x1 | x4 and x16 | x64).
inline int32_t unscale(__m512i a, __m512i b) {
  const __m256i s = _mm256_add_epi32(
      _mm256_add_epi32(_mm512_castsi512_si256(a), _mm256_srai_epi32(_mm512_extracti64x4_epi64(a, 1), 2)),
      _mm256_add_epi32(_mm256_srai_epi32(_mm512_castsi512_si256(b), 4),
                       _mm256_srai_epi32(_mm512_extracti64x4_epi64(b, 1), 6)));
  return hsum256_epi32(s);
}

// R rows x T tokens over chunks [c0, c1): out[t * out_stride + r] = (add ?
// out : 0) + dot. Prefetch: the decode pass's address-order prefetch.
template <int R, int T, bool Prefetch>
inline void dots_tile(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, const int8_t* act,
                      size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
  const __m512i ma = halves(0x03, 0x0C), mb = halves(0x30, int8_t(0xC0));
  const char* pf = reinterpret_cast<const char*>(w) + R * row_bytes + 2048;
  __m512i acc_a[R][T], acc_b[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc_a[r][t] = acc_b[r][t] = _mm512_setzero_si512();
  for (int64_t c = c0; c < c1; ++c) {
    if constexpr (Prefetch) {
      for (int j = 0; j < R * 32; j += 64) _mm_prefetch(pf + R * 32 * c + j, _MM_HINT_T0);
    }
    __m512i xa[T], xb[T];
    for (int t = 0; t < T; ++t) {
      const int8_t* a = act + t * act_stride + 128 * c;
      xa[t] = _mm512_loadu_si512(a);
      xb[t] = _mm512_loadu_si512(a + 64);
    }
    for (int r = 0; r < R; ++r) {
      const __m512i v =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * c)));
      const __m512i qa = _mm512_and_si512(v, ma), qb = _mm512_and_si512(v, mb);
      for (int t = 0; t < T; ++t) {
        acc_a[r][t] = _mm512_dpbusd_epi32(acc_a[r][t], qa, xa[t]);
        acc_b[r][t] = _mm512_dpbusd_epi32(acc_b[r][t], qb, xb[t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      const int32_t s = unscale(acc_a[r][t], acc_b[r][t]);
      int32_t& o = out[t * out_stride + r];
      o = add ? o + s : s;
    }
}

// The level's tiles for kernels/ternary_driver.h.
struct Level {
  template <int R>
  static void decode(int64_t nc, const uint8_t* w, size_t row_bytes, const int8_t* a, int32_t* out) {
    dots_tile<R, 1, true>(0, nc, w, row_bytes, a, 0, out, 0, false);
  }
  template <int T>
  static void rows(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act,
                   size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
    int r = 0;
    for (; r + 2 <= n_rows; r += 2)
      dots_tile<2, T, false>(c0, c1, w + r * row_bytes, row_bytes, act, act_stride, out + r, out_stride, add);
    if (r < n_rows) dots_tile<1, T, false>(c0, c1, w + r * row_bytes, row_bytes, act, act_stride, out + r, out_stride, add);
  }
};

}  // namespace

TernaryActivation ternary_quantize(const float* x, int64_t K, int8_t* a) {
  const int64_t K16 = K / 16 * 16;
  __m512 m = _mm512_setzero_ps();
  // max_ps returns its second operand when either is NaN: a NaN |x| is
  // skipped, as the reference's std::max skips it.
  for (int64_t k = 0; k < K16; k += 16) m = _mm512_max_ps(abs_ps(_mm512_loadu_ps(x + k)), m);
  float amax = hmax_ps(m);
  for (int64_t k = K16; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  TernaryActivation res;
  res.inv = 127.0f / std::max(amax, 1e-5f);
  const __m512 inv = _mm512_set1_ps(res.inv);
  const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t k = 0; k < K16; k += 16) {
    // |x * inv| <= 127 up to one rounding, so the clamp is only the
    // reference's guard (and keeps the sum equal to the stored bytes').
    const __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), inv));
    const __m512i q = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
    sum = _mm512_add_epi32(sum, q);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a + k), _mm512_cvtsepi32_epi8(q));
  }
  res.sum = hsum_epi32(sum);
  ternary_quantize_tail(x, K16, K, res.inv, a, &res.sum);
  return res;
}

void ternary_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act, size_t act_stride,
                  int n_tok, int32_t* out, int64_t out_stride) {
  ternary_dots_tiled<Level>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::avx512
