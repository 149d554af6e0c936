// Body of the attention row kernel, compiled once per ISA. The including
// translation unit defines `static inline float attn_dot(const float*, const
// float*, int64_t)` and `static inline void attn_axpy(float, const float*,
// float*, int64_t)` with its own intrinsics before including this file.
#pragma once
#include <cmath>
#include <cstdint>

namespace mce {
namespace {

void attend_row_impl(const float* q, const float* k, const float* v, int64_t n_keys, int64_t d, float scale,
                     float* scores, float* out) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n_keys; ++j) {
    const float s = attn_dot(q, k + j * d, d) * scale;
    scores[j] = s;
    m = s > m ? s : m;
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < n_keys; ++j) {
    const float e = std::exp(scores[j] - m);
    scores[j] = e;
    sum += e;
  }
  for (int64_t i = 0; i < d; ++i) out[i] = 0.0f;
  for (int64_t j = 0; j < n_keys; ++j) attn_axpy(scores[j], v + j * d, out, d);
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < d; ++i) out[i] *= inv;
}

}  // namespace
}  // namespace mce
