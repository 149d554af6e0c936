// "tl3" ternary kernels (kernels/ternary_lut_layout.h; TernaryLutBuildFn /
// TernaryLutDotsFn in kernels/dispatch.h) with AVX2.
//
// Tables as the reference's: per pair of groups, the low bytes of both groups'
// entries (a 32-byte vector whose lanes are the two groups) and then the high
// bytes. One step of the dots is one pair of groups for the block's 32 rows:
//   - 32 index bytes: low nibbles are rows 0..15 (lane l: group 2p + l), high
//     nibbles rows 16..31;
//   - pshufb of the low and of the high table bytes by each nibble vector
//     gives the 64 entries' bytes;
//   - the sign: bit p of the octet's sign bytes, moved to bit 7 (shift) and
//     spread over the byte (cmpgt 0 > x), XORed into both bytes: -x - 1 for a
//     negative group, the -1 corrected by the rows' bias at the end;
//   - unpack lo/hi interleaves the bytes back into int16 entries, added to
//     four int16 accumulators (rows 0-7, 8-15, 16-23, 24-31; the two lanes
//     are the two groups of the pair).
// An entry is within +-385 (-x - 1 of -384..384), so 64 steps (eight octets)
// stay within int16 before the accumulators are widened to int32, even and
// odd rows apart. About 23 vector operations per 192 weights, and the block is
// one stream (software prefetch 2 KiB ahead, first token only). Prefill takes
// two tokens per pass, which share the indices and sign masks (7 of the 23).
#include <algorithm>

#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/ternary_lut_driver.h"
#include "kernels/x86_avx2/ternary_lut_x86.h"

namespace mce::avx2 {
namespace {

struct PairPlacement {
  static size_t lo(int64_t p) { return size_t(p) * 64; }
  static size_t hi(int64_t p) { return size_t(p) * 64 + 32; }
};

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// One block (32 rows) against T tokens' tables: out[t * out_stride + 0..31]
// (bias added). A step's indices and sign masks are taken once for the T
// tokens (prefill: T = 2, eight int16 accumulators of the 16 registers).
template <int T>
void block_dots(int64_t octets, const uint8_t* block, const int32_t* bias, const uint8_t* tables,
                size_t table_stride, int32_t* out, int64_t out_stride, bool prefetch) {
  const __m256i nibble = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
  __m256i acc32[T][8];
  for (int t = 0; t < T; ++t)
    for (__m256i& a : acc32[t]) a = zero;
  for (int64_t o0 = 0; o0 < octets; o0 += 8) {
    const int64_t o1 = std::min(octets, o0 + 8);
    __m256i acc[T][4];
    for (int t = 0; t < T; ++t)
      for (__m256i& a : acc[t]) a = zero;
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* oct = block + size_t(o) * kTl3OctetBytes;
      if (prefetch)
        for (int j = 0; j < int(kTl3OctetBytes); j += 64)
          _mm_prefetch(reinterpret_cast<const char*>(oct) + 2048 + j, _MM_HINT_T0);
      const __m256i sa = load32(oct), sb = load32(oct + 32);
      const uint8_t* tab = tables + size_t(o) * kTl3OctetTableBytes;
      auto step = [&](auto pc) {
        constexpr int p = decltype(pc)::value;
        const __m256i idx = load32(oct + 64 + 32 * p);
        const __m256i ia = _mm256_and_si256(idx, nibble), ib = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble);
        const __m256i ma = _mm256_cmpgt_epi8(zero, _mm256_slli_epi16(sa, 7 - p));
        const __m256i mb = _mm256_cmpgt_epi8(zero, _mm256_slli_epi16(sb, 7 - p));
        for (int t = 0; t < T; ++t) {
          const uint8_t* tt = tab + t * table_stride + 64 * p;
          const __m256i tlo = load32(tt), thi = load32(tt + 32);
          const __m256i la = _mm256_xor_si256(_mm256_shuffle_epi8(tlo, ia), ma);
          const __m256i ha = _mm256_xor_si256(_mm256_shuffle_epi8(thi, ia), ma);
          const __m256i lb = _mm256_xor_si256(_mm256_shuffle_epi8(tlo, ib), mb);
          const __m256i hb = _mm256_xor_si256(_mm256_shuffle_epi8(thi, ib), mb);
          acc[t][0] = _mm256_add_epi16(acc[t][0], _mm256_unpacklo_epi8(la, ha));
          acc[t][1] = _mm256_add_epi16(acc[t][1], _mm256_unpackhi_epi8(la, ha));
          acc[t][2] = _mm256_add_epi16(acc[t][2], _mm256_unpacklo_epi8(lb, hb));
          acc[t][3] = _mm256_add_epi16(acc[t][3], _mm256_unpackhi_epi8(lb, hb));
        }
      };
      step(std::integral_constant<int, 0>{});
      step(std::integral_constant<int, 1>{});
      step(std::integral_constant<int, 2>{});
      step(std::integral_constant<int, 3>{});
      step(std::integral_constant<int, 4>{});
      step(std::integral_constant<int, 5>{});
      step(std::integral_constant<int, 6>{});
      step(std::integral_constant<int, 7>{});
    }
    for (int t = 0; t < T; ++t)
      for (int q = 0; q < 4; ++q) {
        acc32[t][2 * q] = _mm256_add_epi32(acc32[t][2 * q], _mm256_srai_epi32(_mm256_slli_epi32(acc[t][q], 16), 16));
        acc32[t][2 * q + 1] = _mm256_add_epi32(acc32[t][2 * q + 1], _mm256_srai_epi32(acc[t][q], 16));
      }
  }
  // acc32[t][2q] holds rows 8q + 0, 2, 4, 6 (one lane per group parity), acc32[t][2q + 1] the odd rows.
  for (int t = 0; t < T; ++t)
    for (int q = 0; q < 4; ++q) {
      const __m256i e = acc32[t][2 * q], d = acc32[t][2 * q + 1];
      const __m128i even = _mm_add_epi32(_mm256_castsi256_si128(e), _mm256_extracti128_si256(e, 1));
      const __m128i odd = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
      x86::tl3_store_rows8(even, odd, bias + 8 * q, out + t * out_stride + 8 * q);
    }
}

struct Level {
  template <int T>
  static void block(int64_t octets, const uint8_t* block, const int32_t* bias, const uint8_t* tables,
                    size_t table_stride, int32_t* out, int64_t out_stride, bool prefetch) {
    block_dots<T>(octets, block, bias, tables, table_stride, out, out_stride, prefetch);
  }
};

}  // namespace

void ternary_lut_build(const int8_t* a, int64_t K, uint8_t* tables) { x86::tl3_build<PairPlacement>(a, K, tables); }

void ternary_lut_dots(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* bias, const uint8_t* tables,
                      size_t table_stride, int n_tok, int32_t* out, int64_t out_stride) {
  tl3_dots_tiled<Level, 2>(K, w, n_blocks, bias, tables, table_stride, n_tok, out, out_stride);
}

}  // namespace mce::avx2
