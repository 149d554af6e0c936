#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "quant/dequantize.h"

namespace mce {

namespace {
// Rows of the LM head computed together: bounds the logits scratch to
// kLogitRows x n_vocab floats however long the batch is.
constexpr int kLogitRows = 16;
constexpr int kMaxContext = 1 << 20;
}  // namespace

Model::Model(const std::string& path, const ModelOptions& opts) {
  file_ = gguf::GgufFile::open(path);
  cfg_ = read_config(*file_);
  w_ = bind_weights(*file_, cfg_);
  cfg_.n_vocab = static_cast<int>(w_.tok_embd.rows);

  if (opts.n_ctx < 0 || opts.n_ctx > kMaxContext)
    throw ArgumentError("n_ctx must be between 1 and " + std::to_string(kMaxContext) + " (0 = default)");
  if (opts.n_batch < 0 || opts.n_batch > 8192) throw ArgumentError("n_batch must be between 1 and 8192");
  if (opts.n_threads < 0 || opts.n_threads > 512) throw ArgumentError("n_threads must be between 1 and 512");
  precision_ = opts.precision;
  n_ctx_ = opts.n_ctx > 0 ? opts.n_ctx : std::min(cfg_.n_ctx_train, 4096);
  n_batch_ = std::min(opts.n_batch > 0 ? opts.n_batch : 512, n_ctx_);
  pool_ = std::make_unique<ThreadPool>(opts.n_threads > 0 ? opts.n_threads : default_thread_count());
  pack_weights(w_, file_.get(), pool_.get());
  kv_ = std::make_unique<KvCache>(cfg_.n_layer, cfg_.n_head_kv, cfg_.head_dim, n_ctx_, opts.kv_type);

  // RoPE inverse frequencies base^(-2i/n_rot), divided by per-frequency
  // factors where the file has them: rope_freqs (Llama 3) or LongRoPE's long
  // list when the allocated context exceeds the original one, else the short
  // list (the rule llama.cpp applies).
  const int half = cfg_.n_rot / 2;
  inv_freq_.resize(half);
  const std::vector<float>* factors = nullptr;
  if (!w_.rope_freqs.empty()) factors = &w_.rope_freqs;
  if (cfg_.rope_scaling == RopeScaling::LongRope) {
    bool use_long = cfg_.rope_orig_ctx > 0 && n_ctx_ > cfg_.rope_orig_ctx;
    factors = (use_long && !w_.rope_long.empty()) || w_.rope_short.empty() ? &w_.rope_long : &w_.rope_short;
  }
  for (int i = 0; i < half; ++i) {
    double f = std::pow(double(cfg_.rope_base), -2.0 * i / double(cfg_.n_rot));
    if (factors) {
      float d = (*factors)[i];
      if (!(d > 0.0f) || !std::isfinite(d)) throw FormatError("GGUF: rope frequency factors must be positive");
      f /= d;
    }
    if (cfg_.rope_scaling == RopeScaling::Linear) f /= cfg_.rope_scale;
    inv_freq_[i] = static_cast<float>(f);
  }

  const size_t B = static_cast<size_t>(n_batch_), E = cfg_.n_embd;
  const size_t qd = size_t(cfg_.n_head) * cfg_.head_dim, kvd = size_t(cfg_.n_head_kv) * cfg_.head_dim;
  x_.resize(B * E);
  xn_.resize(B * std::max(E, qd));
  q_.resize(B * qd);
  k_.resize(B * kvd);
  v_.resize(B * kvd);
  attn_.resize(B * qd);
  ffn_gate_.resize(B * cfg_.n_ff);
  ffn_up_.resize(B * cfg_.n_ff);
  logits_.resize(size_t(kLogitRows) * cfg_.n_vocab);
  cos_.resize(B * half);
  sin_.resize(B * half);
  attn_ws_ = std::make_unique<AttentionWorkspace>(pool_->size(), cfg_.n_head, cfg_.n_head_kv, cfg_.head_dim);
}

void Model::truncate(int n) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (n < 0 || n > n_past()) throw ArgumentError("truncate: n out of range");
  tokens_.resize(static_cast<size_t>(n));
}

