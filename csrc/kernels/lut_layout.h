// Low-bit group-quantized weights (docs/FORMAT.md, "w{b}g{G}") and the tile
// layout the table-lookup (T-MAC) kernels read, made once at load.
//
// Why this layout (T-MAC, Wei et al., EuroSys'25, arXiv 2407.00088): a b-bit
// code q = sum_i 2^i q_i is b one-bit planes; with s_i = 2 q_i - 1 in {-1, +1}
//   q = sum_i 2^(i-1) s_i + (2^b - 1)/2,
// so a dot product over 4 inputs x_0..x_3 needs, per plane, only the signed
// sum T[t] = sum_r (bit r of t ? +x_r : -x_r) for the plane's 4-bit pattern
// t: one of 16 values, tabulated once per token and shared by every row. The
// table (int8, 16 bytes) is exactly what one byte shuffle (AVX2 vpshufb, NEON
// tbl) indexes, so 32 lookups replace 32 x 4 multiply-adds.
//
// Tile = 16 consecutive rows (the last tile of a matrix is padded with zero
// codes and zero scales). A tile is K/G groups back to back; one group is
//   d[16] binary16 | m[16] binary16 (asymmetric only) | G/16 steps,
// a step covering 4 chunks of 4 inputs (chunks c..c+3) with b vectors of 32
// bytes. The nibbles of a vector are 4-bit plane patterns; 128-bit lane L
// of a vector is looked up in the table of one chunk:
//   "pair"   vector of planes (a, a+1), chunks (c, c+1): lane L is chunk c+L;
//            its byte 2i holds plane a of row i (low nibble) and of row 8+i
//            (high nibble), byte 2i+1 the same for plane a+1 (i = 0..7);
//   "single" vector of plane a, chunks c..c+3: byte p (0..15) of lane L
//            belongs to row p, low nibble chunk c+L, high nibble chunk c+2+L.
// Step order:  b=1: single(0)
//              b=2: pair(0,1; c)  pair(0,1; c+2)
//              b=3: pair(0,1; c)  pair(0,1; c+2)  single(2)
//              b=4: pair(0,1; c)  pair(2,3; c)  pair(0,1; c+2)  pair(2,3; c+2)
// A kernel looks the low and the high nibbles up with one byte shuffle each.
// In a pair vector the two planes of a row then sit side by side, and one
// u8 x s8 multiply-add weighs them by 2^a and 2^(a+1) into one int16 per
// row; a single vector's two lookups of a row are interleaved first.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

struct LowBitFormat {
  int bits = 0;          // 1..4; 0: not a low-bit matrix
  int group = 0;         // 32, 64 or 128 inputs per scale
  bool has_min = false;  // asymmetric (w = d q + m) or symmetric (w = d (q - (2^b-1)/2))
};

constexpr int kLutTileRows = 16;
constexpr int kLutChunk = 4;    // inputs per table
constexpr int kLutStep = 16;    // inputs per step (4 chunks)

// One 32-byte vector of a step: a pair of planes (plane, plane+1) over the
// chunk pair (chunk, chunk+1), or a single plane over chunks 0..3 of the step.
struct LutStepVector {
  int plane;
  int chunk;  // first chunk, relative to the step
  bool pair;
};
// The b vectors of one step, in layout order (the step order above).
const LutStepVector* lut_step_vectors(int bits);

// Where one 4-bit plane pattern of row r (0..15) sits in a vector, for lane
// L (0, 1) and nibble half h (0 low, 1 high): byte, bit shift (0 or 4), and
// which plane and chunk of the step it describes. Packing writes these slots;
// decoding and the scalar reference read them.
struct LutSlot {
  int byte, shift, plane, chunk;
};
inline LutSlot lut_slot(const LutStepVector& v, int r, int lane, int half) {
  if (v.pair) return {16 * lane + 2 * (r % 8) + half, r < 8 ? 0 : 4, v.plane + half, v.chunk + lane};
  return {16 * lane + r, 4 * half, v.plane, v.chunk + lane + 2 * half};
}

// Whether the format is one the kernels implement (bits 1..4, group 32/64/128).
bool lowbit_format_valid(const LowBitFormat& f);
// Bytes of one tile of a matrix with K inputs (K a multiple of the group).
size_t lut_tile_bytes(const LowBitFormat& f, int64_t K);
// Bytes of one row of codes in the file layout: K*b/8.
size_t lowbit_code_row_bytes(const LowBitFormat& f, int64_t K);

// Code k of a row in the file layout (a little-endian bit string).
int lowbit_code(const uint8_t* row, int bits, int64_t k);

// The value docs/FORMAT.md defines for code q of a group with scale d and
// minimum m (m unused when symmetric): d*q + m, or d*(q - (2^b-1)/2), the
// product rounded first.
inline float lowbit_weight(const LowBitFormat& f, int q, float d, float m) {
  return f.has_min ? float(q) * d + m : d * (float(q) - float((1 << f.bits) - 1) * 0.5f);
}

// One row in the file layout decoded to f32 (an embedding row): codes, and
// its K/G scales and minimums (min nullptr when symmetric), by lowbit_weight.
void lowbit_dequantize_row(const LowBitFormat& f, int64_t K, const uint8_t* codes, const uint16_t* scale,
                           const uint16_t* min, float* out);

// Packs rows [0, n_rows) (n_rows <= 16; the rest of the tile is zero) given
// in the file layout: codes (code_row_bytes apart), scales and minimums
// (K/G binary16 per row, rows scale_stride apart; min nullptr when
// symmetric) into one tile.
void lut_pack_tile(const LowBitFormat& f, int64_t K, const uint8_t* codes, size_t code_row_bytes,
                   const uint16_t* scale, const uint16_t* min, int64_t scale_stride, int n_rows, uint8_t* dst);

// Decodes inputs [k0, k1) (multiples of the group) of row r (0..15) of a
// tile to f32: w = d*q + m, or d*(q - (2^b-1)/2), product first, as
// docs/FORMAT.md defines the values.
void lut_decode_row(const LowBitFormat& f, int64_t K, const uint8_t* tile, int r, int64_t k0, int64_t k1, float* out);

// One tile as two Q4_1x8 packed groups (kernels/packed_layout.h; rows 0-7,
// then rows 8-15; K/32 blocks of 160 bytes each), for prefill through the
// int8 GEMM ("dequantize to int8 tiles", the alternative to table lookup for
// large batches). Codes are the 4-bit quants as they are; each 32-block takes
// its group's d and m. Asymmetric groups convert exactly (w = d q + m is
// Q4_1's value); symmetric ones get m = binary16(-d (2^b - 1)/2), which
// rounds m by at most 2^-11 relative.
void lut_tile_to_q4_1x8(const LowBitFormat& f, int64_t K, const uint8_t* tile, uint8_t* dst);

// Bytes the per-token tables need: K/4 tables of 16 int8, then K/G floats of
// half scales and K/G floats of group sums (64-byte aligned pieces).
size_t lut_activation_bytes(const LowBitFormat& f, int64_t K);

// Per-token table set inside a buffer of lut_activation_bytes.
struct LutActivation {
  int8_t* tables;     // [K/4][16]
  float* half_sigma;  // [K/G]
  float* xsum;        // [K/G]
};
LutActivation lut_activation_view(const LowBitFormat& f, int64_t K, uint8_t* buffer);

}  // namespace mce
