// Q4_K x Q8_K and Q6_K x Q8_K. Quants are expanded to unsigned bytes for
// maddubs; per-(sub)block scales are applied with madd on the int16 pair sums,
// so a whole super-block accumulates exactly in int32 before one conversion.
// Offsets (Q4_K's mins, Q6_K's -32) are applied once per group through the
// activation's bsums instead of per element.
#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/x86_avx2/avx2_util.h"
#include "quant/blocks.h"

namespace mce::avx2 {
namespace {

// Shuffle masks giving, for the t-th 32-element quarter of a Q6_K block,
// bytes [scale 2t] x8 followed by [scale 2t+1] x8.
alignas(16) constexpr uint8_t kQ6ScalePairs[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

// vpshufb masks that broadcast int16 lane j (bytes 2j, 2j+1) of each 128-bit
// lane to the whole lane.
alignas(32) constexpr uint8_t kQ4ScaleBroadcast[8][32] = {
#define MCE_B(j) 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, \
                 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1
    {MCE_B(0), MCE_B(0)}, {MCE_B(1), MCE_B(1)}, {MCE_B(2), MCE_B(2)}, {MCE_B(3), MCE_B(3)},
    {MCE_B(4), MCE_B(4)}, {MCE_B(5), MCE_B(5)}, {MCE_B(6), MCE_B(6)}, {MCE_B(7), MCE_B(7)},
#undef MCE_B
};

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

}  // namespace

float vec_dot_q4_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q4_KBlock* w = static_cast<const Q4_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    alignas(16) uint8_t sm[16];
    q4_k_unpack_scales(w[i].scales, sm);
    const __m128i sm8 = _mm_load_si128(reinterpret_cast<const __m128i*>(sm));
    const float dx = x[i].d;
    // Min term: sum_j m_j * (bsums[2j] + bsums[2j+1]), kept as 4 lanes.
    const __m256i bs = load256(x[i].bsums);
    const __m128i bs_pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i mprod = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8)), bs_pairs);
    acc_min = _mm_fmadd_ps(_mm_set1_ps(fp16_scalar(w[i].dmin) * dx), _mm_cvtepi32_ps(mprod), acc_min);

    // The 8 sub-block scales as int16 in both 128-bit lanes; kQ4ScaleBroadcast
    // picks one of them for all 16 lanes.
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm8));
    __m256i sumi = _mm256_setzero_si256();
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    for (int c = 0; c < 4; ++c, q4 += 32, q8 += 64) {
      const __m256i bits = load256(q4);
      const __m256i lo = _mm256_and_si256(bits, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(q8));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(q8 + 32));
      const __m256i slo = _mm256_shuffle_epi8(sc16, load256(kQ4ScaleBroadcast[2 * c]));
      const __m256i shi = _mm256_shuffle_epi8(sc16, load256(kQ4ScaleBroadcast[2 * c + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_madd_epi16(plo, slo), _mm256_madd_epi16(phi, shi)));
    }
    const __m256 d = _mm256_set1_ps(fp16_scalar(w[i].d) * dx);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum_ps(acc) - _mm_cvtss_f32(m);
}

float vec_dot_q6_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q6_KBlock* w = static_cast<const Q6_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i bits45 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    // sum_g sc_g * (sum q6*q8 - 32 * bsum_g): the -32 part in one madd.
    const __m256i offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(x[i].bsums));
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(w[i].ql + 64 * h);
      const __m256i ql1 = load256(w[i].ql + 64 * h + 32);
      const __m256i qh = load256(w[i].qh + 32 * h);
      // The four quarters of the half: 4 low bits from ql, bits 4-5 from a
      // bit pair of qh (16-bit shifts are safe: the 0x30 mask drops bits
      // that crossed a byte boundary).
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_maddubs_epi16(q[k], load256(x[i].qs + 128 * h + 32 * k));
        const __m128i pair = _mm_shuffle_epi8(
            sc8, _mm_load_si128(reinterpret_cast<const __m128i*>(kQ6ScalePairs[4 * h + k])));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_cvtepi8_epi16(pair)));
      }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset, 5));
    const __m256 d = _mm256_set1_ps(fp16_scalar(w[i].d) * x[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc);
}

}  // namespace mce::avx2
