// Q4_K x Q8_K and Q6_K x Q8_K. A register holds 64 quants; maddubs forms int16
// pair products and VNNI vpdpwssd multiplies them by the (sub)block scales and
// accumulates in int32, so a super-block stays exact in integers until one
// conversion. Offsets (Q4_K's mins, Q6_K's -32) are applied once per group
// through the activation's bsums.
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512/avx512_util.h"
#include "quant/blocks.h"

namespace mce::avx512 {
namespace {

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// Lane-index vectors for vpermw: 32 int16 lanes in runs of `run` lanes taking
// scale first, first+1, ... .
template <int kRun>
inline __m512i scale_index(int first) {
  alignas(64) int16_t idx[32];
  for (int l = 0; l < 32; ++l) idx[l] = static_cast<int16_t>(first + l / kRun);
  return _mm512_load_si512(idx);
}

}  // namespace

float vec_dot_q4_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q4_KBlock* w = static_cast<const Q4_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  // Chunk c (64 quants) takes sub-block scales 2c (first 32) and 2c+1.
  const __m512i idx[4] = {scale_index<16>(0), scale_index<16>(2), scale_index<16>(4), scale_index<16>(6)};
  __m512 acc = _mm512_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    alignas(16) uint8_t sm[16];
    q4_k_unpack_scales(w[i].scales, sm);
    // Min term: sum_j m_j * (bsums[2j] + bsums[2j+1]).
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums));
    const __m128i bs_pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 8)));
    __m128i mprod = _mm_madd_epi16(m16, bs_pairs);
    mprod = _mm_add_epi32(mprod, _mm_unpackhi_epi64(mprod, mprod));
    mprod = _mm_add_epi32(mprod, _mm_shuffle_epi32(mprod, 0xB1));
    const float dx = x[i].d;
    mins += fp16_scalar(w[i].dmin) * dx * static_cast<float>(_mm_cvtsi128_si32(mprod));

    const __m512i sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm))));
    __m512i sumi = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * c));
      const __m512i q4 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(bits, low4)),
                                            _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4), 1);
      const __m512i p = _mm512_maddubs_epi16(q4, load512(x[i].qs + 64 * c));
      sumi = _mm512_dpwssd_epi32(sumi, p, _mm512_permutexvar_epi16(idx[c], sc));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(fp16_scalar(w[i].d) * dx), _mm512_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc) - mins;
}

float vec_dot_q6_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q6_KBlock* w = static_cast<const Q6_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  // Register t (64 quants = 4 groups of 16) takes group scales 4t .. 4t+3.
  const __m512i idx[4] = {scale_index<8>(0), scale_index<8>(4), scale_index<8>(8), scale_index<8>(12)};
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    // sum_g sc_g * (sum q6*q8 - 32 * bsum_g): the -32 part in one madd.
    const __m256i offset =
        _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums)));
    __m512i sumi = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      // Quarters 0|1 of the half: ql[0..31]|ql[32..63] low nibbles with qh
      // bit pairs 0-1|2-3; quarters 2|3: high nibbles with pairs 4-5|6-7.
      const __m512i ql = load512(w[i].ql + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh + 32 * h));
      const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
      const __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                          _mm512_and_si512(_mm512_slli_epi16(qh2, 4), bits45));
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                          _mm512_and_si512(qh2, bits45));
      const __m512i p01 = _mm512_maddubs_epi16(q01, load512(x[i].qs + 128 * h));
      const __m512i p23 = _mm512_maddubs_epi16(q23, load512(x[i].qs + 128 * h + 64));
      sumi = _mm512_dpwssd_epi32(sumi, p01, _mm512_permutexvar_epi16(idx[2 * h], sc));
      sumi = _mm512_dpwssd_epi32(sumi, p23, _mm512_permutexvar_epi16(idx[2 * h + 1], sc));
    }
    sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 5)));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(fp16_scalar(w[i].d) * x[i].d), _mm512_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc);
}

}  // namespace mce::avx512
