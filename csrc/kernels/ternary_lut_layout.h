// Ternary layout "tl3" (docs/FORMAT.md "Ternary"): 1.67 bits per weight,
// multiplied by table lookup. bitnet.cpp's TL2 idea (Wang et al., 2025,
// "Bitnet.cpp: Efficient Edge Inference for Ternary LLMs", arXiv 2502.11880)
// in our own arrangement: three ternary weights (w0, w1, w2) are the balanced
// base-3 number v = 9 w0 + 3 w1 + w2 in [-13, 13], stored as a 4-bit index
// |v| and a sign bit [v < 0]. Mirror symmetry does the rest: the 27 patterns
// of a group of three inputs need only the 14 table entries
//   T[i] = sum_j digit_j(i) a_j   (i = 0..13, the digits of i in balanced base 3),
// and pattern -i reads T[i] negated. Entries 14 and 15 are 0 (no valid file
// uses them).
//
// Blocks of 32 rows (the last one padded with zero rows); a block is the rows'
// inputs in "octets" of 48 (16 groups of three; K is padded with zero weights
// to a multiple of 48), 320 bytes each:
//   bytes   0..31   signs of rows 0..15: byte 16 l + j, bit p = sign of row j,
//                   group 2p + l of the octet;
//   bytes  32..63   the same for rows 16..31 (row 16 + j);
//   bytes  64 + 32 p + 16 l + j (p = 0..7, l = 0, 1, j = 0..15): low nibble the
//                   index of row j, high nibble that of row 16 + j, group 2p + l.
// Why this order: 16 bytes hold one group's indices for 16 rows, so one
// 16-byte table lookup (x86 pshufb, NEON tbl) gives 16 rows' products with
// that group, and a 32-byte vector covers two groups (the two 16-byte lanes
// of AVX2 look up in two tables). A block is one contiguous stream, and its
// 32 rows take one table build per token.
//
// The kernels apply a sign as one's complement, x XOR -1 = -x - 1, on the
// looked-up bytes (both bytes of the int16 entry), so a row's sum comes out
// short by its number of negative groups; that count depends on the weights
// only and is added back (ternary_lut_row_bias, computed at load).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

constexpr int kTernaryTL3 = 3;
constexpr int kTl3BlockRows = 32;
constexpr int64_t kTl3OctetInputs = 48;
constexpr size_t kTl3OctetBytes = 320;
// Table bytes per octet and token, every level (16 groups x 16 int16 entries).
constexpr size_t kTl3OctetTableBytes = 512;

inline int64_t tl3_octets(int64_t K) { return (K + kTl3OctetInputs - 1) / kTl3OctetInputs; }
inline int64_t tl3_blocks(int64_t M) { return (M + kTl3BlockRows - 1) / kTl3BlockRows; }
inline size_t tl3_block_bytes(int64_t K) { return size_t(tl3_octets(K)) * kTl3OctetBytes; }
inline size_t tl3_table_bytes(int64_t K) { return size_t(tl3_octets(K)) * kTl3OctetTableBytes; }

// Balanced base-3 digits (w0, w1, w2) of table index i (0 for i = 14, 15).
extern const int8_t kTl3Digits[16][3];

// The index (0..15) and sign (1: negative) of row r (0..31) of a block, group g.
inline void tl3_entry(const uint8_t* block, int r, int64_t g, int* index, int* negative) {
  const uint8_t* octet = block + size_t(g / 16) * kTl3OctetBytes;
  const int gi = int(g % 16), p = gi / 2, l = gi % 2, j = r % 16, half = r / 16;
  const uint8_t nib = octet[64 + 32 * p + 16 * l + j];
  *index = half ? nib >> 4 : nib & 15;
  *negative = (octet[32 * half + 16 * l + j] >> p) & 1;
}

// Inputs [k0, k1) of row r of a matrix (blocks from w, K inputs) decoded to
// f32: out[k - k0] = s * t (exact).
void tl3_decode_row(const uint8_t* w, int64_t K, int64_t r, int64_t k0, int64_t k1, float scale, float* out);

// Per row of a matrix of `rows` rows (padded rows included, 32 per block):
// the number of groups stored with the sign bit set.
void tl3_row_bias(const uint8_t* w, int64_t rows, int64_t K, int32_t* bias);

}  // namespace mce
