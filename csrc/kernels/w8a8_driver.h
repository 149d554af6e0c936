// The loops every SIMD level's w8a8_dots shares (W8A8DotsFn in
// kernels/dispatch.h), around the level's own register tile:
//   Level::tile<R, T>(steps, w, group_bytes, act, act_stride, sums, out,
//     out_stride)  R groups of 16 rows (group_bytes apart) against T tokens
//     over every 64-byte step: out[t * out_stride + 16 r + i] = the dots.
//   Level::kDecodeGroups  R for one token (decode streams the matrix once, R
//     groups per pass sharing each activation broadcast);
//   Level::kGroups, Level::kTokens  R and T of prefill.
// Prefill takes the groups in runs of kGroups (their weights stay in L1) and
// sweeps all tokens past them kTokens at a time; the caller's token tile keeps
// the activations in L2 (kernels/w8a8_matmul.cpp).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/w8a8_layout.h"

namespace mce {

template <class Level, int R, int T>
inline void w8a8_tile_upto(int nt, int64_t steps, const uint8_t* w, size_t gb, const int8_t* act, size_t act_stride,
                           const int32_t* sums, int32_t* out, int64_t out_stride) {
  if (nt == T) {
    Level::template tile<R, T>(steps, w, gb, act, act_stride, sums, out, out_stride);
  } else if constexpr (T > 1) {
    w8a8_tile_upto<Level, R, T - 1>(nt, steps, w, gb, act, act_stride, sums, out, out_stride);
  }
}

template <class Level, int R>
inline void w8a8_tokens(int64_t steps, const uint8_t* w, size_t gb, const int8_t* act, size_t act_stride,
                        const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  constexpr int T = Level::kTokens;
  for (int t = 0; t < n_tok; t += T)
    w8a8_tile_upto<Level, R, T>(std::min(T, n_tok - t), steps, w, gb, act + size_t(t) * act_stride, act_stride,
                                sums + t, out + int64_t(t) * out_stride, out_stride);
}

template <class Level>
void w8a8_dots_tiled(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
                     const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  const int64_t steps = w8a8_padded_cols(K) / 4;
  const size_t gb = w8a8_group_bytes(K);
  if (n_tok == 1) {
    constexpr int R = Level::kDecodeGroups;
    int64_t g = 0;
    for (; g + R <= n_groups; g += R)
      Level::template tile<R, 1>(steps, w + size_t(g) * gb, gb, act, act_stride, sums, out + kW8A8Rows * g, out_stride);
    for (; g < n_groups; ++g)
      Level::template tile<1, 1>(steps, w + size_t(g) * gb, gb, act, act_stride, sums, out + kW8A8Rows * g, out_stride);
    return;
  }
  constexpr int R = Level::kGroups;
  int64_t g = 0;
  for (; g + R <= n_groups; g += R)
    w8a8_tokens<Level, R>(steps, w + size_t(g) * gb, gb, act, act_stride, sums, n_tok, out + kW8A8Rows * g, out_stride);
  for (; g < n_groups; ++g)
    w8a8_tokens<Level, 1>(steps, w + size_t(g) * gb, gb, act, act_stride, sums, n_tok, out + kW8A8Rows * g, out_stride);
}

}  // namespace mce
