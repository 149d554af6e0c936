// TEST BUILDS ONLY (CMake option MCE_EMULATE_AVX512). Force-included (-include)
// into the AVX-512 translation units (csrc/kernels/x86_avx512/*.cpp), which that
// configuration compiles with the AVX2/FMA/F16C flags only, so that the
// AVX-512 level's kernels run, emulated, on a CPU without AVX-512.
//
// SIMDe (https://github.com/simd-everywhere/simde, Debian's libsimde-dev)
// implements the AVX-512 intrinsics in portable C and AVX2; with its native
// aliases the kernels' `_mm512_*` names and `__m512` types resolve to it.
// GCC's <immintrin.h>, which SIMDe includes first, declares the same
// intrinsics as always-inline functions with target("avx512f") and friends;
// they can never be inlined into these translation units, and SIMDe's alias
// macros shadow them by name. Its types are the very same vector types as
// GCC's, so the two declarations of `__m512` agree.
//
// The intrinsics the kernels use that SIMDe 0.7.4 lacks are added below, each
// from its definition in the Intel Intrinsics Guide / SDM, built from the AVX2
// instruction that does the same on each 256-bit half, or per lane where a
// mask decides which lanes may be touched (a masked-off lane is never read or
// written: the kernels rely on that at the ends of rows). The reductions
// repeat GCC's own expansion step for step (its avx512fintrin.h), so the
// emulated build sums in the order the real build does.
#pragma once
#pragma GCC system_header

#if defined(__AVX512F__)
#error "emulated AVX-512 is for builds without -mavx512f"
#endif

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cstdint>
#include <cstring>

namespace mce_emu_avx512 {

// 256-bit halves of a 512-bit vector (lanes 0..7 | 8..15 of f32, and so on).
template <typename Half, typename Full>
static inline Half half(const Full& v, int which) {
  static_assert(sizeof(Full) == 2 * sizeof(Half), "halves");
  Half h;
  std::memcpy(&h, reinterpret_cast<const char*>(&v) + which * sizeof(Half), sizeof(Half));
  return h;
}
template <typename Full, typename Half>
static inline Full join(const Half& lo, const Half& hi) {
  static_assert(sizeof(Full) == 2 * sizeof(Half), "halves");
  Full v;
  std::memcpy(&v, &lo, sizeof(Half));
  std::memcpy(reinterpret_cast<char*>(&v) + sizeof(Half), &hi, sizeof(Half));
  return v;
}
static inline __m256 lo_ps(__m512 v) { return half<__m256>(v, 0); }
static inline __m256 hi_ps(__m512 v) { return half<__m256>(v, 1); }
static inline __m256i lo_si(__m512i v) { return half<__m256i>(v, 0); }
static inline __m256i hi_si(__m512i v) { return half<__m256i>(v, 1); }
static inline __m512 join_ps(__m256 lo, __m256 hi) { return join<__m512>(lo, hi); }
static inline __m512i join_si(__m256i lo, __m256i hi) { return join<__m512i>(lo, hi); }
static inline __m512d join_pd(__m256d lo, __m256d hi) { return join<__m512d>(lo, hi); }
static inline __m256i join_si128(__m128i lo, __m128i hi) { return join<__m256i>(lo, hi); }

// --- conversions (VCVTDQ2PS, VCVTPS2DQ, VCVTTPS2DQ: per lane as the 256-bit forms)
static inline __m512 cvtepi32_ps(__m512i a) {
  return join_ps(_mm256_cvtepi32_ps(lo_si(a)), _mm256_cvtepi32_ps(hi_si(a)));
}
static inline __m512i cvtps_epi32(__m512 a) {
  return join_si(_mm256_cvtps_epi32(lo_ps(a)), _mm256_cvtps_epi32(hi_ps(a)));
}
static inline __m512i cvttps_epi32(__m512 a) {
  return join_si(_mm256_cvttps_epi32(lo_ps(a)), _mm256_cvttps_epi32(hi_ps(a)));
}
// VPMOVZXWD zmm, ymm
static inline __m512i cvtepu16_epi32(__m256i a) {
  return join_si(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(a)), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1)));
}
// VCVTPH2PS zmm, ymm
static inline __m512 cvtph_ps(__m256i a) {
  return join_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(a)), _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1)));
}
// VCVTPS2PD zmm, ymm
static inline __m512d cvtps_pd(__m256 a) {
  return join_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
}
// VCVTPS2PH ymm, zmm, imm8: imm8[2:0] picks the rounding (bit 2: MXCSR's),
// as in the 256-bit form; bit 3 (suppress exceptions) changes no result.
template <int kImm>
static inline __m256i cvtps_ph(__m512 a) {
  return join_si128(_mm256_cvtps_ph(lo_ps(a), kImm & 7), _mm256_cvtps_ph(hi_ps(a), kImm & 7));
}

