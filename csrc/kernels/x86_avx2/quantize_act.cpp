// Activation quantizers. They must give the same bytes as the scalar
// reference (quant/quantize_act.cpp): the same f32 operations per element
// (x * id, x * iscale), the same rounding (half away from zero for Q8_0/Q8_1,
// nearest-even through cvtps for Q8_K), exact maxima, and the scales through
// the same scalar code.
#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/x86_avx2/avx2_util.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::avx2 {
namespace {

// Quantizes one 32-element block: writes the quants, returns d = amax/127
// (unrounded f32) and the sum of the quants.
inline float quantize_block_q8(const float* x, int8_t* qs, int* sum) {
  const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
  const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
  const __m256 m =
      _mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3)));
  const float d = hmax_ps(m) / 127.0f;
  const __m256 vid = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  const __m256i q0 = round_half_away_epi32(_mm256_mul_ps(v0, vid));
  const __m256i q1 = round_half_away_epi32(_mm256_mul_ps(v1, vid));
  const __m256i q2 = round_half_away_epi32(_mm256_mul_ps(v2, vid));
  const __m256i q3 = round_half_away_epi32(_mm256_mul_ps(v3, vid));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32_to_i8(q0, q1, q2, q3));
  if (sum) *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3)));
  return d;
}

// Sums of four groups of 16 int32 (eight vectors, in element order) -> 4 int16.
inline void group_sums_16(const __m256i q[8], int16_t* out) {
  const __m256i s0 = _mm256_add_epi32(q[0], q[1]), s1 = _mm256_add_epi32(q[2], q[3]);
  const __m256i s2 = _mm256_add_epi32(q[4], q[5]), s3 = _mm256_add_epi32(q[6], q[7]);
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
  const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi32(t, t));
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
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < kQK_K; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
    const float amax = hmax_ps(m);
    if (amax == 0.0f) {
      __builtin_memset(&y[i], 0, sizeof(Q8_KBlock));
      continue;
    }
    // The reference keeps the sign of the first element reaching amax.
    int first = 0;
    for (int j = 0; j < kQK_K; j += 8) {
      const __m256 eq = _mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
      const int mask = _mm256_movemask_ps(eq);
      if (mask) {
        first = j + __builtin_ctz(static_cast<unsigned>(mask));
        break;
      }
    }
    const float iscale = -127.0f / x[first];
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i max127 = _mm256_set1_epi32(127);
    for (int j = 0; j < kQK_K; j += 64) {
      __m256i q[8];
      for (int k = 0; k < 8; ++k) {
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vs)), max127);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j + 32), pack_i32_to_i8(q[4], q[5], q[6], q[7]));
      group_sums_16(q, y[i].bsums + j / 16);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace mce::avx2
