// Binds GGUF tensors to the roles of a decoder layer. Matrices stay in the
// mapping (zero copy, as llama2.c lays its weights onto the checkpoint); small
// 1-D tensors (norms, biases, rope factors) are expanded to f32 once.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "gguf/gguf_file.h"
#include "kernels/lut_layout.h"
#include "kernels/packed_layout.h"
#include "kernels/ternary_layout.h"
#include "kernels/w8a8_layout.h"
#include "model/config.h"
#include "quant/minifloat.h"

namespace mce {

// A row-major matrix of `rows` outputs x `cols` inputs in a ggml type
// (GGUF ne = [cols, rows]).
struct Weight {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;
  // Interleaved copy (kernels/packed_layout.h) of rows [0, packed_rows), a
  // multiple of the kind's group rows (8, or 16 for F16/BF16 panels); rows
  // from packed_rows on are read from `data` only.
  PackedKind packed_kind = PackedKind::None;
  int64_t packed_rows = 0;
  size_t packed_group_bytes = 0;
  const uint8_t* packed = nullptr;

  // Low-bit group quantization (docs/FORMAT.md "w{b}g{G}"; lowbit.bits > 0):
  // `data` holds the codes (row_bytes = K*b/8 per row), scale/min the
  // binary16 group parameters (K/G per row; min nullptr when symmetric). Such
  // a matrix is always packed, into tiles of kernels/lut_layout.h
  // (packed_kind LutTile, one tile of 16 rows per group).
  LowBitFormat lowbit{};
  const uint16_t* lowbit_scale = nullptr;
  const uint16_t* lowbit_min = nullptr;

  // Ternary (docs/FORMAT.md "Ternary"; ternary.kind > 0): `data` holds the
  // matrix in the kernels' layout, used in place, never packed. t2: codes,
  // row_bytes = K/4. tl3 (kernels/ternary_lut_layout.h): blocks of 32 rows,
  // row_bytes = 0, ternary_bias the rows' sign counts (tl3_row_bias, padded
  // rows included).
  TernaryFormat ternary{};
  const int32_t* ternary_bias = nullptr;

  // W8A8 (docs/FORMAT.md "W8A8"; w8a8_scale != nullptr): `data` holds the
  // int8 rows (row_bytes = K), w8a8_scale one f32 per row; w8a8_groups the
  // rows in the kernels' groups of 16 (kernels/w8a8_layout.h), packed at load.
  const float* w8a8_scale = nullptr;
  const uint8_t* w8a8_groups = nullptr;
  // Minifloat (docs/FORMAT.md "Minifloats"; minifloat.exp_bits > 0): `data`
  // holds the codes (row_bytes = K*bits/8), mf_scale the block scales as
  // stored (minifloat.scale_row_bytes(K) per row). Integer-valued formats
  // are also repacked into mf8 rows (kernels/minifloat_layout.h; mf8 !=
  // nullptr, mf8_row_bytes(K) apart), which both paths then read.
  MiniFloatFormat minifloat{};
  const uint8_t* mf_scale = nullptr;
  const uint8_t* mf8 = nullptr;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  const uint8_t* group(int64_t g) const { return packed + static_cast<size_t>(g) * packed_group_bytes; }
};

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  // BitNet's sub-norms (ModelConfig::sub_norms; empty otherwise).
  std::vector<float> attn_sub_norm, ffn_sub_norm;
  Weight wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;   // empty when the file has no attention biases
  Weight w_gate, w_up, w_down;
};

struct ModelWeights {
  Weight tok_embd;                 // [n_vocab rows x n_embd]
  std::vector<float> output_norm;
  Weight output;                   // LM head; the embedding table when tied
  std::vector<LayerWeights> layers;
  // Per-frequency divisors of RoPE (n_rot/2 each; empty when absent):
  // rope_freqs (Llama 3 scaling), rope_factors_long/short (LongRoPE).
  std::vector<float> rope_freqs, rope_long, rope_short;
  // Owners of the packed copies the Weights above point into (and of the
  // ternary matrices' copy, TQ1_0 / TQ2_0 tensors rewritten into t2 codes
  // included, and tl3 row biases).
  std::vector<AlignedBuffer> packed_storage;
};

// Memory for `bytes` of weights the kernels stream. Large matrices go on 2 MiB
// boundaries and ask for transparent huge pages: decode streams every weight
// once per token, and with 4 KiB pages the hardware prefetcher stops at each
// page boundary and the TLB misses often.
AlignedBuffer weight_buffer(size_t bytes);

// A t2 ternary matrix (kernels/ternary_layout.h) over `codes` (rows x K/4 bytes).
Weight ternary_weight(const uint8_t* codes, int64_t rows, int64_t cols, float scale);
// A tl3 ternary matrix (kernels/ternary_lut_layout.h) over `blocks`; its row
// bias goes into a new buffer of `storage`.
Weight ternary_lut_weight(const uint8_t* blocks, int64_t rows, int64_t cols, float scale,
                          std::vector<AlignedBuffer>& storage);

// A W8A8 matrix over int8 rows (rows x cols) and one f32 scale per row.
// Throws FormatError, naming the tensor, for a weight of -128 (the format is
// symmetric).
Weight w8a8_weight(const int8_t* data, const float* scales, int64_t rows, int64_t cols, const std::string& name);

// Row r of an embedding table (a ggml type, or low-bit codes) as f32.
void embedding_row(const Weight& w, int64_t r, float* out);

// Throws FormatError for a missing tensor or a shape that does not match the
// config, UnsupportedError for a tensor type the kernels cannot multiply.
ModelWeights bind_weights(const gguf::GgufFile& file, const ModelConfig& cfg);

// Packs one matrix when its type has an interleaved layout (otherwise leaves
// it as is), keeping the copy in `storage`; see pack_weights.
void pack_weight(Weight& m, const gguf::GgufFile* file, ThreadPool* pool, std::vector<AlignedBuffer>& storage);

// Packs every matrix whose type has an interleaved layout (the LM head
// included, the token-embedding table used for lookups excepted) and returns
// the mapped pages of the packed rows to the kernel, so the model holds one
// copy of its weights (file may be nullptr: nothing to return). The groups of
// each matrix are packed in parallel on `pool` when one is given. Throws
// Error when memory runs out.
void pack_weights(ModelWeights& w, const gguf::GgufFile* file, ThreadPool* pool = nullptr);

}  // namespace mce
