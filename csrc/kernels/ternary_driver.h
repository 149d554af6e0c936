// The loops every SIMD level's ternary_dots shares (TernaryDotsFn in
// kernels/dispatch.h), around the level's own tile kernels:
//   Level::decode<R>(nc, w, row_bytes, a, out)  one token, R = 4 or 1 rows:
//     decode streams the matrix once, four rows per pass sharing the
//     activation loads;
//   Level::rows<T>(c0, c1, w, row_bytes, n_rows, act, act_stride, out,
//     out_stride, add)  every row against T = 1..4 tokens over chunks
//     [c0, c1), out = (add ? out : 0) + dots: prefill reuses each decoded
//     chunk across the tokens of a tile.
// Prefill takes tiles of 4 tokens over blocks of 32 chunks (4096 inputs: 16
// KiB of activations stay in L1 while every row passes); the first block
// stores, so K = 0 still writes zeros.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/ternary_layout.h"
#include "quant/quantize_act.h"

namespace mce {

constexpr int kTernaryTokTile = 4;
constexpr int64_t kTernaryKBlock = 32;  // chunks

template <class Level, int T>
inline void ternary_rows_upto(int nt, int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, int n_rows,
                              const int8_t* act, size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
  if (nt == T) {
    Level::template rows<T>(c0, c1, w, row_bytes, n_rows, act, act_stride, out, out_stride, add);
  } else if constexpr (T > 1) {
    ternary_rows_upto<Level, T - 1>(nt, c0, c1, w, row_bytes, n_rows, act, act_stride, out, out_stride, add);
  }
}

template <class Level>
void ternary_dots_tiled(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act,
                        size_t act_stride, int n_tok, int32_t* out, int64_t out_stride) {
  const int64_t nc = K / kTernaryChunk;
  if (n_tok == 1) {
    int r = 0;
    for (; r + 4 <= n_rows; r += 4) Level::template decode<4>(nc, w + r * row_bytes, row_bytes, act, out + r);
    for (; r < n_rows; ++r) Level::template decode<1>(nc, w + r * row_bytes, row_bytes, act, out + r);
    return;
  }
  for (int t = 0; t < n_tok; t += kTernaryTokTile) {
    const int nt = std::min(kTernaryTokTile, n_tok - t);
    for (int64_t c0 = 0; c0 == 0 || c0 < nc; c0 += kTernaryKBlock)
      ternary_rows_upto<Level, kTernaryTokTile>(nt, c0, std::min(nc, c0 + kTernaryKBlock), w, row_bytes, n_rows,
                                                act + t * act_stride, act_stride, out + t * out_stride, out_stride,
                                                c0 > 0);
  }
}

// The scalar end of a level's ternary_quantize: inputs [k0, K) with the
// reference's arithmetic, their sum added to *sum.
inline void ternary_quantize_tail(const float* x, int64_t k0, int64_t K, float inv, int8_t* a, int32_t* sum) {
  for (int64_t k = k0; k < K; ++k) {
    const int q = std::clamp(round_nearest_even(x[k] * inv), -128, 127);
    a[k] = int8_t(q);
    *sum += q;
  }
}

}  // namespace mce