// --- lane moves
// VEXTRACTF32X8: imm8[0] picks the half.
template <int kImm>
static inline __m256 extractf32x8_ps(__m512 a) {
  return (kImm & 1) ? hi_ps(a) : lo_ps(a);
}
// VPERMILPS zmm, zmm, imm8: the same 4-lane selector in every 128-bit lane.
template <int kImm>
static inline __m512 permute_ps(__m512 a) {
  return join_ps(_mm256_permute_ps(lo_ps(a), kImm), _mm256_permute_ps(hi_ps(a), kImm));
}
// VSHUFI64X2: 128-bit lanes 0,1 from a (imm8[1:0], [3:2]), lanes 2,3 from b
// (imm8[5:4], [7:6]).
template <int kImm>
static inline __m512i shuffle_i64x2(__m512i a, __m512i b) {
  char in_a[64], in_b[64], out[64];
  std::memcpy(in_a, &a, 64);
  std::memcpy(in_b, &b, 64);
  std::memcpy(out + 0, in_a + 16 * (kImm & 3), 16);
  std::memcpy(out + 16, in_a + 16 * ((kImm >> 2) & 3), 16);
  std::memcpy(out + 32, in_b + 16 * ((kImm >> 4) & 3), 16);
  std::memcpy(out + 48, in_b + 16 * ((kImm >> 6) & 3), 16);
  __m512i r;
  std::memcpy(&r, out, 64);
  return r;
}
// Upper 256 bits zero.
static inline __m512i zextsi256_si512(__m256i a) { return join_si(a, _mm256_setzero_si256()); }

// --- arithmetic
// VFMADDSUB: even lanes a*b - c, odd lanes a*b + c, one rounding (each half
// starts at an even lane).
static inline __m512 fmaddsub_ps(__m512 a, __m512 b, __m512 c) {
  return join_ps(_mm256_fmaddsub_ps(lo_ps(a), lo_ps(b), lo_ps(c)), _mm256_fmaddsub_ps(hi_ps(a), hi_ps(b), hi_ps(c)));
}
// VPSRAD: counts above 31 fill with the sign bit, as the 256-bit form.
static inline __m512i srai_epi32(__m512i a, unsigned int count) {
  const int c = static_cast<int>(count > 32u ? 32u : count);
  return join_si(_mm256_srai_epi32(lo_si(a), c), _mm256_srai_epi32(hi_si(a), c));
}

// --- masked loads and stores: only the lanes whose mask bit is set are read
// or written (the hardware suppresses faults on the others).
static inline __m512 mask_loadu_ps(__m512 src, __mmask16 k, const void* p) {
  float v[16];
  std::memcpy(v, &src, 64);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) std::memcpy(&v[i], static_cast<const char*>(p) + 4 * i, 4);
  __m512 r;
  std::memcpy(&r, v, 64);
  return r;
}
static inline __m512 maskz_loadu_ps(__mmask16 k, const void* p) { return mask_loadu_ps(_mm512_setzero_ps(), k, p); }
static inline void mask_storeu_ps(void* p, __mmask16 k, __m512 a) {
  float v[16];
  std::memcpy(v, &a, 64);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) std::memcpy(static_cast<char*>(p) + 4 * i, &v[i], 4);
}
static inline __m256i maskz_loadu_epi16(__mmask16 k, const void* p) {
  uint16_t v[16] = {};
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) std::memcpy(&v[i], static_cast<const char*>(p) + 2 * i, 2);
  __m256i r;
  std::memcpy(&r, v, 32);
  return r;
}
static inline void mask_storeu_epi16(void* p, __mmask16 k, __m256i a) {
  uint16_t v[16];
  std::memcpy(v, &a, 32);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) std::memcpy(static_cast<char*>(p) + 2 * i, &v[i], 2);
}

