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
// Which dimensions RoPE rotates together: (2i, 2i+1) — ggml's NORM mode, for
// files whose Q/K rows were permuted at conversion (llama, minicpm) — or
// (i, i + n_rot/2) — NEOX mode, HF's rotate_half, unpermuted (bitnet, as
// llama.cpp's llama_model_rope_type says).
enum class RopeStyle { Interleaved, Neox };
// The gated FFN's activation: SwiGLU silu(g) * u, or BitNet b1.58's squared
// ReLU relu(g)^2 * u (transformers' BitNet, hidden_act "relu2").
enum class FfnActivation { Silu, Relu2 };

struct ModelConfig {
  std::string arch;          // general.architecture: "llama", "minicpm", "minicpm4" or "bitnet"
  std::string variant;       // "llama", "minicpm", "minicpm4" or "bitnet"
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
  // BitNet b1.58 (llama.cpp's bitnet graph): an RMSNorm of the attention
  // output before its projection (attn_sub_norm) and of the gated FFN
  // product before the down projection (ffn_sub_norm).
  bool sub_norms = false;
  RopeStyle rope_style = RopeStyle::Interleaved;
  FfnActivation ffn_activation = FfnActivation::Silu;
};

// Reads and checks the config; throws UnsupportedError for an architecture
// this runtime does not implement and FormatError for missing/invalid keys.
ModelConfig read_config(const gguf::GgufFile& file);

}  // namespace mce
