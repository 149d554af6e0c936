// "tl3" ternary kernels (kernels/ternary_lut_layout.h; TernaryLutBuildFn /
// TernaryLutDotsFn in kernels/dispatch.h) with AVX-512 (BW).
//
// The steps of x86_avx2/ternary_lut.cpp, two pairs of groups at a time: the
// index bytes of pairs 2s and 2s + 1 are adjacent in the octet, so one 64-byte
// load gives 128 indices (lanes 0-3: groups 4s .. 4s + 3), and the tables are
// built in that order too: per two pairs, the low bytes of four groups' entries
// (64 bytes) and then their high bytes. The signs come as mask registers:
// vptestmb of the octet's sign bytes (both halves the same 32 bytes) against
// bit 2s in the low half and bit 2s + 1 in the high half; a masked subtract
// from -1 turns a byte x into x XOR -1, as the AVX2 level does with a byte
// mask (the -1s are the rows' bias, added at the end). int16 accumulators are
// widened after eight octets (32 additions per lane). Prefill takes four
// tokens per pass over a block (16 int16 accumulators of the 32 registers),
// sharing each step's index and sign work between them.
#include <algorithm>

#include "kernels/ternary_lut_driver.h"
#include "kernels/x86_avx2/ternary_lut_x86.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce::avx512 {
namespace {

struct QuadPlacement {
  static size_t lo(int64_t p) { return size_t(p / 2) * 128 + 32 * size_t(p % 2); }
  static size_t hi(int64_t p) { return size_t(p / 2) * 128 + 64 + 32 * size_t(p % 2); }
};

inline __m512i load64(const uint8_t* p) { return _mm512_loadu_si512(p); }

inline __m128i sum_lanes(__m512i v) {
  return _mm_add_epi32(_mm_add_epi32(_mm512_extracti32x4_epi32(v, 0), _mm512_extracti32x4_epi32(v, 1)),
                       _mm_add_epi32(_mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)));
}

// One block (32 rows) against T tokens' tables: out[t * out_stride + 0..31]
// (bias added). The indices and sign masks of a step are taken once and
// looked up in every token's tables (prefill), so T > 1 saves their work.
template <int T>
void block_dots(int64_t octets, const uint8_t* block, const int32_t* bias, const uint8_t* tables,
                size_t table_stride, int32_t* out, int64_t out_stride, bool prefetch) {
  const __m512i nibble = _mm512_set1_epi8(0x0F), all_ones = _mm512_set1_epi8(-1), zero = _mm512_setzero_si512();
  __m512i bits[4];
  for (int s = 0; s < 4; ++s)
    bits[s] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8(int8_t(1 << (2 * s)))),
                                 _mm256_set1_epi8(int8_t(1 << (2 * s + 1))), 1);
  __m512i acc32[T][8];
  for (int t = 0; t < T; ++t)
    for (__m512i& a : acc32[t]) a = zero;
  for (int64_t o0 = 0; o0 < octets; o0 += 8) {
    const int64_t o1 = std::min(octets, o0 + 8);
    __m512i acc[T][4];
    for (int t = 0; t < T; ++t)
      for (__m512i& a : acc[t]) a = zero;
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* oct = block + size_t(o) * kTl3OctetBytes;
      if (prefetch)
        for (int j = 0; j < int(kTl3OctetBytes); j += 64)
          _mm_prefetch(reinterpret_cast<const char*>(oct) + 2048 + j, _MM_HINT_T0);
      const __m512i sa = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(oct)));
      const __m512i sb = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(oct + 32)));
      const uint8_t* tab = tables + size_t(o) * kTl3OctetTableBytes;
      for (int s = 0; s < 4; ++s) {
        const __m512i idx = load64(oct + 64 + 64 * s);
        const __m512i ia = _mm512_and_si512(idx, nibble), ib = _mm512_and_si512(_mm512_srli_epi16(idx, 4), nibble);
        const __mmask64 ma = _mm512_test_epi8_mask(sa, bits[s]), mb = _mm512_test_epi8_mask(sb, bits[s]);
        for (int t = 0; t < T; ++t) {
          const uint8_t* tt = tab + t * table_stride + 128 * s;
          const __m512i tlo = load64(tt), thi = load64(tt + 64);
          __m512i la = _mm512_shuffle_epi8(tlo, ia), ha = _mm512_shuffle_epi8(thi, ia);
          __m512i lb = _mm512_shuffle_epi8(tlo, ib), hb = _mm512_shuffle_epi8(thi, ib);
          la = _mm512_mask_sub_epi8(la, ma, all_ones, la);
          ha = _mm512_mask_sub_epi8(ha, ma, all_ones, ha);
          lb = _mm512_mask_sub_epi8(lb, mb, all_ones, lb);
          hb = _mm512_mask_sub_epi8(hb, mb, all_ones, hb);
          acc[t][0] = _mm512_add_epi16(acc[t][0], _mm512_unpacklo_epi8(la, ha));
          acc[t][1] = _mm512_add_epi16(acc[t][1], _mm512_unpackhi_epi8(la, ha));
          acc[t][2] = _mm512_add_epi16(acc[t][2], _mm512_unpacklo_epi8(lb, hb));
          acc[t][3] = _mm512_add_epi16(acc[t][3], _mm512_unpackhi_epi8(lb, hb));
        }
      }
    }
    for (int t = 0; t < T; ++t)
      for (int q = 0; q < 4; ++q) {
        acc32[t][2 * q] = _mm512_add_epi32(acc32[t][2 * q], _mm512_srai_epi32(_mm512_slli_epi32(acc[t][q], 16), 16));
        acc32[t][2 * q + 1] = _mm512_add_epi32(acc32[t][2 * q + 1], _mm512_srai_epi32(acc[t][q], 16));
      }
  }
  // acc32[t][2q]: rows 8q + 0, 2, 4, 6 in each of the four lanes (one lane per group of a step).
  for (int t = 0; t < T; ++t)
    for (int q = 0; q < 4; ++q) {
      const __m128i even = sum_lanes(acc32[t][2 * q]), odd = sum_lanes(acc32[t][2 * q + 1]);
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

void ternary_lut_build(const int8_t* a, int64_t K, uint8_t* tables) { x86::tl3_build<QuadPlacement>(a, K, tables); }

void ternary_lut_dots(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* bias, const uint8_t* tables,
                      size_t table_stride, int n_tok, int32_t* out, int64_t out_stride) {
  tl3_dots_tiled<Level, 4>(K, w, n_blocks, bias, tables, table_stride, n_tok, out, out_stride);
}

}  // namespace mce::avx512
