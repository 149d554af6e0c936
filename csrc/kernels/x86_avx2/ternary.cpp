// Ternary kernels (TernaryQuantizeFn / TernaryDotsFn in kernels/dispatch.h;
// layout "t2" in kernels/ternary_layout.h) with AVX2.
//
// Dots: a 32-byte chunk holds four 32-input quarters at bit pairs 0, 2, 4, 6,
// byte j of quarter i lining up with activation byte 128c + 32i + j, so a
// shift and a mask give 32 unsigned codes for one maddubs against a plain
// 32-byte load of the activations. maddubs cannot saturate: a pair is at most
// 2 * 3 * 128 = 768 (codes are 2-bit fields; 3 never occurs in a valid file
// but is multiplied as 3, like the reference), and int16 sums are widened to
// int32 (madd) before they can reach 2^15. int32 sums are exact for K < 2^20.
//
// Two shapes, because the two uses are bound by different things:
//  - decode (one token) streams the matrix once and must keep up with DRAM.
//    Four rows per pass share the activation loads; each row keeps one int16
//    accumulator (eight chunks, then widened), which with the four
//    accumulators, the four activation vectors and the mask fits the 16 ymm
//    registers. (A variant with two masks, 0x03 and 0x0C, saved two shifts
//    but needed a second accumulator per row and spilled: 15-25% slower in
//    cache, 10-20% from DRAM on Zen 3.) The four rows are four short streams
//    (K/4 bytes each) that hardware prefetchers follow poorly: on a Zen 3 VM
//    (K = 2560 and 6912, matrices far beyond the caches) the kernel streamed
//    3-4.5 GB/s without help, against 8-13 GB/s for a plain read of the same
//    bytes. A software prefetch running through the matrix in address order,
//    one pass of rows plus 2 KiB ahead, recovers most of it. (Interleaving
//    the four rows chunk by chunk into one stream instead measured slower.)
//  - prefill (several tokens) is bound by the multiply-adds, so a row's codes
//    are unpacked once per chunk and used for up to four tokens; per row and
//    token one int16 accumulator (a chunk adds at most 4 * 768 = 3072 to a
//    lane, so blocks of eight chunks). One row at a time: two would share
//    activation loads but need more than the 16 ymm registers. Tokens are
//    taken four at a time over 4 KiB blocks of the inputs (16 KiB of
//    activations, in L1 while every row passes), the partial sums of a block
//    added into out.
//
// Quantize: the reference's f32 operations (|x| maxima are exact in any
// order; one scalar division; one multiply per element) and its rounding, as
// cvtps rounds to nearest even under the default MXCSR.
#include <algorithm>
#include <cmath>

#include "kernels/ternary_driver.h"
#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/x86_avx2/avx2_util.h"
#include "quant/quantize_act.h"

namespace mce::avx2 {
namespace {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Sums of four int32 vectors, as lanes 0..3 of one 128-bit vector.
inline __m128i hsum4_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

// One token, R rows (row r at w + r * row_bytes): out[r].
template <int R>
inline void dots_decode(int64_t nc, const uint8_t* w, size_t row_bytes, const int8_t* a, int32_t* out) {
  const __m256i m03 = _mm256_set1_epi8(0x03), ones = _mm256_set1_epi16(1);
  // Address order: the pass's R rows are R * row_bytes bytes read at R * 32
  // per chunk, so this runs one pass and 2 KiB ahead (rows padded beyond K/4
  // bytes only make it lag a little).
  const char* pf = reinterpret_cast<const char*>(w) + R * row_bytes + 2048;
  __m256i acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
  for (int64_t c0 = 0; c0 < nc; c0 += 8) {
    const int64_t c1 = std::min(nc, c0 + 8);
    __m256i s16[R];  // a chunk adds at most 4 * 768 to a lane: eight chunks stay below 2^15
    for (int r = 0; r < R; ++r) s16[r] = _mm256_setzero_si256();
    for (int64_t c = c0; c < c1; ++c) {
      for (int j = 0; j < R * 32; j += 64) _mm_prefetch(pf + R * 32 * c + j, _MM_HINT_T0);
      const int8_t* ac = a + 128 * c;
      const __m256i a0 = load32(ac), a1 = load32(ac + 32), a2 = load32(ac + 64), a3 = load32(ac + 96);
      for (int r = 0; r < R; ++r) {
        const __m256i v = load32(w + r * row_bytes + 32 * c);
        const __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(v, m03), a0);
        const __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 2), m03), a1);
        const __m256i p2 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m03), a2);
        const __m256i p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 6), m03), a3);
        s16[r] = _mm256_add_epi16(s16[r], _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3)));
      }
    }
    for (int r = 0; r < R; ++r) acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(s16[r], ones));
  }
  if constexpr (R == 4) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), hsum4_epi32(acc[0], acc[1], acc[2], acc[3]));
  } else {
    for (int r = 0; r < R; ++r) out[r] = hsum_epi32(acc[r]);
  }
}

