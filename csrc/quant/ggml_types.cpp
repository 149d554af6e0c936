// Block geometry of every ggml type id a GGUF file may name. Values follow
// gguf-py's GGML_QUANT_SIZES (gguf-py/gguf/constants.py), which mirrors the
// block structs in ggml/src/ggml-common.h; tests/test_gguf_reader.py checks
// this table against the installed gguf package id by id (Q8_1 excepted, below).
#include "quant/ggml_types.h"

namespace mce {

namespace {

struct Entry {
  uint32_t id;
  TypeGeometry geometry;
};

// Exactly the ids of GgmlType. Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4 ...) and
// 36-38 (IQ4_NL_4_4 ...) were removed from ggml; ids above 39 (NVFP4, Q1_0, ...)
// are newer than this runtime. Both are unknown, so the reader rejects them and
// every accepted tensor type is a GgmlType value (tables indexed by id rely on it).
//
// Q8_1 is 36 bytes: ggml-common.h defines block_q8_1 as two ggml_half plus 32
// int8 (static_assert there). gguf-py still lists 4 + 4 + 32 from the older
// float-scale layout; ggml's loader sizes tensors with the struct, so we do too.
constexpr Entry kTable[] = {
    {0, {"F32", 1, 4}},          {1, {"F16", 1, 2}},
    {2, {"Q4_0", 32, 18}},       {3, {"Q4_1", 32, 20}},
    {6, {"Q5_0", 32, 22}},       {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},       {9, {"Q8_1", 32, 36}},
    {10, {"Q2_K", 256, 84}},     {11, {"Q3_K", 256, 110}},
    {12, {"Q4_K", 256, 144}},    {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},    {15, {"Q8_K", 256, 292}},
    {16, {"IQ2_XXS", 256, 66}},  {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}},  {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},    {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},    {23, {"IQ4_XS", 256, 136}},
    {24, {"I8", 1, 1}},          {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},         {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},         {29, {"IQ1_M", 256, 56}},
    {30, {"BF16", 1, 2}},        {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},    {39, {"MXFP4", 32, 17}},
};

// Direct lookup by id: row_bytes() calls this on hot paths.
constexpr uint32_t kMaxId = 64;

struct Lookup {
  TypeGeometry by_id[kMaxId] = {};
  constexpr Lookup() {
    for (const Entry& e : kTable) by_id[e.id] = e.geometry;
  }
};

constexpr Lookup kLookup{};

}  // namespace

TypeGeometry type_geometry(uint32_t type_id) {
  if (type_id >= kMaxId) return TypeGeometry{nullptr, 0, 0};
  return kLookup.by_id[type_id];
}

}  // namespace mce
