// Scalar reference of the attention tile kernel (kernels/attention.h): one
// query row at a time, blocked online softmax with std::exp, plain loops in
// the cache layout's natural order (scores of a key tile's 16 positions
// together, values row by row) so compilers can vectorize it where no SIMD
// level exists yet.
#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "quant/fp16.h"

namespace mce::ref {
namespace {

inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t h) { return fp16_to_f32(h); }

template <class T>
void attend_rows(const AttentionTask& a, float* scratch) {
  const int64_t D = a.head_dim, G = a.n_group;
  const T* K = static_cast<const T*>(a.k);
  const T* Vc = static_cast<const T*>(a.v);
  float* s = scratch;                   // scores of one key block
  float* o = scratch + kAttnBlockKeys;  // the row's unnormalised output
  for (int64_t t = 0; t < a.n_tok; ++t) {
    const int64_t end = std::min(a.key_end, a.pos0 + t + 1);
    for (int64_t g = 0; g < G; ++g) {
      const float* q = a.q + t * a.q_stride + g * D;
      float m = -INFINITY, l = 0.0f;
      std::fill(o, o + D, 0.0f);
      for (int64_t j0 = a.key_begin; j0 < end; j0 += kAttnBlockKeys) {
        const int64_t nb = std::min(kAttnBlockKeys, end - j0);
        // s_j = scale * q . k_j, 16 keys (one tile) at a time.
        for (int64_t j = 0; j < nb; j += kKeyTile) {
          const int64_t nt = std::min(kKeyTile, nb - j);
          float acc[kKeyTile] = {};
          const T* tile = K + kv_key_index(j0 + j, 0, D);
          for (int64_t d = 0; d < D; ++d)
            for (int64_t c = 0; c < nt; ++c) acc[c] += q[d] * to_f32(tile[d * kKeyTile + c]);
          for (int64_t c = 0; c < nt; ++c) s[j + c] = acc[c] * a.scale;
        }
        float mb = -INFINITY;
        for (int64_t j = 0; j < nb; ++j) mb = std::max(mb, s[j]);
        // FlashAttention-2's rescaling: the block's new max m' multiplies the
        // sum and output so far by exp(m - m').
        const float m_new = std::max(m, mb);
        const float corr = std::exp(m - m_new);
        l *= corr;
        for (int64_t d = 0; d < D; ++d) o[d] *= corr;
        for (int64_t j = 0; j < nb; ++j) {
          const float p = std::exp(s[j] - m_new);
          l += p;
          const T* vr = Vc + kv_value_index(j0 + j, 0, D);
          for (int64_t d = 0; d < D; ++d) o[d] += p * to_f32(vr[d]);
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
