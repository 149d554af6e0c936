// Minifloat matrices whose element values are small integers once multiplied
// by a power of two (E2M1 x 2, E2M3 x 8: FP4, FP6-E2M3, MXFP4, MXFP6-E2M3,
// NVFP4), repacked at load into int8 rows so that they multiply by integer
// dot products against the Q8_0 activations the runtime already makes (the
// idea of llama.cpp's MXFP4 / IQ4_NL dots: a 16-entry table lookup to int8;
// here the lookup happens once, at load).
//
// Row layout ("mf8"): K/32 blocks of 40 bytes, block b =
//   float s[2]  | int8 q[32]
// where q[i] = m * v(code of input 32b + i) and s[h] = scale(input 32b + 16h) / m,
// m the format's int_multiplier. s[h] * q[i] equals the decoded weight
// exactly: dividing by m = 2 or 8 only lowers the exponent (exact unless the
// scale is below 2^-146, which no writer produces), and m * v is an integer.
// Two scales per 32 inputs because NVFP4 has one per 16; the g32/MX formats
// simply repeat theirs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/minifloat.h"

namespace mce {

constexpr int kMf8Block = 32;
constexpr size_t kMf8BlockBytes = 2 * sizeof(float) + kMf8Block;

// Whether a minifloat matrix of K inputs takes the int8 layout.
bool mf8_applies(const MiniFloatFormat& f, int64_t K);
inline size_t mf8_row_bytes(int64_t K) { return size_t(K / kMf8Block) * kMf8BlockBytes; }
// Repacks one row (codes and scales as in the file) into dst (mf8_row_bytes(K)).
void mf8_pack_row(const MiniFloatFormat& f, int64_t K, const uint8_t* codes, const uint8_t* scales, uint8_t* dst);
// Inputs [k0, k1) (multiples of 32) of an mf8 row to f32: s[h] * q[i], the
// same values as minifloat_decode_row.
void mf8_decode_row(const uint8_t* row, int64_t k0, int64_t k1, float* out);

}  // namespace mce
