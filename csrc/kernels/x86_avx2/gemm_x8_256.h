// Packed-weight GEMMs with 256-bit AVX2 intrinsics, shared by the AVX2 and
// AVX-512 levels (each includes this header into its own translation unit).
//
// One 32-byte vector of a packed group holds 4 consecutive weights of each of
// 8 rows (kernels/packed_layout.h). maddubs against the 4 matching activation
// bytes broadcast to every lane gives, per row, two int16 pair sums; the 8
// vectors of a block are added as int16 and widened once per block with madd.
// Up to 4 tokens share each decoded weight vector (registers: 4 float
// accumulators + 4 int16 accumulators + weights + constants = 15 of 16).
//
// Exactness of the int16 stage:
//   Q4: each int16 lane adds 16 products q*x with q in [0, 15] and |x| <= 127
//       (Q8_0 activations): |sum| <= 16 * 15 * 127 = 30480 < 2^15.
//   Q8: |w*x| <= 127*127, so a pair already fills int16; widen every vector
//       (sign trick: |w| as the unsigned operand, x with w's sign).
// Float operations follow dispatch.h's GemmX8Fn contract (explicit FMAs).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "quant/blocks.h"

namespace mce::x86_256 {

static inline __m256i bcast32(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

static inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// Pins v to a register at this point. GCC otherwise reassociates the int16
// accumulations of a block into one wide tree of maddubs results, which needs
// far more than 16 registers and spills in the hottest loop.
template <typename V>
static inline void keep_in_register(V& v) {
  __asm__("" : "+x"(v));
}

// Decode reads every weight once per token, straight from DRAM. The hardware
// prefetchers stall at page boundaries and ramp up again for every matrix, so
// the kernels ask for the cache lines kPrefetchAhead bytes ahead themselves
// (measured on Zen 3: +15-20% GEMV throughput from DRAM; 512-1024 bytes work
// best, 2048+ is worse). Prefetches past the end of a buffer are harmless.
constexpr size_t kPrefetchAhead = 1024;

template <size_t kBytes>
static inline void prefetch_block(const uint8_t* blk) {
  for (size_t off = 0; off < kBytes; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetchAhead + off), _MM_HINT_T0);
}

// T tokens (1..4) against one group; kMin: Q4_1 (per-row minimum) instead of
// Q4_0's offset of 8.
template <int T, bool kMin>
static inline void gemm_q4x8_tile(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride,
                                  const int32_t* sums, int64_t sums_stride, float* y, int64_t y_stride) {
  constexpr size_t kBlock = kMin ? 160 : 144;
  constexpr size_t kQs = kMin ? 32 : 16;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const Q8_0Block* x[T];
  for (int t = 0; t < T; ++t) x[t] = reinterpret_cast<const Q8_0Block*>(act + size_t(t) * act_stride);

  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + size_t(b) * kBlock;
    const uint8_t* qs = blk + kQs;
    prefetch_block<kBlock>(blk);
    __m256i s16[T];
    for (int t = 0; t < T; ++t) s16[t] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j));
      const __m256i lo = _mm256_and_si256(v, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      for (int t = 0; t < T; ++t) {
        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(lo, bcast32(x[t][b].qs + 4 * j)));
        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(hi, bcast32(x[t][b].qs + 16 + 4 * j)));
        keep_in_register(s16[t]);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    for (int t = 0; t < T; ++t) {
      const float dx = half_to_float(x[t][b].d);
      const int32_t sx = sums[t * sums_stride + b];
      __m256i s32 = _mm256_madd_epi16(s16[t], ones);
      if (!kMin) s32 = _mm256_sub_epi32(s32, _mm256_set1_epi32(8 * sx));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_mul_ps(dw, _mm256_set1_ps(dx)), acc[t]);
      if (kMin) {
        const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
        acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(dx * float(sx)), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + t * y_stride, acc[t]);
}

template <int T>
static inline void gemm_q8x8_tile(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride,
                                  float* y, int64_t y_stride) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const Q8_0Block* x[T];
  for (int t = 0; t < T; ++t) x[t] = reinterpret_cast<const Q8_0Block*>(act + size_t(t) * act_stride);

  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + size_t(b) * 272;
    prefetch_block<272>(blk);
    __m256i s32[T];
    for (int t = 0; t < T; ++t) s32[t] = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * s));
      const __m256i aw = _mm256_abs_epi8(w);
      for (int t = 0; t < T; ++t) {
        const __m256i xs = _mm256_sign_epi8(bcast32(x[t][b].qs + 4 * s), w);
        s32[t] = _mm256_add_epi32(s32[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones));
        keep_in_register(s32[t]);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    for (int t = 0; t < T; ++t) {
      const float dx = half_to_float(x[t][b].d);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[t]), _mm256_mul_ps(dw, _mm256_set1_ps(dx)), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + t * y_stride, acc[t]);
}

// Whole token range in tiles of 4 (remainder 1..3).
template <bool kMin>
static inline void gemm_q4x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride,
                             const int32_t* sums, int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4)
    gemm_q4x8_tile<4, kMin>(nb, group, act + t * act_stride, act_stride, sums + t * sums_stride, sums_stride,
                            y + t * y_stride, y_stride);
  const uint8_t* a = act + t * act_stride;
  const int32_t* s = sums + t * sums_stride;
  float* yt = y + t * y_stride;
  switch (n_tok - t) {
    case 3: gemm_q4x8_tile<3, kMin>(nb, group, a, act_stride, s, sums_stride, yt, y_stride); break;
    case 2: gemm_q4x8_tile<2, kMin>(nb, group, a, act_stride, s, sums_stride, yt, y_stride); break;
    case 1: gemm_q4x8_tile<1, kMin>(nb, group, a, act_stride, s, sums_stride, yt, y_stride); break;
    default: break;
  }
}

static inline void gemm_q8x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride,
                             int64_t n_tok, float* y, int64_t y_stride) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4) gemm_q8x8_tile<4>(nb, group, act + t * act_stride, act_stride, y + t * y_stride, y_stride);
  const uint8_t* a = act + t * act_stride;
  float* yt = y + t * y_stride;
  switch (n_tok - t) {
    case 3: gemm_q8x8_tile<3>(nb, group, a, act_stride, yt, y_stride); break;
    case 2: gemm_q8x8_tile<2>(nb, group, a, act_stride, yt, y_stride); break;
    case 1: gemm_q8x8_tile<1>(nb, group, a, act_stride, yt, y_stride); break;
    default: break;
  }
}

}  // namespace mce::x86_256
