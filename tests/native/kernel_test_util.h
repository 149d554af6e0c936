// Shared helpers of the native kernel tests: the ISA levels to test, random
// rows of every weight and activation format (with the extremes the kernels
// must survive), and a double-precision oracle built from the scalar
// decoders. Tolerances are the ones kernels/dispatch.h documents.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize_act.h"

namespace mce::test {

// Levels this build and CPU run, scalar first. Each call records the levels in
// the list main() prints at the end ("ISA levels tested: ...").
std::vector<Isa> levels_to_test();
void note_tested(Isa isa);
// The recorded levels, comma separated ("none" before any test ran).
std::string tested_levels_summary();

using Rng = std::mt19937_64;

inline double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
inline int randint(Rng& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }  // inclusive
inline bool chance(Rng& rng, double p) { return uniform(rng, 0.0, 1.0) < p; }
void fill_random(Rng& rng, uint8_t* p, size_t n);

// Block geometry of the types the kernel table handles.
int64_t block_elems(GgmlType t);
size_t block_bytes(GgmlType t);

// A binary16 value of moderate size (2^-10 .. 2^10, either sign), used for
// scales; extreme scales are mixed in by the row generators.
uint16_t random_scale_f16(Rng& rng);
// Any finite binary16 (subnormals, zeros and +-65504 included).
uint16_t random_finite_f16(Rng& rng);
// A finite bfloat16 with exponent within 2^-40 .. 2^40, or zero/subnormal.
uint16_t random_bf16(Rng& rng);

// n elements of weight type t: random blocks, and now and then a block of
// zeros, a block of all-ones bits in the quants, the largest scale (65504),
// a subnormal scale, or (Q8_0) quants of -128.
std::vector<uint8_t> random_weight_row(Rng& rng, GgmlType t, int64_t n);

// n floats, block by block (32 at a time) in one of several regimes: normal,
// zero, tiny (scales go subnormal in binary16), large, mixed magnitudes,
// signed zeros.
std::vector<float> random_activation(Rng& rng, int64_t n);

// f32 row -> activation format fmt (F32, Q8_0, Q8_1, Q8_K) with the scalar
// quantizer.
std::vector<uint8_t> quantize_scalar(GgmlType fmt, const std::vector<float>& x);

// The activation row's values (d * q per element; F32 as is).
std::vector<double> decode_activation(GgmlType fmt, const uint8_t* act, int64_t n);

// The exact value of dot(weight row, activation row) and the magnitude M that
// scales its rounding bound: the weight is split into a scaled part a and an
// offset part b (Q4_1's m, Q4_K's -dmin*m; zero elsewhere), each decoded by
// the scalar decoder with the other field zeroed. Q4_1 against Q8_1 uses the
// activation's stored s for the offset term, as the kernels do.
struct Exact {
  double value = 0.0;
  double magnitude = 0.0;  // sum_i (|a_i| + |b_i|) |x_i|
};
Exact exact_dot(GgmlType wt, const uint8_t* w, GgmlType fmt, const uint8_t* act, int64_t n);

// dispatch.h: levels agree within 2 * eps_f32 * (L + 8) * M, L being the
// blocks per row (super-blocks for K-quants), or n/8 + 8 for float rows.
double dot_tolerance(GgmlType wt, int64_t n, double magnitude);

// The activation format a weight type's dot consumes.
inline GgmlType act_format(GgmlType wt) { return kernels_for(Isa::Scalar).weight[uint32_t(wt)].act_type; }

// Weight types with a dot product in the table, and the quantized ones.
extern const GgmlType kDotTypes[8];
// Names as strings (doctest prints a const char* as an address).
std::string type_name(GgmlType t);
inline std::string level_name(Isa isa) { return isa_name(isa); }

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace mce::test
