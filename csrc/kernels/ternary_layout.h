// Ternary weights (docs/FORMAT.md "t2"): BitNet b1.58 (Ma et al., 2024,
// arXiv 2402.17764) and llama.cpp's TQ2_0 store every weight of a matrix as
// w = s * t, t in {-1, 0, +1}, with one scale s per tensor (BitNet's absmean
// scale). The runtime multiplies them with int8 activations quantized per
// token as BitNet's BitLinear does (absmax over the row), so a product is one
// exact integer dot per row and token and one float multiply at the end —
// no per-block scales, no multiplications by weights at all.
//
// Layout "t2" (2 bits per weight; bitnet.cpp's I2_S idea): code q = t + 1 in
// {0, 1, 2}. A row of K weights (K a multiple of 128) is K/128 chunks of 32
// bytes; byte j of chunk c holds the codes of inputs 128c + j + 32i at bits
// 2i..2i+1 (i = 0..3) — TQ2_0's arrangement of the codes of one 128-input
// half-block, without its per-block binary16 scale. Why: a kernel loads 32
// bytes and gets the four 32-input quarters of the chunk with one shift and
// one mask each, byte j of quarter i lining up with input 32i + j of the
// activations (AVX2: one 32-byte vector per quarter; NEON: two 16-byte ones).
// The file's layout is the kernels' layout: the matrix is used in place.
//
// The products are sum_k q_k a_k - sum_k a_k = sum_k t_k a_k (a: the int8
// activations), so the kernels multiply unsigned codes by signed int8 (the
// u8 x s8 multiply-adds of AVX2 / AVX-512 and the dot products of NEON) and
// the driver subtracts the activations' sum once per token.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

struct TernaryFormat {
  int kind = 0;        // 0: not ternary; kTernaryT2
  float scale = 0.0f;  // s of w = s * t (per tensor)
};

constexpr int kTernaryT2 = 2;
constexpr int64_t kTernaryChunk = 128;          // inputs per 32-byte chunk
constexpr size_t kTernaryChunkBytes = 32;

inline size_t ternary_row_bytes(int64_t K) { return size_t(K / kTernaryChunk) * kTernaryChunkBytes; }

// The code (0, 1, 2; 3 never occurs in a valid file and decodes as +2) of
// input k of a row.
inline int ternary_code(const uint8_t* row, int64_t k) {
  const uint8_t byte = row[(k / kTernaryChunk) * int64_t(kTernaryChunkBytes) + (k % 32)];
  return (byte >> (2 * ((k % kTernaryChunk) / 32))) & 3;
}

// Row of K weights decoded to f32: s * (q - 1) (exact).
void ternary_decode_row(const uint8_t* row, int64_t K, float scale, float* out);

// Per-token int8 activations as BitNet's BitLinear (transformers'
// integrations/bitnet.py, ActQuant / activation_quant):
//   inv = 127 / max(max_k |x_k|, 1e-5)   (one f32 division),
//   a_k = clamp(nearest_even(x_k * inv), -128, 127),
// returned with inv and sum_k a_k (the ternary offset term).
struct TernaryActivation {
  float inv = 0.0f;   // a_k ~ x_k * inv
  int32_t sum = 0;
};

}  // namespace mce
