// Binds GGUF tensors to the roles of a decoder layer. Matrices stay in the
// mapping (zero copy, as llama2.c lays its weights onto the checkpoint); small
// 1-D tensors (norms, biases, rope factors) are expanded to f32 once.
#pragma once
#include <cstdint>
#include <vector>

#include "gguf/gguf_file.h"
#include "model/config.h"

namespace mce {

// A row-major matrix of `rows` outputs x `cols` inputs in a ggml type
// (GGUF ne = [cols, rows]).
struct Weight {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
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
};

// Throws FormatError for a missing tensor or a shape that does not match the
// config, UnsupportedError for a tensor type the kernels cannot multiply.
ModelWeights bind_weights(const gguf::GgufFile& file, const ModelConfig& cfg);

}  // namespace mce
