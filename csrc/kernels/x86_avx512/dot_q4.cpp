// Q4_0 x Q8_0 and Q4_1 x Q8_1 with VNNI: one register holds two blocks
// (64 quants), vpdpbusd multiplies unsigned nibbles by signed activations and
// sums groups of four into int32 lanes (8 lanes per block), and the lanes are
// scaled by their block's d_w*d_x. Q4_0's offset of 8 is removed with a second
// vpdpbusd of 8 * activation, which keeps the integer part exact. An odd last
// block goes through the 256-bit (AVX512VL) form.
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512/avx512_util.h"
#include "quant/blocks.h"

namespace mce::avx512 {
namespace {

inline __m512 q4_0_pair(const Q4_0Block* w, const Q8_0Block* x, __m512 acc) {
  const __m512i qw = unpack_nibbles_2(w[0].qs, w[1].qs);
  const __m512i qx = load2x256(x[0].qs, x[1].qs);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i s = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, qw, qx),
                                     _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), qx));
  const __m512 d = two_scales(fp16_scalar(w[0].d) * fp16_scalar(x[0].d), fp16_scalar(w[1].d) * fp16_scalar(x[1].d));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
}

inline float q4_0_single(const Q4_0Block& w, const Q8_0Block& x) {
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i s = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, unpack_nibbles(w.qs), qx),
                                     _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), qx));
  return hsum_ps(_mm256_cvtepi32_ps(s)) * (fp16_scalar(w.d) * fp16_scalar(x.d));
}

inline __m512 q4_1_pair(const Q4_1Block* w, const Q8_1Block* x, __m512 acc) {
  const __m512i qw = unpack_nibbles_2(w[0].qs, w[1].qs);
  const __m512i qx = load2x256(x[0].qs, x[1].qs);
  const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qw, qx);
  const __m512 d = two_scales(fp16_scalar(w[0].d) * fp16_scalar(x[0].d), fp16_scalar(w[1].d) * fp16_scalar(x[1].d));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
}

inline float q4_1_single(const Q4_1Block& w, const Q8_1Block& x) {
  const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack_nibbles(w.qs), qx);
  return hsum_ps(_mm256_cvtepi32_ps(s)) * (fp16_scalar(w.d) * fp16_scalar(x.d));
}

}  // namespace

float vec_dot_q4_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q4_0Block* w = static_cast<const Q4_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  const int64_t nb = n / kQK4_0;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    acc0 = q4_0_pair(w + i, x + i, acc0);
    acc1 = q4_0_pair(w + i + 2, x + i + 2, acc1);
  }
  for (; i + 2 <= nb; i += 2) acc0 = q4_0_pair(w + i, x + i, acc0);
  float sum = hsum_ps(_mm512_add_ps(acc0, acc1));
  if (i < nb) sum += q4_0_single(w[i], x[i]);
  return sum;
}

// The weight minimum m contributes m * d_x * sum(q_x) = m * s per block.
float vec_dot_q4_1_q8_1(int64_t n, const void* vw, const void* vx) {
  const Q4_1Block* w = static_cast<const Q4_1Block*>(vw);
  const Q8_1Block* x = static_cast<const Q8_1Block*>(vx);
  const int64_t nb = n / kQK4_0;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  float mins = 0.0f;
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    acc0 = q4_1_pair(w + i, x + i, acc0);
    acc1 = q4_1_pair(w + i + 2, x + i + 2, acc1);
  }
  for (; i + 2 <= nb; i += 2) acc0 = q4_1_pair(w + i, x + i, acc0);
  float sum = hsum_ps(_mm512_add_ps(acc0, acc1));
  if (i < nb) sum += q4_1_single(w[i], x[i]);
  for (int64_t j = 0; j < nb; ++j) mins += fp16_scalar(w[j].m) * fp16_scalar(x[j].s);
  return sum + mins;
}

}  // namespace mce::avx512
