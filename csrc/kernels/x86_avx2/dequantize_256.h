// Row decoders written with 256-bit AVX2/F16C intrinsics, shared by the AVX2
// and AVX-512 levels (each includes this header and gets its own copy,
// compiled with its own flags; `static inline` keeps the copies apart).
//
// Results must be the bits of the scalar decoders in quant/dequantize.cpp, so
// every element goes through the same f32 operations in the same order:
// products of scales are formed in scalar f32 exactly as there, and a*b+c is
// a separate multiply and add (mul_ps, add_ps), never an FMA. (For the formats
// here q * d is exact in f32, so an FMA would round alike; contraction is still
// kept off so that no future format silently depends on it.) GCC implements
// these intrinsics as plain vector arithmetic that -ffp-contract=fast (its
// default) would fuse into FMA under -mfma, so contraction is switched off for
// every file that includes this header.
#pragma once
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::x86_256 {

// 8 bytes at p widened to 32-bit lanes. The widening reads memory directly
// (vpmovsxbd/vpmovzxbd ymm, m64), one shuffle-port uop per 8 elements, which
// is what bounds these decoders.
static inline __m256i load_i8x8_epi32(const void* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p)));
}
static inline __m256i load_u8x8_epi32(const void* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p)));
}

// F16C converts every binary16 exactly, as fp16_to_f32 does.
static inline void dequant_f16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
  for (; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

static inline void dequant_bf16(const void* src, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

// x = q * d
static inline void dequant_q8_0(const void* src, float* y, int64_t n) {
  const Q8_0Block* x = static_cast<const Q8_0Block*>(src);
  for (int64_t i = 0; i < n / kQK8_0; ++i, y += kQK8_0) {
    const __m256 d = _mm256_set1_ps(fp16_to_f32(x[i].d));
    for (int k = 0; k < 4; ++k) {
      _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(load_i8x8_epi32(x[i].qs + 8 * k)), d));
    }
  }
}

// Bytes j..j+7 of a nibble array as 32-bit lanes, split into their low
// nibbles (elements j..j+7) and high nibbles (elements j+16..j+23 for Q4_0/Q4_1,
// j+32.. of the next sub-block for Q4_K).
static inline void load_nibbles_x8(const uint8_t* p, __m256i* lo, __m256i* hi) {
  const __m256i b = load_u8x8_epi32(p);
  *lo = _mm256_and_si256(b, _mm256_set1_epi32(0x0F));
  *hi = _mm256_srli_epi32(b, 4);
}

// x = (q - 8) * d
static inline void dequant_q4_0(const void* src, float* y, int64_t n) {
  const Q4_0Block* x = static_cast<const Q4_0Block*>(src);
  const __m256i eight = _mm256_set1_epi32(8);
  for (int64_t i = 0; i < n / kQK4_0; ++i, y += kQK4_0) {
    const __m256 d = _mm256_set1_ps(fp16_to_f32(x[i].d));
    for (int j = 0; j < kQK4_0 / 2; j += 8) {
      __m256i lo, hi;
      load_nibbles_x8(x[i].qs + j, &lo, &hi);
      _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(lo, eight)), d));
      _mm256_storeu_ps(y + j + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(hi, eight)), d));
    }
  }
}

// x = q * d + m
static inline void dequant_q4_1(const void* src, float* y, int64_t n) {
  const Q4_1Block* x = static_cast<const Q4_1Block*>(src);
  for (int64_t i = 0; i < n / kQK4_0; ++i, y += kQK4_0) {
    const __m256 d = _mm256_set1_ps(fp16_to_f32(x[i].d));
    const __m256 m = _mm256_set1_ps(fp16_to_f32(x[i].m));
    for (int j = 0; j < kQK4_0 / 2; j += 8) {
      __m256i lo, hi;
      load_nibbles_x8(x[i].qs + j, &lo, &hi);
      _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), d), m));
      _mm256_storeu_ps(y + j + 16, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), d), m));
    }
  }
}

// x = (d * sc) * q - dmin * m, per 32-element sub-block
static inline void dequant_q4_k(const void* src, float* y, int64_t n) {
  const Q4_KBlock* x = static_cast<const Q4_KBlock*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float dmin = fp16_to_f32(x[i].dmin);
    uint8_t sm[16];
    q4_k_unpack_scales(x[i].scales, sm);
    const uint8_t* q = x[i].qs;
    for (int c = 0; c < 4; ++c, q += 32, y += 64) {
      const __m256 d1 = _mm256_set1_ps(d * sm[2 * c]), m1 = _mm256_set1_ps(dmin * sm[8 + 2 * c]);
      const __m256 d2 = _mm256_set1_ps(d * sm[2 * c + 1]), m2 = _mm256_set1_ps(dmin * sm[8 + 2 * c + 1]);
      for (int j = 0; j < 32; j += 8) {
        __m256i lo, hi;
        load_nibbles_x8(q + j, &lo, &hi);
        _mm256_storeu_ps(y + j, _mm256_sub_ps(_mm256_mul_ps(d1, _mm256_cvtepi32_ps(lo)), m1));
        _mm256_storeu_ps(y + j + 32, _mm256_sub_ps(_mm256_mul_ps(d2, _mm256_cvtepi32_ps(hi)), m2));
      }
    }
  }
}

// 16 signed bytes -> y[0..15] = q * d.
static inline void store_scaled_i8x16(__m128i q, __m256 d, float* y) {
  _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
  const __m128i q_hi8 = _mm_unpackhi_epi64(q, q);
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q_hi8)), d));
}

// 32 signed values (bytes) -> y[0..31] = s_lo * q for 0..15, s_hi * q for 16..31.
static inline void store_q6_k_group_pair(__m256i q, float s_lo, float s_hi, float* y) {
  const __m128i a = _mm256_castsi256_si128(q);
  const __m128i b = _mm256_extracti128_si256(q, 1);
  store_scaled_i8x16(a, _mm256_set1_ps(s_lo), y);
  store_scaled_i8x16(b, _mm256_set1_ps(s_hi), y + 16);
}

// x = (d * scales[g]) * (q - 32), q = 4 bits of ql | 2 bits of qh << 4
// (layout in quant/dequantize.cpp): per 128-element half, byte l of the 32-byte
// vectors gives elements l, l+32, l+64, l+96.
static inline void dequant_q6_k(const void* src, float* y, int64_t n) {
  const Q6_KBlock* x = static_cast<const Q6_KBlock*>(src);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2h = _mm256_set1_epi8(0x30);
  const __m256i k32 = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      // Shifts are 16-bit; the masks drop the bits that crossed byte borders.
      const __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(h, 4), m2h);  // qh bits 0-1 -> 4-5
      const __m256i h2 = _mm256_and_si256(_mm256_slli_epi16(h, 2), m2h);  // bits 2-3
      const __m256i h3 = _mm256_and_si256(h, m2h);                        // bits 4-5
      const __m256i h4 = _mm256_and_si256(_mm256_srli_epi16(h, 2), m2h);  // bits 6-7
      const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), h1);
      const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4), h2);
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h3);
      const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h4);
      const __m256i qs[4] = {q1, q2, q3, q4};
      for (int k = 0; k < 4; ++k) {
        const float s_lo = d * static_cast<float>(sc[2 * k]);
        const float s_hi = d * static_cast<float>(sc[2 * k + 1]);
        store_q6_k_group_pair(_mm256_sub_epi8(qs[k], k32), s_lo, s_hi, y + 32 * k);
      }
    }
  }
}

static inline void dequant_f32(const void* src, float* y, int64_t n) {
  if (n > 0) std::memcpy(y, src, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace mce::x86_256
