// Activation quantizers, 16 lanes wide. Same bytes as the scalar reference
// (quant/quantize_act.cpp): the same f32 operations per element, the same
// rounding (half away from zero for Q8_0/Q8_1, nearest-even via cvtps for
// Q8_K), exact maxima, scales through the same scalar code. The saturating
// narrow (vpmovsdb) keeps element order, so no lane shuffles are needed.
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512/avx512_util.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::avx512 {
namespace {

// Quantizes one 32-element block: writes the quants, returns d = amax/127
// (unrounded f32) and the sum of the quants.
inline float quantize_block_q8(const float* x, int8_t* qs, int* sum) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float d = hmax_ps(_mm512_max_ps(abs_ps(v0), abs_ps(v1))) / 127.0f;
  const __m512 vid = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  const __m512i q0 = round_half_away_epi32(_mm512_mul_ps(v0, vid));
  const __m512i q1 = round_half_away_epi32(_mm512_mul_ps(v1, vid));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(q1));
  if (sum) *sum = hsum_epi32(_mm512_add_epi32(q0, q1));
  return d;
}

}  // namespace

void quantize_row_q8_0(const float* x, void* vy, int64_t n) {
  Q8_0Block* y = static_cast<Q8_0Block*>(vy);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    y[i].d = f32_to_fp16(quantize_block_q8(x + i * kQK8_0, y[i].qs, nullptr));
  }
}

void quantize_row_q8_1(const float* x, void* vy, int64_t n) {
  Q8_1Block* y = static_cast<Q8_1Block*>(vy);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int sum = 0;
    const float d = quantize_block_q8(x + i * kQK8_0, y[i].qs, &sum);
    y[i].d = f32_to_fp16(d);
    y[i].s = f32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_row_q8_K(const float* x, void* vy, int64_t n) {
  Q8_KBlock* y = static_cast<Q8_KBlock*>(vy);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < kQK_K; j += 16) m = _mm512_max_ps(m, abs_ps(_mm512_loadu_ps(x + j)));
    const float amax = hmax_ps(m);
    if (amax == 0.0f) {
      __builtin_memset(&y[i], 0, sizeof(Q8_KBlock));
      continue;
    }
    // The reference keeps the sign of the first element reaching amax.
    int first = 0;
    for (int j = 0; j < kQK_K; j += 16) {
      const __mmask16 eq = _mm512_cmp_ps_mask(abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (eq) {
        first = j + __builtin_ctz(static_cast<unsigned>(eq));
        break;
      }
    }
    const float iscale = -127.0f / x[first];
    const __m512 vs = _mm512_set1_ps(iscale);
    for (int g = 0; g < kQK_K / 16; ++g) {
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vs)),
                                         _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16 * g), _mm512_cvtsepi32_epi8(q));
      y[i].bsums[g] = static_cast<int16_t>(hsum_epi32(q));
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace mce::avx512