// Quarter I of a chunk's codes, as unsigned bytes.
template <int I>
inline __m256i quarter(__m256i v) {
  const __m256i m03 = _mm256_set1_epi8(0x03);
  return I == 0 ? _mm256_and_si256(v, m03) : _mm256_and_si256(_mm256_srli_epi16(v, 2 * I), m03);
}

// A row's products with one token over a chunk, as int16 pair sums. Added as
// a tree so only the sum meets the accumulator (left to itself, GCC chains
// them and runs out of registers).
inline __m256i chunk_products(const __m256i* q, const int8_t* a) {
  const __m256i p0 = _mm256_maddubs_epi16(q[0], load32(a)), p1 = _mm256_maddubs_epi16(q[1], load32(a + 32));
  const __m256i p2 = _mm256_maddubs_epi16(q[2], load32(a + 64)), p3 = _mm256_maddubs_epi16(q[3], load32(a + 96));
  return _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
}

// One row, T tokens, chunks [c0, c1): out[t * out_stride] = (add ? out : 0) + dot.
template <int T>
inline void dots_row(int64_t c0, int64_t c1, const uint8_t* row, const int8_t* act, size_t act_stride, int32_t* out,
                     int64_t out_stride, bool add) {
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* a[T];
  __m256i acc32[T];
  for (int t = 0; t < T; ++t) a[t] = act + t * act_stride, acc32[t] = _mm256_setzero_si256();
  for (int64_t b0 = c0; b0 < c1; b0 += 8) {
    const int64_t b1 = std::min(c1, b0 + 8);
    __m256i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
    for (int64_t c = b0; c < b1; ++c) {
      const __m256i v = load32(row + 32 * c);
      const __m256i q[4] = {quarter<0>(v), quarter<1>(v), quarter<2>(v), quarter<3>(v)};
      for (int t = 0; t < T; ++t) acc[t] = _mm256_add_epi16(acc[t], chunk_products(q, a[t] + 128 * c));
    }
    for (int t = 0; t < T; ++t) acc32[t] = _mm256_add_epi32(acc32[t], _mm256_madd_epi16(acc[t], ones));
  }
  for (int t = 0; t < T; ++t) {
    const int32_t s = hsum_epi32(acc32[t]);
    out[t * out_stride] = add ? out[t * out_stride] + s : s;
  }
}

// The level's tiles for kernels/ternary_driver.h.
struct Level {
  template <int R>
  static void decode(int64_t nc, const uint8_t* w, size_t row_bytes, const int8_t* a, int32_t* out) {
    dots_decode<R>(nc, w, row_bytes, a, out);
  }
  template <int T>
  static void rows(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act,
                   size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
    for (int r = 0; r < n_rows; ++r) dots_row<T>(c0, c1, w + r * row_bytes, act, act_stride, out + r, out_stride, add);
  }
};

}  // namespace

TernaryActivation ternary_quantize(const float* x, int64_t K, int8_t* a) {
  const int64_t K32 = K / 32 * 32;
  __m256 m = _mm256_setzero_ps();
  // max_ps returns its second operand when either is NaN: a NaN |x| is
  // skipped, as the reference's std::max skips it.
  for (int64_t k = 0; k < K32; k += 8) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + k)), m);
  float amax = hmax_ps(m);
  for (int64_t k = K32; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  TernaryActivation res;
  res.inv = 127.0f / std::max(amax, 1e-5f);
  const __m256 inv = _mm256_set1_ps(res.inv);
  const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
  __m256i sum = _mm256_setzero_si256();
  for (int64_t k = 0; k < K32; k += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; ++j) {
      // |x * inv| <= 127 up to one rounding, so the clamp is only the
      // reference's guard (and keeps the sum equal to the stored bytes').
      const __m256i r = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * j), inv));
      q[j] = _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
      sum = _mm256_add_epi32(sum, q[j]);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + k), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
  }
  res.sum = hsum_epi32(sum);
  ternary_quantize_tail(x, K32, K, res.inv, a, &res.sum);
  return res;
}

void ternary_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act, size_t act_stride,
                  int n_tok, int32_t* out, int64_t out_stride) {
  ternary_dots_tiled<Level>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::avx2
