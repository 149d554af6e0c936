// Scalar reference of the element-wise ops (kernels/ops.h): the evaluation
// order ops.h defines, written out with std::fma wherever the SIMD levels
// fuse, so they can reproduce it bit for bit. The table of CPUs without SIMD
// ops (and of the NEON levels for now).
#include <cmath>
#include <cstring>

#include "kernels/ops.h"
#include "quant/fp16.h"

namespace mce::ref {
namespace {

// The eight-lane sums of rmsnorm and softmax: lane k holds the terms with
// i % 8 == k; combined as a 4-wide (AVX2 double) or 8-wide register halves.
constexpr int kSumLanes = 8;

template <class T>
T combine_lanes(const T (&s)[kSumLanes]) {
  return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

// 2^k for -126 <= k <= 127, built from its exponent bits.
inline float pow2(int k) {
  const uint32_t bits = uint32_t(k + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

float exp_poly(float x) {
  // Constants and steps of x86_avx2/vec_math_avx2.h, one lane at a time.
  constexpr float kMaxX = 88.72283935546875f;
  if (std::isnan(x)) return x;
  if (x > kMaxX) return INFINITY;
  const float xc = x < -104.0f ? -104.0f : x;
  // Round to nearest, ties to even, as the SIMD round instructions: for
  // |t| < 2^22, t + 1.5 * 2^23 has no bits below 1, so the addition rounds t
  // to an integer (|t| <= 151 here) and the subtraction is exact.
  const float t = xc * 1.44269504088896341f;
  const float n = (t + 0x1.8p23f) - 0x1.8p23f;
  float r = std::fma(-n, 0.693359375f, xc);
  r = std::fma(-n, -2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float y = std::fma(p, r * r, r) + 1.0f;
  const int ni = static_cast<int>(n), n1 = ni >> 1, n2 = ni - n1;
  return (y * pow2(n1)) * pow2(n2);
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  double s[kSumLanes] = {};
  for (int64_t i = 0; i < n; ++i) s[i % kSumLanes] += double(x[i]) * double(x[i]);
  const float inv = static_cast<float>(1.0 / std::sqrt(combine_lanes(s) / double(n) + double(eps)));
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * inv) * w[i];
}

void add_rmsnorm(float* x, const float* delta, float scale, const float* w, float* out, int64_t n, float eps) {
  add_scaled(x, delta, scale, n);
  rmsnorm(x, w, out, n, eps);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = (g / (1.0f + exp_poly(0.0f - g))) * up[i];
  }
}

void add_scaled(float* y, const float* x, float scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::fma(scale, x[i], y[i]);
}

void scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void rope_interleaved(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t,
                      const float* sin_t) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const float a = v[2 * i], b = v[2 * i + 1], c = cos_t[i], s = sin_t[i];
      v[2 * i] = std::fma(a, c, -(b * s));
      v[2 * i + 1] = std::fma(b, c, a * s);
    }
  }
}

void rope_neox(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t, const float* sin_t) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half], c = cos_t[i], s = sin_t[i];
      v[i] = std::fma(a, c, -(b * s));
      v[i + half] = std::fma(b, c, a * s);
    }
  }
}

void relu2_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i] > 0.0f ? gate[i] : 0.0f;
    gate[i] = (g * g) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  float s[kSumLanes] = {};
  for (int64_t i = 0; i < n; ++i) {
    x[i] = exp_poly(x[i] - m);
    s[i % kSumLanes] += x[i];
  }
  const float inv = 1.0f / combine_lanes(s);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void exp(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_poly(x[i]);
}

void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

}  // namespace mce::ref
