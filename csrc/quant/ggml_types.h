// ggml tensor type ids as they appear in GGUF tensor infos, and the geometry
// (elements per block, bytes per block) the file format defines for each.
// Source of truth: ggml/include/ggml.h enum ggml_type and gguf-py's
// GGML_QUANT_SIZES. Geometry is known for every id so the reader can check
// tensor sizes even for types this runtime cannot compute with.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeGeometry {
  const char* name;      // nullptr for ids that are not a known type
  uint32_t block_size;   // elements per block
  uint32_t type_size;    // bytes per block
};

// Geometry of a type id; name == nullptr when the id is unknown.
TypeGeometry type_geometry(uint32_t type_id);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(GgmlType t, int64_t n) {
  TypeGeometry g = type_geometry(static_cast<uint32_t>(t));
  return static_cast<size_t>(n / g.block_size) * g.type_size;
}

}  // namespace mce
