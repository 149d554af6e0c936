// Interleaved-8 weight layouts ("x8"), made once at load from GGUF rows.
//
// Why: a GGUF row is one output's weights, so a plain GEMV computes one dot
// product per row and ends each with a horizontal sum, and a GEMM re-decodes
// every weight block for every token. Packing 8 consecutive rows block by
// block so that one 32-byte vector holds 4 consecutive weights of each of the
// 8 rows lets a single u8 x s8 multiply-add (x86 maddubs/dpbusd, ARM sdot)
// against 4 broadcast activation bytes produce one partial sum per row: the 8
// rows' results come out in the 8 lanes, ready to store, and a decoded weight
// vector serves several tokens in a row. llama.cpp's Q4_0 "repack" for AVX2
// rests on the same observation; this layout is our own.
//
// Layout of one group (8 rows) = nb blocks of 32 columns each, back to back:
//   Q4_0x8: uint16 d[8]                 | uint8 qs[128]   (144 bytes)
//   Q4_1x8: uint16 d[8] | uint16 m[8]   | uint8 qs[128]   (160 bytes)
//   Q8_0x8: uint16 d[8]                 | int8  qs[256]   (272 bytes)
// d/m are binary16, row r's scale (and minimum) at index r.
// 4-bit qs: vector j (bytes 32j..32j+31, j < 4) holds at bytes 4r..4r+3 the
//   GGUF block bytes qs[4j..4j+3] of row r; their low nibbles are elements
//   4j..4j+3 and their high nibbles elements 16+4j..16+4j+3 (ggml's Q4 order).
// 8-bit qs: vector s (s < 8) holds at bytes 4r..4r+3 elements 4s..4s+3 of row r.
//
// Only whole groups are packed; rows past the last multiple of 8 stay in the
// GGUF layout and go through the per-row dot products.
//
// 16-bit float weights (F16, BF16) use panels of 16 rows stored k-major
// ("x16"): column k of the group is 16 consecutive 16-bit values, row r at
// index r, so a group is cols * 32 bytes. That is the panel the f32 GEMM
// consumes (kPanelRows in kernels/dispatch.h) after an exact widening, and
// the decode GEMV streams it once, front to back, producing 16 outputs
// without a horizontal sum. Rows past the last multiple of 16 stay in the
// GGUF layout.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/ggml_types.h"

namespace mce {

// LutTile: low-bit weights in the tiles of kernels/lut_layout.h (16 rows).
enum class PackedKind : uint8_t { None = 0, Q4_0x8 = 1, Q4_1x8 = 2, Q8_0x8 = 3, F16x16 = 4, BF16x16 = 5, LutTile = 6 };
constexpr int kPackedKinds = 7;
constexpr int kPackRows = 8;         // rows per group of the quantized kinds
constexpr int kPanel16Rows = 16;     // rows per group of the 16-bit kinds
constexpr int kPackBlock = 32;  // columns per block

// The packed kind for a GGUF type (None: the type is not packed).
PackedKind packed_kind_for(GgmlType t);
// Bytes of one block of one group (144, 160 or 272); 0 for the 16-bit kinds.
size_t packed_block_bytes(PackedKind k);
// Whether a kind is one of the 16-bit panel kinds (F16x16, BF16x16).
constexpr bool is_panel16(PackedKind k) { return k == PackedKind::F16x16 || k == PackedKind::BF16x16; }
// Rows per group: 8, or 16 for the panel kinds.
int packed_group_rows(PackedKind k);
// Bytes of one group of a matrix with `cols` columns; 0 when the kind cannot
// pack such rows (quantized kinds need cols to be a multiple of 32).
size_t packed_group_bytes(PackedKind k, int64_t cols);

// Packs rows [8g, 8g+8) of a GGUF matrix whose rows are row_bytes apart into
// dst (nb * packed_block_bytes bytes), nb = cols / 32.
void pack_group(PackedKind k, const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* dst);

// Decodes row `r` (0..7) of one packed group to f32: the same values as the
// GGUF row's scalar decoder, bit for bit.
void unpack_group_row(PackedKind k, const uint8_t* group, int64_t nb, int r, float* dst);

// Packs 16 rows of 16-bit values (row_bytes apart, cols each) into one
// k-major panel (cols * 16 values).
void pack_panel16(const uint8_t* rows, size_t row_bytes, int64_t cols, uint16_t* dst);
// Row `r` (0..15) of a panel back to its 16-bit values.
void unpack_panel16_row(const uint16_t* panel, int64_t cols, int r, uint16_t* dst);

}  // namespace mce
