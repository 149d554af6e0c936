// Float dot products and axpy. Eight interleaved partial sums: a fixed order
// that compilers can keep in SIMD registers even without -ffast-math, and a
// smaller rounding error than one running sum.
#include "kernels/ref/ref_kernels.h"
#include "quant/fp16.h"

namespace mce::ref {
namespace {

template <typename Load>
float dot_with(int64_t n, const float* b, Load load) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += load(i + k) * b[i + k];
  }
  for (int k = 0; i < n; ++i, ++k) acc[k] += load(i) * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

}  // namespace

float dot_f32(int64_t n, const float* a, const float* b) {
  return dot_with(n, b, [a](int64_t i) { return a[i]; });
}

void axpy_f32(int64_t n, float a, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float vec_dot_f32(int64_t n, const void* w, const void* x) {
  return dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(x));
}

float vec_dot_f16_f32(int64_t n, const void* w, const void* x) {
  const uint16_t* h = static_cast<const uint16_t*>(w);
  return dot_with(n, static_cast<const float*>(x), [h](int64_t i) { return fp16_to_f32(h[i]); });
}

float vec_dot_bf16_f32(int64_t n, const void* w, const void* x) {
  const uint16_t* h = static_cast<const uint16_t*>(w);
  return dot_with(n, static_cast<const float*>(x), [h](int64_t i) { return bf16_to_f32(h[i]); });
}

}  // namespace mce::ref
