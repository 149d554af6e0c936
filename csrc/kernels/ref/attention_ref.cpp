// Scalar reference of the attention tile kernel (kernels/attention.h): one
// query row at a time, the blocked online softmax of FlashAttention-2 (Dao
// 2023, Alg. 1) in exactly the evaluation order attention.h defines (every
// fma the SIMD kernels of attention_tile_impl.h fuse is a std::fma here, and
// every sum is split the way theirs is), so the SIMD levels reproduce its bits.
#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/ops.h"
#include "quant/fp16.h"

namespace mce::ref {
namespace {

inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t h) { return fp16_to_f32(h); }

// The SIMD kernels' eight-lane sum (lane j % 8) and its combining tree, as
// the ops' sums (kernels/ops.h).
inline float sum_eight_lanes(const float* p, int64_t n) {
  float s[8] = {};
  for (int64_t j = 0; j < n; ++j) s[j % 8] += p[j];
  return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

// Value components per chunk of the P V loop.
constexpr int64_t kChunk = 64;

template <class T>
void attend_rows(const AttentionTask& a, float* scratch) {
  const int64_t D = a.head_dim, G = a.n_group;
  const T* K = static_cast<const T*>(a.k);
  const T* Vc = static_cast<const T*>(a.v);
  float* s = scratch;                   // scores, then probabilities, of one key block
  float* o = scratch + kAttnBlockKeys;  // the row's unnormalised output
  for (int64_t t = 0; t < a.n_tok; ++t) {
    const int64_t end = std::min(a.key_end, a.pos0 + t + 1);
    for (int64_t g = 0; g < G; ++g) {
      const float* q = a.q + t * a.q_stride + g * D;
      float m = -INFINITY, l = 0.0f;
      std::fill(o, o + D, 0.0f);
      for (int64_t j0 = a.key_begin; j0 < end; j0 += kAttnBlockKeys) {
        const int64_t nb = std::min(kAttnBlockKeys, end - j0);
        // s_j = scale * (even-d chain + odd-d chain) of q . k_j. The chains
        // of all keys advance together, d by d, so consecutive fmas are
        // independent (std::fma is a library call where the baseline ISA
        // has no FMA, and one chain at a time would wait on each).
        float acc_even[kAttnBlockKeys] = {}, acc_odd[kAttnBlockKeys] = {};
        for (int64_t d = 0; d < D; ++d) {
          float* acc = d % 2 ? acc_odd : acc_even;
          for (int64_t j = 0; j < nb; j += kKeyTile) {
            const T* kt = K + kv_key_index(j0 + j, d, D);  // components d of one key tile
            const int64_t nt = std::min(kKeyTile, nb - j);
            for (int64_t c = 0; c < nt; ++c) acc[j + c] = std::fma(q[d], to_f32(kt[c]), acc[j + c]);
          }
        }
        for (int64_t j = 0; j < nb; ++j) s[j] = (acc_even[j] + acc_odd[j]) * a.scale;
        float mb = -INFINITY;
        for (int64_t j = 0; j < nb; ++j) mb = std::max(mb, s[j]);
        const float m_new = std::max(m, mb);
        if (m_new == -INFINITY) continue;  // no finite score yet: nothing to weigh
        // FlashAttention-2's rescaling: the block's new max m' multiplies the
        // sum and output so far by exp(m - m').
        for (int64_t j = 0; j < nb; ++j) s[j] = exp_poly(s[j] - m_new);
        const float corr = exp_poly(m - m_new);
        l = std::fma(l, corr, sum_eight_lanes(s, nb));
        if (corr != 1.0f)
          for (int64_t d = 0; d < D; ++d) o[d] *= corr;
        // o += P V: even and odd keys in separate chains (the even one
        // starting at o), added at the end; + 0 makes a zero sum +0 (the SIMD
        // kernels' rows may run past their last key with P = 0, which can
        // change the sign of a zero only). A chunk of components at a time,
        // key by key, again so consecutive fmas are independent.
        for (int64_t d0 = 0; d0 < D; d0 += kChunk) {
          const int64_t nd = std::min(kChunk, D - d0);
          float odd[kChunk] = {};
          for (int64_t j = 0; j < nb; ++j) {
            const T* vr = Vc + kv_value_index(j0 + j, d0, D);
            float* acc = j % 2 ? odd : o + d0;
            for (int64_t d = 0; d < nd; ++d) acc[d] = std::fma(s[j], to_f32(vr[d]), acc[d]);
          }
          for (int64_t d = 0; d < nd; ++d) o[d0 + d] = (o[d0 + d] + odd[d]) + 0.0f;
        }
        m = m_new;
      }
      float* out = a.out + t * a.out_stride + g * D;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      for (int64_t d = 0; d < D; ++d) out[d] = o[d] * inv;
      if (a.row_max) a.row_max[t * G + g] = m;
      if (a.row_sum) a.row_sum[t * G + g] = l;
    }
  }
}

void attend_tile(const AttentionTask& a, float* scratch) {
  if (a.kv_type == KvType::F16) attend_rows<uint16_t>(a, scratch);
  else attend_rows<float>(a, scratch);
}

}  // namespace
}  // namespace mce::ref

namespace mce {
AttendTileFn attend_tile_scalar() { return ref::attend_tile; }
}  // namespace mce