// --- reductions: GCC 12's expansion (avx512fintrin.h, __MM512_REDUCE_OP):
// upper 256 op lower 256, upper 128 op lower 128, then lanes {2,3} onto
// {0,1}, then lane 1 onto lane 0, with the operands in GCC's order (it
// matters for max with NaN or signed zeros).
static inline float reduce_add_ps(__m512 a) {
  const __m256 t3 = _mm256_add_ps(hi_ps(a), lo_ps(a));
  const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
  const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1));
}
static inline float reduce_max_ps(__m512 a) {
  const __m256 t3 = _mm256_max_ps(hi_ps(a), lo_ps(a));
  const __m128 t6 = _mm_max_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
  const __m128 t8 = _mm_max_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m128 t10 = _mm_max_ps(t8, _mm_shuffle_ps(t8, t8, _MM_SHUFFLE(0, 1, 0, 1)));
  return _mm_cvtss_f32(t10);
}
static inline double reduce_add_pd(__m512d a) {
  const __m256d t3 = _mm256_add_pd(half<__m256d>(a, 1), half<__m256d>(a, 0));
  const __m128d t6 = _mm_add_pd(_mm256_extractf128_pd(t3, 1), _mm256_castpd256_pd128(t3));
  return _mm_cvtsd_f64(t6) + _mm_cvtsd_f64(_mm_unpackhi_pd(t6, t6));
}

}  // namespace mce_emu_avx512

// The aliases. GCC defines some of these names as macros in unoptimised
// builds, hence the #undefs.
#define MCE_EMU_ALIAS(name) mce_emu_avx512::name
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(a) MCE_EMU_ALIAS(cvtepi32_ps)(a)
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32(a) MCE_EMU_ALIAS(cvtps_epi32)(a)
#undef _mm512_cvttps_epi32
#define _mm512_cvttps_epi32(a) MCE_EMU_ALIAS(cvttps_epi32)(a)
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32(a) MCE_EMU_ALIAS(cvtepu16_epi32)(a)
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps(a) MCE_EMU_ALIAS(cvtph_ps)(a)
#undef _mm512_cvtps_pd
#define _mm512_cvtps_pd(a) MCE_EMU_ALIAS(cvtps_pd)(a)
#undef _mm512_cvtps_ph
#define _mm512_cvtps_ph(a, imm) MCE_EMU_ALIAS(cvtps_ph)<(imm)>(a)
#undef _mm512_extractf32x8_ps
#define _mm512_extractf32x8_ps(a, imm) MCE_EMU_ALIAS(extractf32x8_ps)<(imm)>(a)
#undef _mm512_permute_ps
#define _mm512_permute_ps(a, imm) MCE_EMU_ALIAS(permute_ps)<(imm)>(a)
#undef _mm512_shuffle_i64x2
#define _mm512_shuffle_i64x2(a, b, imm) MCE_EMU_ALIAS(shuffle_i64x2)<(imm)>(a, b)
#undef _mm512_zextsi256_si512
#define _mm512_zextsi256_si512(a) MCE_EMU_ALIAS(zextsi256_si512)(a)
#undef _mm512_fmaddsub_ps
#define _mm512_fmaddsub_ps(a, b, c) MCE_EMU_ALIAS(fmaddsub_ps)(a, b, c)
#undef _mm512_srai_epi32
#define _mm512_srai_epi32(a, count) MCE_EMU_ALIAS(srai_epi32)(a, count)
#undef _mm512_mask_loadu_ps
#define _mm512_mask_loadu_ps(src, k, p) MCE_EMU_ALIAS(mask_loadu_ps)(src, k, p)
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps(k, p) MCE_EMU_ALIAS(maskz_loadu_ps)(k, p)
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps(p, k, a) MCE_EMU_ALIAS(mask_storeu_ps)(p, k, a)
#undef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16(k, p) MCE_EMU_ALIAS(maskz_loadu_epi16)(k, p)
#undef _mm256_mask_storeu_epi16
#define _mm256_mask_storeu_epi16(p, k, a) MCE_EMU_ALIAS(mask_storeu_epi16)(p, k, a)
#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps(a) MCE_EMU_ALIAS(reduce_add_ps)(a)
#undef _mm512_reduce_max_ps
#define _mm512_reduce_max_ps(a) MCE_EMU_ALIAS(reduce_max_ps)(a)
#undef _mm512_reduce_add_pd
#define _mm512_reduce_add_pd(a) MCE_EMU_ALIAS(reduce_add_pd)(a)
