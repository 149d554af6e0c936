// Scalar reference decoders: one row of a ggml tensor -> f32. Bit-for-bit equal
// to gguf-py's gguf.quants.dequantize (and so to ggml's dequantize_row_*),
// which the tests use as the oracle.
#pragma once
#include <cstdint>

#include "quant/ggml_types.h"

namespace mce {

// Whether dequantize_row handles type t.
bool can_dequantize(GgmlType t);

// Decodes n elements (a multiple of t's block size) from src into dst. src
// must be aligned to 2 bytes. Throws mce::UnsupportedError naming the type
// for types without a decoder, mce::ArgumentError for a ragged n.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);

}  // namespace mce
