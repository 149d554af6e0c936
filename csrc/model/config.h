// Hyper-parameters of a decoder model, read from GGUF metadata with the keys
// llama.cpp writes ({arch}.embedding_length, ...). One struct serves every
// supported architecture; the MiniCPM family is the llama recipe plus three
// μP scalars (MiniCPM paper §4; llama.cpp's minicpm = granite graph).
#pragma once
#include <string>
#include <vector>

#include "gguf/gguf_file.h"

namespace mce {

enum class RopeScaling { None, Linear, LongRope, Yarn };

struct ModelConfig {
  std::string arch;          // general.architecture: "llama" or "minicpm"
  std::string variant;       // "llama", "minicpm" or "minicpm4"
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;          // key/value length per head
  int n_ff = 0;
  int n_ctx_train = 0;
  int n_rot = 0;             // rotated dimensions per head
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_scale = 1.0f;           // linear: positions are divided by this
  int rope_orig_ctx = 0;             // LongRoPE / YaRN original context
  float rope_attn_factor = 1.0f;     // LongRoPE mscale applied to cos/sin
  // μP scalars (MiniCPM): x0 = embedding_scale * E[tok]; every residual branch
  // is multiplied by residual_scale; logits are divided by logit_scale.
  float embedding_scale = 1.0f;
  float residual_scale = 1.0f;
  float logit_scale = 1.0f;
};

// Reads and checks the config; throws UnsupportedError for an architecture
// this runtime does not implement and FormatError for missing/invalid keys.
ModelConfig read_config(const gguf::GgufFile& file);

}  // namespace mce
