// W8A8 weights (docs/FORMAT.md "W8A8"; SmoothQuant, Xiao et al. 2023, §4):
// int8 weights with one f32 scale per output row (per-channel, symmetric),
// multiplied by int8 activations quantized per token (dynamic absmax, as
// BitNet's BitLinear quantizer: kernels/ternary_layout.h TernaryActivation).
// Every product is one exact int32 dot per row and token and one float
// multiply at the end: y = dot * s_row / inv_token. There are no per-block
// scales, which is where the speed over Q8_0 comes from (Q8_0 converts and
// scales each 32-input block's sum in float).
//
// Runtime layout (made at load from the file's plain int8 rows): groups of 16
// rows, the inputs padded with zeros to a multiple of 16 (Kp). A group is Kp/4
// steps of 64 bytes; byte 4i + j of step s holds row i, input 4s + j, stored
// as the unsigned code q = w + 128 (offset binary). Rows past the matrix are
// zero weights (q = 128).
// Why this order: one 64-byte step is what one AVX-512 vpdpbusd multiplies
// against 4 activation bytes broadcast to every lane, leaving the 16 rows'
// partial sums in the 16 lanes (no horizontal sums); AVX2 takes a step as two
// 8-row halves, NEON as four 4-row quarters (one SDOT by lane each). Why
// offset binary: vpdpbusd multiplies unsigned by signed bytes, and with the
// weights as the unsigned operand the activations (signed) can be broadcast
// straight from memory; sum_k q a = sum_k w a + 128 sum_k a, and the token's
// sum comes with its quantization. The other levels flip the top bit back
// (one XOR per weight vector, shared by the tile's tokens).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

constexpr int kW8A8Rows = 16;       // rows per group
constexpr int64_t kW8A8KStep = 16;  // inputs are padded to a multiple of this
// Largest K the kernels take: the offset sums |sum_k q a| <= 255 * 128 * K
// stay below 2^31.
constexpr int64_t kW8A8MaxCols = 65536;

inline int64_t w8a8_padded_cols(int64_t K) { return (K + kW8A8KStep - 1) / kW8A8KStep * kW8A8KStep; }
inline size_t w8a8_group_bytes(int64_t K) { return size_t(w8a8_padded_cols(K)) * kW8A8Rows; }
inline int64_t w8a8_groups(int64_t rows) { return (rows + kW8A8Rows - 1) / kW8A8Rows; }

// The offset code of row i (< 16), input k of a group (Kp = padded inputs).
inline uint8_t w8a8_code(const uint8_t* group, int i, int64_t k) {
  return group[(k / 4) * 64 + 4 * i + (k % 4)];
}

// Packs rows [r0, r0 + n_rows) (n_rows <= 16) of a row-major int8 matrix with
// K inputs per row (rows row_bytes apart) into one group (w8a8_group_bytes(K)
// bytes). Returns false, leaving dst unspecified, when a weight is -128: the
// format is symmetric ([-127, 127]), and the AVX2 sign trick relies on it.
bool w8a8_pack_group(const int8_t* rows, size_t row_bytes, int n_rows, int64_t K, uint8_t* dst);

// Columns [k0, k1) of row i (< 16) of a group, times the row's scale, as f32
// (exact: an int8 times a float).
void w8a8_decode_row(const uint8_t* group, int i, int64_t k0, int64_t k1, float scale, float* out);

}  // namespace mce
