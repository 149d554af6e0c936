// Keys and values of every layer for one sequence, preallocated for n_ctx
// positions. Layout [layer][kv_head][position][head_dim] keeps each head's
// keys contiguous, which is what the attention row kernel streams.
#pragma once
#include <cstdint>
#include <vector>

namespace mce {

class KvCache {
 public:
  KvCache(int n_layer, int n_head_kv, int head_dim, int n_ctx)
      : n_head_kv_(n_head_kv), head_dim_(head_dim), n_ctx_(n_ctx),
        k_(size_t(n_layer) * n_head_kv * n_ctx * head_dim),
        v_(size_t(n_layer) * n_head_kv * n_ctx * head_dim) {}

  int n_ctx() const { return n_ctx_; }
  float* k(int layer, int head, int pos) { return k_.data() + offset(layer, head, pos); }
  float* v(int layer, int head, int pos) { return v_.data() + offset(layer, head, pos); }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  size_t offset(int layer, int head, int pos) const {
    return ((size_t(layer) * n_head_kv_ + head) * n_ctx_ + pos) * head_dim_;
  }
  int n_head_kv_, head_dim_, n_ctx_;
  std::vector<float> k_, v_;
};

}  // namespace mce
