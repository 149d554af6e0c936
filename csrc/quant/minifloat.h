// Minifloat weights with block scales (docs/FORMAT.md "Minifloats"): the
// element formats FP8 E4M3 / E5M2, FP6 E3M2 / E2M3 and FP4 E2M1 (OCP
// Microscaling Formats v1.0) under one of three scalings:
//   F16:  an IEEE binary16 scale per group of G inputs (our e{E}m{M}g{G});
//   E8M0: OCP MX, a power-of-two scale 2^(c - 127) per block of 32 (the MX
//         v1.0 formats MXFP8, MXFP6, MXFP4);
//   NVFP4: E2M1 elements, an E4M3 scale per block of 16 times one f32 tensor
//         scale (NVIDIA, "Introducing NVFP4", 2025).
// A weight is w = v(code) * s in f32, s the block's scale (NVFP4: s =
// f32(tensor_scale * e4m3(c)), the product rounded once). This is the codec:
// the value tables, the scale decoding and the scalar row decoder every
// kernel is checked against.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

enum class MfScaling : uint8_t { F16 = 0, E8M0 = 1, NvFp4 = 2 };

struct MiniFloatFormat {
  int exp_bits = 0;  // 0: not a minifloat matrix
  int man_bits = 0;
  int block = 0;     // inputs per scale
  MfScaling scaling = MfScaling::F16;
  float tensor_scale = 1.0f;  // NVFP4 only

  int bits() const { return 1 + exp_bits + man_bits; }
  bool valid() const;
  // Bytes of one row's codes (K * bits / 8; K a multiple of the block).
  size_t code_row_bytes(int64_t K) const { return size_t(K) * size_t(bits()) / 8; }
  // Bytes of one row's block scales (K / block of 2 bytes for F16, else 1).
  size_t scale_row_bytes(int64_t K) const {
    return size_t(K / block) * (scaling == MfScaling::F16 ? 2 : 1);
  }
  // The multiplier m that makes every element value an integer that fits
  // int8 (E2M1: v*2 in [-12, 12]; E2M3: v*8 in [-60, 60]); 0 when the
  // element values are not small integers (E4M3, E5M2, E3M2).
  int int_multiplier() const;
};

// Value of every code 0 .. 2^bits - 1 of the element format (sign is the top
// bit; E4M3's S.1111.111 is NaN, E5M2's exponent 31 Inf/NaN), or nullptr for
// a format that is not one of the five.
const float* minifloat_table(int exp_bits, int man_bits);
// Whether a code of an 8-bit element format is Inf or NaN (never in a valid file).
bool minifloat_code_special(int exp_bits, int man_bits, uint32_t code);

// Code k of a row whose codes form a little-endian bit string (code k in
// bits k*b .. k*b+b-1).
static inline uint32_t minifloat_code(const uint8_t* row, int bits, int64_t k) {
  if (bits == 8) return row[k];
  if (bits == 4) return (row[k >> 1] >> ((k & 1) * 4)) & 0xFu;
  // 6 bits: four codes per three bytes.
  const uint8_t* g = row + (k >> 2) * 3;
  const uint32_t word = uint32_t(g[0]) | uint32_t(g[1]) << 8 | uint32_t(g[2]) << 16;
  return (word >> ((k & 3) * 6)) & 0x3Fu;
}

// Scale of block j of a row (scales: the row's entries of the scale tensor).
float minifloat_block_scale(const MiniFloatFormat& f, const uint8_t* scales, int64_t j);

// The scalar reference decoder: inputs [k0, k1) of one row to f32.
void minifloat_decode_row(const MiniFloatFormat& f, const uint8_t* codes, const uint8_t* scales, int64_t k0,
                          int64_t k1, float* out);

// Checks a row's scales (and, for 8-bit elements, its codes) for values no
// writer produces: NaN/Inf scales, E8M0 code 255, negative or NaN NVFP4 block
// scales, Inf/NaN element codes. Returns a description of the first problem,
// or nullptr.
const char* minifloat_row_problem(const MiniFloatFormat& f, int64_t K, const uint8_t* codes, const uint8_t* scales);

}  // namespace mce
