// Causal scaled dot-product attention with grouped KV heads (GQA), over the
// KV cache layout of kernels/attention_kv_layout.h.
//
// The unit of work is a tile: the query rows of a few consecutive tokens for
// all query heads that share one KV head, against a range of cached keys.
// Every key/value block loaded is used by all rows of the tile (GQA sharing),
// and softmax runs online, block by block, with the running max and sum
// rescaling of FlashAttention-2 (Dao 2023, Alg. 1), so scratch is bounded by
// the tile, not by the context. A tile kernel exists per ISA level; the
// driver attention_causal() splits a layer into tiles over the thread pool by
// (KV head, query tile), and for decode also by key range (split-K, "Flash-
// Decoding", Dao et al. 2023), merging the partial softmaxes exactly.
//
// Agreement of the levels: every level gives the scalar reference's bits
// (ref/attention_ref.cpp), for finite queries, keys and values. The blocked
// online softmax is defined in one evaluation order, per query row and key
// block [j0, j0 + 64) clipped to the row's keys:
//   s_j = (a0 + a1) * scale, a0 and a1 the fma chains of q_d k_jd over the
//         even and the odd d, each in order of d;
//   m' = max(m, max_j s_j) (a row with no finite score yet skips the block);
//   p_j = exp_poly(s_j - m'), l = fma(l, exp_poly(m - m'), sum_j p_j) with
//         the sum in eight f32 lanes (lane j % 8, combined as kernels/ops.h's
//         sums), exp_poly of kernels/ops.h;
//   o_d = o_d * exp_poly(m - m') (skipped when that is 1), then
//   o_d = (b0 + b1) + 0, b0 starting at o_d and b1 at 0, the fma chains of
//         p_j v_jd over the even and the odd j (relative to j0), in order;
// and at the end out_d = o_d * (1 / l) (0 for a row without keys). Where a
// result is NaN it is NaN on every level, payloads aside. (A non-finite
// cached value is outside the guarantee: SIMD rows sharing a micro-kernel
// with a row that sees it multiply it by P = 0 and turn NaN.)
//
// Accuracy: with A = scale * max_j sum_d |q_d k_jd| and V = max |v| over the
// n_keys keys a row sees, each output is within
//     eps_f32 * (8 (head_dim + 2) A + 3 n_keys + 64) V
// of exact (double) attention of the same cached keys and values
// (tests/native/test_attention.cpp). The terms: rounding of the dot products
// (head_dim A), of s - max and of the rescaling factors (A), and of the sums
// over keys (n_keys). An f16 cache adds its own rounding of k and v (2^-11
// relative) on top, on every level. The driver's key splits depend on the
// thread count only and its merge runs the same code on every level, so
// whole layers agree bit for bit too (for the same thread count).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention_kv_layout.h"
#include "kernels/dispatch.h"

namespace mce {

// One tile. Query row (token t, head g of the group) is at
// q + t * q_stride + g * head_dim; token t is at position pos0 + t and sees
// the keys j with key_begin <= j < min(key_end, pos0 + t + 1).
struct AttentionTask {
  const float* q = nullptr;
  int64_t q_stride = 0;
  int n_tok = 0;
  int n_group = 0;            // query heads per KV head
  KvType kv_type = KvType::F16;
  const void* k = nullptr;    // this KV head's keys and values, position 0
  const void* v = nullptr;
  int64_t head_dim = 0;
  int64_t pos0 = 0;
  int64_t key_begin = 0;      // a multiple of kAttnBlockKeys
  int64_t key_end = 0;
  float scale = 1.0f;
  // Output row (t, g) at out + t * out_stride + g * head_dim: the softmax-
  // weighted sum of values (zeros for a row that sees no key).
  float* out = nullptr;
  int64_t out_stride = 0;
  // Optional, per row r = t * n_group + g: the row's max score and
  // sum_j exp(score_j - max) (-inf and 0 for no key), to merge key splits.
  float* row_max = nullptr;
  float* row_sum = nullptr;
};

// scratch: attention_scratch_floats(n_tok * n_group, head_dim) floats,
// 64-byte aligned.
using AttendTileFn = void (*)(const AttentionTask& task, float* scratch);
size_t attention_scratch_floats(int64_t n_rows, int64_t head_dim);

AttendTileFn attend_tile_scalar();
AttendTileFn attend_tile_avx2();    // nullptr when not built for x86
AttendTileFn attend_tile_avx512();
// nullptr until an arm_neon/ translation unit defines it (and the build
// defines MCE_NEON_ATTENTION); the NEON levels use the scalar kernel meanwhile.
AttendTileFn attend_tile_neon();

// The kernel of a level (scalar for a level without its own); throws
// ArgumentError for a level this CPU does not run.
AttendTileFn attend_tile_for(Isa isa);
// The kernel of the current kernel level (kernels().isa).
AttendTileFn attend_tile();

// One layer's cache: KV head h's keys at k + h * k_head_bytes, values at
// v + h * v_head_bytes.
struct KvLayerView {
  KvType type;
  const uint8_t* k;
  const uint8_t* v;
  size_t k_head_bytes;
  size_t v_head_bytes;
};

// Per-thread tile scratch and the buffers of split partial results, sized
// once for a model's shape; attention_causal() owns their use.
class AttentionWorkspace {
 public:
  // Query rows per tile (tokens x group heads) the workspace aims for: enough
  // rows to reuse each loaded key block, few enough for L1-resident scratch.
  static constexpr int kTileRows = 24;
  // Most key splits of one decode step.
  static constexpr int kMaxSplits = 16;

  AttentionWorkspace(int n_threads, int n_head, int n_head_kv, int64_t head_dim);

  int n_threads() const { return n_threads_; }
  int n_head() const { return n_head_; }
  int n_head_kv() const { return n_head_kv_; }
  int64_t head_dim() const { return head_dim_; }
  int tile_tokens() const { return tile_tokens_; }
  float* thread_scratch(int thread) { return scratch_base_ + size_t(thread) * scratch_floats_; }
  // Split s of KV head h: tile_tokens x group rows of head_dim outputs, and
  // per row the max and sum of the split's softmax.
  float* partial_out(int h, int s) { return partial_out_.data() + partial_index(h, s) * size_t(head_dim_); }
  float* partial_max(int h, int s) { return partial_max_.data() + partial_index(h, s); }
  float* partial_sum(int h, int s) { return partial_sum_.data() + partial_index(h, s); }

 private:
  size_t partial_index(int h, int s) const { return (size_t(h) * kMaxSplits + size_t(s)) * rows_per_tile_; }

  int n_threads_, n_head_, n_head_kv_;
  int64_t head_dim_;
  int tile_tokens_;
  size_t rows_per_tile_, scratch_floats_;
  std::vector<float> scratch_;
  float* scratch_base_ = nullptr;  // scratch_ aligned to 64 bytes
  std::vector<float> partial_out_, partial_max_, partial_sum_;
};

// Causal attention of n_tok new tokens at positions pos0.. for every query
// head, reading keys/values 0 .. pos0 + n_tok - 1 from the layer's cache
// (which already holds the new tokens). Query row of token t, head h at
// q + t * q_stride + h * head_dim; output likewise in out with out_stride.
void attention_causal(AttendTileFn fn, const float* q, int64_t q_stride, int n_tok, int64_t pos0,
                      const KvLayerView& kv, float scale, float* out, int64_t out_stride, ThreadPool& pool,
                      AttentionWorkspace& ws);

}  // namespace mce