void Model::eval(const int32_t* tokens, int n, int first_logit, const LogitsFn& on_logits) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  eval_locked(tokens, n, first_logit, on_logits);
}

void Model::observe(const int32_t* tokens, int n, const InputObserver& observer) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  struct Reset {
    const InputObserver*& p;
    ~Reset() { p = nullptr; }
  } reset{observer_};
  observer_ = &observer;
  eval_locked(tokens, n, n, [](int, const float*) {});
}

void Model::eval_locked(const int32_t* tokens, int n, int first_logit, const LogitsFn& on_logits) {
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.n_vocab)
      throw ArgumentError("token id " + std::to_string(tokens[i]) + " is out of range (vocabulary size " +
                          std::to_string(cfg_.n_vocab) + ")");
  if (int64_t(n_past()) + n > n_ctx_)
    throw ContextOverflowError("context overflow: " + std::to_string(n_past()) + " cached + " +
                               std::to_string(n) + " new tokens exceed n_ctx = " + std::to_string(n_ctx_));
  for (int i0 = 0; i0 < n; i0 += n_batch_) {
    const int nb = std::min(n_batch_, n - i0);
    forward_batch(tokens + i0, nb, n_past(), first_logit, i0, on_logits);
    tokens_.insert(tokens_.end(), tokens + i0, tokens + i0 + nb);
  }
}

void Model::rope_tables(int n, int pos0) {
  const int half = cfg_.n_rot / 2;
  const float mscale = cfg_.rope_attn_factor;
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos0 + t) * inv_freq_[i];
      cos_[size_t(t) * half + i] = std::cos(angle) * mscale;
      sin_[size_t(t) * half + i] = std::sin(angle) * mscale;
    }
  }
}

