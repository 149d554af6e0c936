// Keys and values of every layer for one sequence, allocated once for n_ctx
// positions, in binary16 (default, as llama.cpp) or f32. Heads are laid out
// [layer][kv_head] with each head in the kernels' layout
// (kernels/attention_kv_layout.h: keys transposed in tiles of 16 positions,
// values row-major), so attention streams one head's keys contiguously.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/attention_kv_layout.h"
#include "kernels/ops.h"

namespace mce {

class KvCache {
 public:
  KvCache(int n_layer, int n_head_kv, int head_dim, int n_ctx, KvType type)
      : type_(type), n_head_kv_(n_head_kv), head_dim_(head_dim), n_ctx_(n_ctx),
        k_head_bytes_(size_t(kv_key_head_elems(n_ctx, head_dim)) * kv_type_size(type)),
        v_head_bytes_(size_t(kv_value_head_elems(n_ctx, head_dim)) * kv_type_size(type)) {
    const size_t heads = size_t(n_layer) * size_t(n_head_kv);
    bytes_ = heads * (k_head_bytes_ + v_head_bytes_);
    // calloc: the pages stay untouched (and unbacked) until a position is
    // written, and the zero value padding the last key tile and each value
    // row keeps every number the kernels read finite.
    void* p = std::calloc(bytes_ + 64, 1);
    if (p == nullptr)
      throw Error("cannot allocate the KV cache (" + std::to_string(bytes_ >> 20) + " MiB for n_ctx = " +
                  std::to_string(n_ctx) + "); use a smaller n_ctx");
    raw_.reset(static_cast<uint8_t*>(p));
    base_ = raw_.get() + (64 - reinterpret_cast<uintptr_t>(raw_.get()) % 64) % 64;
    v_base_ = base_ + heads * k_head_bytes_;
  }

  KvType type() const { return type_; }
  int n_ctx() const { return n_ctx_; }
  size_t bytes() const { return bytes_; }

  // The layer's heads as the attention kernels read them.
  KvLayerView layer(int l) const {
    const size_t first = size_t(l) * size_t(n_head_kv_);
    return KvLayerView{type_, base_ + first * k_head_bytes_, v_base_ + first * v_head_bytes_, k_head_bytes_,
                       v_head_bytes_};
  }

  // Stores the key and value of one position for every KV head of layer l;
  // k and v hold n_head_kv rows of head_dim floats. Threads may store
  // different positions at once (they write distinct elements).
  void store(int l, int pos, const float* k, const float* v, const OpsTable& ops) {
    const KvLayerView view = layer(l);
    const int64_t D = head_dim_, esz = int64_t(kv_type_size(type_));
    for (int h = 0; h < n_head_kv_; ++h) {
      uint8_t* kh = const_cast<uint8_t*>(view.k) + size_t(h) * k_head_bytes_;
      uint8_t* vh = const_cast<uint8_t*>(view.v) + size_t(h) * v_head_bytes_;
      const float* kr = k + int64_t(h) * D;
      const float* vr = v + int64_t(h) * D;
      uint8_t* vdst = vh + size_t(kv_value_index(pos, 0, D) * esz);
      if (type_ == KvType::F16) {
        uint16_t* kt = reinterpret_cast<uint16_t*>(kh);
        uint16_t tmp[256];
        for (int64_t d0 = 0; d0 < D; d0 += 256) {
          const int64_t nd = std::min<int64_t>(256, D - d0);
          ops.f32_to_f16(kr + d0, tmp, nd);
          for (int64_t d = 0; d < nd; ++d) kt[kv_key_index(pos, d0 + d, D)] = tmp[d];
        }
        ops.f32_to_f16(vr, reinterpret_cast<uint16_t*>(vdst), D);
      } else {
        float* kt = reinterpret_cast<float*>(kh);
        for (int64_t d = 0; d < D; ++d) kt[kv_key_index(pos, d, D)] = kr[d];
        std::copy(vr, vr + D, reinterpret_cast<float*>(vdst));
      }
    }
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  KvType type_;
  int n_head_kv_, head_dim_, n_ctx_;
  size_t k_head_bytes_, v_head_bytes_, bytes_ = 0;
  std::unique_ptr<uint8_t, Free> raw_;
  uint8_t* base_ = nullptr;
  uint8_t* v_base_ = nullptr;
};

}  // namespace mce
