// llama.cpp's ternary block types TQ1_0 / TQ2_0 (ggml-common.h; PR #8151) taken
// into the runtime's t2 layout at load (kernels/ternary_layout.h), so ternary
// GGUF files from llama.cpp run through the same kernels as our own.
//
// TQ2_0 (66 bytes per 256 weights): qs[64] then a binary16 d; each 32-byte half of
//   qs holds 128 weights in exactly the t2 chunk arrangement (byte m: weights m,
//   m+32, m+64, m+96 at bits 0,2,4,6; code t+1), so its rows are t2 rows once the
//   d's are dropped.
// TQ1_0 (54 bytes per 256): qs[48] with five trits per byte, qh[4] with four, then
//   d. A byte stores q = sum_n 3^(4-n) t_n as ceil(q * 256 / 243), so trit n is
//   ((uint8)(byte * 3^n) * 3) >> 8 (most significant first). Weights 0..159 come from
//   qs[0..31] (weight 32n + m from byte m, trit n), 160..239 from qs[32..47]
//   (160 + 16n + m from byte 32 + m), 240..255 from qh (240 + 4n + j from qh[j]).
// Weights are d * (t - 1) with one d per block; a ternary model has one scale per
// tensor, so every block that is not all zeros carries the same d. Tensors whose
// blocks disagree are not per-tensor ternary and are refused.
#pragma once
#include <cstdint>

#include "quant/ggml_types.h"

namespace mce {

// Rewrites `rows` rows of K weights (K a multiple of 256) of type TQ1_0 or TQ2_0
// into t2 codes (dst: rows * K/4 bytes) and returns the common scale d in *scale
// (0 when every block is zero). Returns false when two nonzero blocks have
// different scales (dst is then unspecified).
bool ternary_from_tq(GgmlType type, const uint8_t* src, int64_t rows, int64_t K, uint8_t* dst, float* scale);

}  // namespace mce