void Model::forward_batch(const int32_t* tokens, int n, int pos0, int first_logit, int index0,
                          const LogitsFn& on_logits) {
  const int64_t E = cfg_.n_embd, D = cfg_.head_dim, H = cfg_.n_head, Hkv = cfg_.n_head_kv;
  const int64_t qd = H * D, kvd = Hkv * D, F = cfg_.n_ff;
  const float eps = cfg_.rms_eps, rs = cfg_.residual_scale;
  ThreadPool& pool = *pool_;
  // One precision for prefill and decode: int8 activations (llama.cpp's
  // arithmetic, and its speed) unless the caller asked for exact f32.
  const ActivationPrecision prec = precision_;
  const OpsTable& op = ops();
  const AttendTileFn attend = attend_tile();
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Per-token element-wise work goes through parallel_for, which runs a
  // single task (decode) inline on this thread, without waking the pool.

  pool.parallel_for(n, [&](int64_t t, int) {
    float* xt = x_.data() + t * E;
    embedding_row(w_.tok_embd, tokens[t], xt);
    if (cfg_.embedding_scale != 1.0f) op.scale(xt, cfg_.embedding_scale, E);
    // Layer 0's input norm; each later layer's is fused into the residual
    // add that ends the layer before it.
    op.rmsnorm(xt, w_.layers[0].attn_norm.data(), xn_.data() + t * E, E, eps);
  });
  rope_tables(n, pos0);

  for (int l = 0; l < cfg_.n_layer; ++l) {
    const LayerWeights& L = w_.layers[size_t(l)];
    show(l, LinearInput::AttnIn, xn_.data(), n, E);
    const MatmulTarget qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
    matmul_multi(qkv, 3, xn_.data(), n, pool, act_, prec);
    pool.parallel_for(n, [&](int64_t t, int) {
      float *qt = q_.data() + t * qd, *kt = k_.data() + t * kvd, *vt = v_.data() + t * kvd;
      if (!L.bq.empty()) op.add_scaled(qt, L.bq.data(), 1.0f, qd);
      if (!L.bk.empty()) op.add_scaled(kt, L.bk.data(), 1.0f, kvd);
      if (!L.bv.empty()) op.add_scaled(vt, L.bv.data(), 1.0f, kvd);
      const float* c = cos_.data() + t * (cfg_.n_rot / 2);
      const float* s = sin_.data() + t * (cfg_.n_rot / 2);
      if (cfg_.rope_style == RopeStyle::Neox) {
        ref::rope_neox(qt, H, D, cfg_.n_rot, c, s);
        ref::rope_neox(kt, Hkv, D, cfg_.n_rot, c, s);
      } else {
        op.rope_interleaved(qt, H, D, cfg_.n_rot, c, s);
        op.rope_interleaved(kt, Hkv, D, cfg_.n_rot, c, s);
      }
      kv_->store(l, pos0 + int(t), kt, vt, op);
    });
    attention_causal(attend, q_.data(), qd, n, pos0, kv_->layer(l), attn_scale, attn_.data(), qd, pool, *attn_ws_);
    if (cfg_.sub_norms)
      pool.parallel_for(n, [&](int64_t t, int) {
        float* at = attn_.data() + t * qd;
        op.rmsnorm(at, L.attn_sub_norm.data(), at, qd, eps);
      });
    show(l, LinearInput::AttnOut, attn_.data(), n, qd);
    matmul(L.wo, attn_.data(), n, xn_.data(), pool, act_, prec);
    pool.parallel_for(n, [&](int64_t t, int) {
      op.add_rmsnorm(x_.data() + t * E, xn_.data() + t * E, rs, L.ffn_norm.data(), xn_.data() + t * E, E, eps);
    });
    show(l, LinearInput::FfnIn, xn_.data(), n, E);
    const MatmulTarget gate_up[] = {{&L.w_gate, ffn_gate_.data()}, {&L.w_up, ffn_up_.data()}};
    matmul_multi(gate_up, 2, xn_.data(), n, pool, act_, prec);
    pool.parallel_for(n, [&](int64_t t, int) {
      float* gt = ffn_gate_.data() + t * F;
      if (cfg_.ffn_activation == FfnActivation::Relu2) ref::relu2_mul(gt, ffn_up_.data() + t * F, F);
      else op.silu_mul(gt, ffn_up_.data() + t * F, F);
      if (cfg_.sub_norms) op.rmsnorm(gt, L.ffn_sub_norm.data(), gt, F, eps);
    });
    show(l, LinearInput::FfnDownIn, ffn_gate_.data(), n, F);
    matmul(L.w_down, ffn_gate_.data(), n, xn_.data(), pool, act_, prec);
    const LayerWeights* next = l + 1 < cfg_.n_layer ? &w_.layers[size_t(l) + 1] : nullptr;
    pool.parallel_for(n, [&](int64_t t, int) {
      float *xt = x_.data() + t * E, *yt = xn_.data() + t * E;
      if (next) op.add_rmsnorm(xt, yt, rs, next->attn_norm.data(), yt, E, eps);
      else op.add_scaled(xt, yt, rs, E);
    });
  }

  const float inv_logit_scale = 1.0f / cfg_.logit_scale;
  auto head_input = [&](int t0, int cnt) {
    pool.parallel_for(cnt, [&](int64_t i, int) {
      float* xt = xn_.data() + i * E;
      op.rmsnorm(x_.data() + (t0 + i) * E, w_.output_norm.data(), xt, E, eps);
      if (inv_logit_scale != 1.0f) op.scale(xt, inv_logit_scale, E);
    });
  };
  if (observer_) {
    head_input(0, n);
    show(cfg_.n_layer, LinearInput::HeadIn, xn_.data(), n, E);
  }

  // Logits only for the positions the caller asked for.
  const int t_first = std::max(0, first_logit - index0);
  if (t_first >= n) return;
  for (int t0 = t_first; t0 < n; t0 += kLogitRows) {
    const int cnt = std::min(kLogitRows, n - t0);
    head_input(t0, cnt);
    matmul(w_.output, xn_.data(), cnt, logits_.data(), pool, act_, prec);
    for (int i = 0; i < cnt; ++i) on_logits(index0 + t0 + i, logits_.data() + size_t(i) * cfg_.n_vocab);
  }
}

}  // namespace mce
