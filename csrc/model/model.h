// A loaded decoder model with its KV cache: the forward pass of the llama
// recipe (pre-RMSNorm, GQA attention with RoPE, SwiGLU FFN), with the hooks
// MiniCPM needs (embedding, residual and logit scales; LongRoPE factors) and
// those of BitNet b1.58 (sub-norms, squared-ReLU gate, NEOX RoPE; its ternary
// matrices take int8 per-token activations in kernels/matmul.h).
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "gguf/gguf_file.h"
#include "model/config.h"
#include "model/weights.h"
#include "runtime/kv_cache.h"

namespace mce {

struct ModelOptions {
  int n_ctx = 0;        // 0: min(training context, 4096)
  int n_threads = 0;    // 0: default_thread_count()
  int n_batch = 512;    // tokens per prefill step
  // Int8: ggml-style int8 activations against quantized weights, in prefill
  // and decode alike (several times faster, not exact); Exact: f32
  // activations everywhere.
  ActivationPrecision precision = ActivationPrecision::Int8;
  // Element type of the KV cache: binary16 (llama.cpp's default; half the
  // memory and attention traffic, keys/values rounded to 11 significant bits)
  // or f32 (exact).
  KvType kv_type = KvType::F16;
};

class Model {
 public:
  Model(const std::string& path, const ModelOptions& opts);

  const ModelConfig& config() const { return cfg_; }
  const gguf::GgufFile& file() const { return *file_; }
  int n_ctx() const { return n_ctx_; }
  int n_vocab() const { return cfg_.n_vocab; }
  int n_threads() const { return pool_->size(); }
  KvType kv_type() const { return kv_->type(); }

  // Tokens whose keys/values are in the cache, in order.
  const std::vector<int32_t>& cached_tokens() const { return tokens_; }
  int n_past() const { return static_cast<int>(tokens_.size()); }
  // Forget positions >= n (n <= n_past).
  void truncate(int n);

  // Appends tokens to the sequence. For every position i in [0, n) with
  // i >= first_logit, calls on_logits(i, logits[n_vocab]) in order; logits of
  // other positions are never computed. Throws ContextOverflowError if the
  // cache would overflow and ArgumentError for an out-of-range token id.
  using LogitsFn = std::function<void(int, const float*)>;
  void eval(const int32_t* tokens, int n, int first_logit, const LogitsFn& on_logits);

  // The activations a layer's matrices multiply, for calibration (GPTQ's
  // Hessians, AWQ's channel magnitudes): the attention input (Q/K/V), the
  // attention output (O), the FFN input (gate/up) and the down projection's
  // input; HeadIn, the LM head's input (the final norm's output, over the
  // logit scale), is shown once per batch with layer = n_layer. Matrices that
  // share an input share one site.
  enum class LinearInput { AttnIn = 0, AttnOut = 1, FfnIn = 2, FfnDownIn = 3, HeadIn = 4 };
  // x is [n_tokens, dim] row-major and valid only during the call.
  using InputObserver = std::function<void(int layer, LinearInput site, const float* x, int n_tokens, int dim)>;
  // Appends tokens like eval, computing no logits, and shows every linear
  // input of every batch to `observer` before it is multiplied.
  void observe(const int32_t* tokens, int n, const InputObserver& observer);

 private:
  void forward_batch(const int32_t* tokens, int n, int pos0, int first_logit, int index0,
                     const LogitsFn& on_logits);
  void rope_tables(int n, int pos0);
  void eval_locked(const int32_t* tokens, int n, int first_logit, const LogitsFn& on_logits);
  void show(int layer, LinearInput site, const float* x, int n, int64_t dim) const {
    if (observer_) (*observer_)(layer, site, x, n, static_cast<int>(dim));
  }

  std::unique_ptr<gguf::GgufFile> file_;
  ModelConfig cfg_;
  ModelWeights w_;
  int n_ctx_ = 0;
  int n_batch_ = 0;
  ActivationPrecision precision_ = ActivationPrecision::Int8;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<KvCache> kv_;
  std::vector<int32_t> tokens_;
  std::vector<float> inv_freq_;   // per rotated pair, factors and scaling applied
  const InputObserver* observer_ = nullptr;  // set only inside observe()

  // Scratch, sized once for n_batch tokens.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, ffn_gate_, ffn_up_, logits_, cos_, sin_;
  std::unique_ptr<AttentionWorkspace> attn_ws_;
  std::vector<uint8_t> act_;
  // eval/truncate from several Python threads (the GIL is released) must not
  // interleave inside the shared scratch buffers and cache.
  std::mutex mutex_;
};

}  // namespace mce
