// Float dot products and axpy, 16 lanes wide. Four accumulators hide the FMA
// latency; ragged tails use masked loads instead of a scalar loop.
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512/avx512_util.h"

namespace mce::avx512 {
namespace {

inline __mmask16 tail_mask(int64_t left) { return static_cast<__mmask16>((1u << left) - 1u); }

struct F32Src {
  const float* p;
  __m512 load(int64_t i) const { return _mm512_loadu_ps(p + i); }
  __m512 load_tail(int64_t i, __mmask16 m) const { return _mm512_maskz_loadu_ps(m, p + i); }
};

struct F16Src {
  const uint16_t* p;
  __m512 load(int64_t i) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
  }
  __m512 load_tail(int64_t i, __mmask16 m) const { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + i)); }
};

// bfloat16 is the top half of an f32.
struct BF16Src {
  const uint16_t* p;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  __m512 load(int64_t i) const { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i))); }
  __m512 load_tail(int64_t i, __mmask16 m) const { return widen(_mm256_maskz_loadu_epi16(m, p + i)); }
};

template <typename Src>
float dot_with(int64_t n, Src a, const float* b) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(a.load(i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(a.load(i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(a.load(i + 32), _mm512_loadu_ps(b + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(a.load(i + 48), _mm512_loadu_ps(b + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(a.load(i), _mm512_loadu_ps(b + i), acc0);
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    acc1 = _mm512_fmadd_ps(a.load_tail(i, m), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return hsum_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

}  // namespace

float dot_f32(int64_t n, const float* a, const float* b) { return dot_with(n, F32Src{a}, b); }

void axpy_f32(int64_t n, float a, const float* x, float* y) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    _mm512_storeu_ps(y + i + 16, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16)));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(n - i);
    const __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

float vec_dot_f32(int64_t n, const void* w, const void* x) {
  return dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(x));
}

float vec_dot_f16_f32(int64_t n, const void* w, const void* x) {
  return dot_with(n, F16Src{static_cast<const uint16_t*>(w)}, static_cast<const float*>(x));
}

float vec_dot_bf16_f32(int64_t n, const void* w, const void* x) {
  return dot_with(n, BF16Src{static_cast<const uint16_t*>(w)}, static_cast<const float*>(x));
}

}  // namespace mce::avx512
