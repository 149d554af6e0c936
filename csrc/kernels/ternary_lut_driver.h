// The loop every SIMD level's ternary_lut_dots (TernaryLutDotsFn in
// kernels/dispatch.h) shares, around the level's block kernel
//   Level::block<T>(octets, block, bias, tables, table_stride, out,
//                   out_stride, prefetch)
// (one block of 32 rows against T tokens' tables, T = Tile or 1): blocks
// outside, tokens inside, so a block (K * 20 / 3 bytes) stays in L1/L2 while
// the tokens pass, and only the first pass over a block prefetches.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut_layout.h"

namespace mce {

template <class Level, int Tile>
void tl3_dots_tiled(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* bias, const uint8_t* tables,
                    size_t table_stride, int n_tok, int32_t* out, int64_t out_stride) {
  const int64_t octets = tl3_octets(K);
  const size_t block_bytes = tl3_block_bytes(K);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = w + size_t(b) * block_bytes;
    const int32_t* bb = bias + b * kTl3BlockRows;
    int t = 0;
    if constexpr (Tile > 1)
      for (; t + Tile <= n_tok; t += Tile)
        Level::template block<Tile>(octets, block, bb, tables + size_t(t) * table_stride, table_stride,
                                    out + int64_t(t) * out_stride + b * kTl3BlockRows, out_stride, t == 0);
    for (; t < n_tok; ++t)
      Level::template block<1>(octets, block, bb, tables + size_t(t) * table_stride, table_stride,
                               out + int64_t(t) * out_stride + b * kTl3BlockRows, out_stride, t == 0);
  }
}

}  // namespace mce
