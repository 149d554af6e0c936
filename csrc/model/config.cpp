#include "model/config.h"

#include <cmath>

namespace mce {

namespace {

int require_positive(const gguf::GgufFile& f, const std::string& key, int64_t max_value) {
  if (!f.find(key)) throw FormatError("GGUF: required key '" + key + "' is missing");
  int64_t v = f.get_int(key, 0);
  if (v <= 0 || v > max_value)
    throw FormatError("GGUF: key '" + key + "' = " + std::to_string(v) + " is out of range (1.." +
                      std::to_string(max_value) + ")");
  return static_cast<int>(v);
}

float finite_float(const gguf::GgufFile& f, const std::string& key, double def) {
  double v = f.get_float(key, def);
  if (!std::isfinite(v)) throw FormatError("GGUF: key '" + key + "' is not a finite number");
  return static_cast<float>(v);
}

}  // namespace

ModelConfig read_config(const gguf::GgufFile& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture", "");
  if (c.arch != "llama" && c.arch != "minicpm" && c.arch != "minicpm4" && c.arch != "bitnet")
    throw UnsupportedError("unsupported architecture '" + c.arch +
                           "' (supported: llama, minicpm, minicpm4, bitnet)");
  const std::string p = c.arch + ".";
  c.n_embd = require_positive(f, p + "embedding_length", 1 << 16);
  c.n_layer = require_positive(f, p + "block_count", 1024);
  c.n_head = require_positive(f, p + "attention.head_count", 1024);
  c.n_head_kv = f.find(p + "attention.head_count_kv")
                    ? require_positive(f, p + "attention.head_count_kv", 1024) : c.n_head;
  c.n_ff = require_positive(f, p + "feed_forward_length", 1 << 20);
  c.n_ctx_train = f.find(p + "context_length") ? require_positive(f, p + "context_length", 1 << 24) : 2048;
  if (c.n_head % c.n_head_kv != 0)
    throw FormatError("GGUF: head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                      std::to_string(c.n_head_kv));
  c.head_dim = f.find(p + "attention.key_length") ? require_positive(f, p + "attention.key_length", 4096)
                                                  : c.n_embd / c.n_head;
  if (f.find(p + "attention.value_length") &&
      require_positive(f, p + "attention.value_length", 4096) != c.head_dim)
    throw UnsupportedError("attention.value_length different from key_length is not supported");
  if (c.head_dim % 2 != 0) throw FormatError("GGUF: head dimension must be even for RoPE");
  c.n_rot = f.find(p + "rope.dimension_count") ? require_positive(f, p + "rope.dimension_count", c.head_dim)
                                               : c.head_dim;
  if (c.n_rot % 2 != 0) throw FormatError("GGUF: rope.dimension_count must be even");
  c.rms_eps = finite_float(f, p + "attention.layer_norm_rms_epsilon", 1e-5);
  if (!(c.rms_eps > 0.0f)) throw FormatError("GGUF: layer_norm_rms_epsilon must be positive");
  c.rope_base = finite_float(f, p + "rope.freq_base", 10000.0);
  if (!(c.rope_base > 1.0f)) throw FormatError("GGUF: rope.freq_base must be > 1");

  std::string scaling = f.get_string(p + "rope.scaling.type", "none");
  c.rope_orig_ctx = static_cast<int>(f.get_int(p + "rope.scaling.original_context_length", 0));
  if (scaling == "linear") {
    c.rope_scaling = RopeScaling::Linear;
    c.rope_scale = finite_float(f, p + "rope.scaling.factor", 1.0);
    if (!(c.rope_scale > 0.0f)) throw FormatError("GGUF: rope.scaling.factor must be positive");
  } else if (scaling == "longrope") {
    c.rope_scaling = RopeScaling::LongRope;
  } else if (scaling == "yarn") {
    throw UnsupportedError("rope scaling 'yarn' is not supported yet");
  } else if (scaling != "none" && !scaling.empty()) {
    throw UnsupportedError("unknown rope scaling type '" + scaling + "'");
  }

  c.variant = c.arch;
  if (c.arch == "bitnet") {
    c.sub_norms = true;
    c.rope_style = RopeStyle::Neox;
    // llama.cpp's bitnet graph gates with SiLU (1bitLLM's bitnet_b1_58);
    // BitNet b1.58 2B4T and transformers' BitNet use squared ReLU, which our
    // converter records here.
    const std::string act = f.get_string("minicpm_edge.ffn_activation", "silu");
    if (act == "relu2") c.ffn_activation = FfnActivation::Relu2;
    else if (act != "silu")
      throw UnsupportedError("minicpm_edge.ffn_activation '" + act + "' is not supported (silu, relu2)");
  }
  if (c.arch == "minicpm" || c.arch == "minicpm4") {
    // Defaults are llama.cpp's for files written before the keys existed,
    // except logit_scale, where llama.cpp's fallback 256/n_embd would be
    // applied as a divisor; MiniCPM's code divides by n_embd/dim_model_base.
    c.embedding_scale = finite_float(f, p + "embedding_scale", 12.0);
    c.residual_scale = finite_float(f, p + "residual_scale", 1.4 / std::sqrt(double(c.n_layer)));
    c.logit_scale = finite_float(f, p + "logit_scale", c.n_embd / 256.0);
    if (!(c.logit_scale > 0.0f)) throw FormatError("GGUF: logit_scale must be positive");
    std::string v = f.get_string("minicpm_edge.arch_variant", "");
    if (c.arch == "minicpm4" || v == "minicpm4" || c.rope_scaling == RopeScaling::LongRope) c.variant = "minicpm4";
    if (c.rope_scaling == RopeScaling::LongRope) {
      // LongRoPE attention factor (MiniCPM's MiniCPMLongRoPE): cos/sin are
      // scaled by sqrt(1 + ln(s)/ln(L0)), s = max_pos / original_max_pos.
      int64_t max_pos = f.get_int("minicpm_edge.rope.max_position_embeddings", c.n_ctx_train);
      int64_t orig = f.get_int("minicpm_edge.rope.original_max_position_embeddings",
                               c.rope_orig_ctx > 0 ? c.rope_orig_ctx : c.n_ctx_train);
      if (orig > 0) c.rope_orig_ctx = static_cast<int>(orig);
      double s = orig > 0 ? double(max_pos) / double(orig) : 1.0;
      c.rope_attn_factor = s <= 1.0 ? 1.0f : float(std::sqrt(1.0 + std::log(s) / std::log(double(orig))));
    }
  }
  return c;
}

}  // namespace mce
