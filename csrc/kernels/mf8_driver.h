// The loop every level's mf8_dots shares (Mf8DotsFn in kernels/dispatch.h):
// rows of the int8 minifloat layout (kernels/minifloat_layout.h) against
// Q8_0 activation rows. A level supplies only
//   Level::block_sums(w, x, n, sums)   for n <= 4 consecutive blocks:
//     sums[2i] / sums[2i+1] = the exact int32 dot of the first / second 16
//     inputs of block i (weights w + 40 i, activations x + 34 i).
// The float part is fixed here, so every level gives the reference's bits:
// from acc = 0, block by block,
//   acc = fma(float(lo), s[0] * d_x, acc);  acc = fma(float(hi), s[1] * d_x, acc).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/minifloat_layout.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce {

constexpr int kMf8SumBlocks = 4;

template <class Level>
inline float mf8_dot_row(int64_t nb, const uint8_t* w, const uint8_t* x) {
  float acc = 0.0f;
  int32_t sums[2 * kMf8SumBlocks];
  for (int64_t b0 = 0; b0 < nb; b0 += kMf8SumBlocks) {
    const int n = int(std::min<int64_t>(kMf8SumBlocks, nb - b0));
    const uint8_t* wb = w + size_t(b0) * kMf8BlockBytes;
    const uint8_t* xb = x + size_t(b0) * sizeof(Q8_0Block);
    Level::block_sums(wb, xb, n, sums);
    for (int i = 0; i < n; ++i) {
      float s[2];
      uint16_t dh;
      std::memcpy(s, wb + size_t(i) * kMf8BlockBytes, sizeof s);
      std::memcpy(&dh, xb + size_t(i) * sizeof(Q8_0Block), sizeof dh);
      const float d = fp16_to_f32(dh);
      acc = std::fma(float(sums[2 * i]), s[0] * d, acc);
      acc = std::fma(float(sums[2 * i + 1]), s[1] * d, acc);
    }
  }
  return acc;
}

template <class Level>
void mf8_dots_impl(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act, size_t act_stride,
                   int n_tok, float* out, int64_t out_stride) {
  const int64_t nb = K / kMf8Block;
  for (int t = 0; t < n_tok; ++t)
    for (int r = 0; r < n_rows; ++r)
      out[t * out_stride + r] = mf8_dot_row<Level>(nb, w + size_t(r) * row_bytes, act + size_t(t) * act_stride);
}

}  // namespace mce
