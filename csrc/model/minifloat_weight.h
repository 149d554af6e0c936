// Binding and repacking of minifloat matrices (docs/FORMAT.md "Minifloats").
#pragma once
#include <cstdint>
#include <vector>

#include "gguf/gguf_file.h"
#include "model/weights.h"

namespace mce {

// The matrix `t` (its codes, I8) described by minicpm_edge.minifloat.<name>
// = desc, with <name>.scale (and, NVFP4, <name>.tensor_scale). Every value
// of the descriptor and every shape is checked, and so are the scales (and
// the codes of 8-bit elements): a hostile file gets a FormatError or an
// UnsupportedError, never a crash.
Weight as_minifloat_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, const gguf::Value& desc, int64_t rows,
                           int64_t cols);

// A minifloat Weight over codes and scales in the file's layout (checked as
// above, with `what` naming the matrix in messages).
Weight minifloat_weight(const MiniFloatFormat& fmt, const uint8_t* codes, const uint8_t* scales, int64_t rows,
                        int64_t cols, const std::string& what);

// An integer-valued minifloat matrix whose every block of 32 has one scale s
// with s / m a binary16 value (m = 2 or 8: E2M1 or E2M3 elements; true for
// f16 groups of 32 or more and MX blocks of real weights, rarely for NVFP4's
// two E4M3 scales per 32) is exactly a Q8_0 matrix: q = m v, d = s / m. Then
// `m` becomes that Q8_0 matrix (rows in a new buffer of `storage`), which the
// Q8_0 kernels (packed int8 GEMM, dots, decoders) run as any other, and this
// returns true; otherwise it returns false and leaves `m` as it is.
bool minifloat_to_q8_0(Weight& m, const gguf::GgufFile* file, std::vector<AlignedBuffer>& storage);

// Repacks an integer-valued minifloat matrix into mf8 rows (no-op for the
// others), keeping the copy in `storage`.
void pack_minifloat(Weight& m, const gguf::GgufFile* file, std::vector<AlignedBuffer>& storage);

// Inputs [k0, k1) of row r to f32 (the mf8 copy when there is one, else the codes).
void minifloat_row(const Weight& w, int64_t r, int64_t k0, int64_t k1, float* out);

}  // namespace mce
