// Attention driver: per-level kernel choice, and the split of one layer's
// attention into tiles over the thread pool (kernels/attention.h).
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace mce {

namespace {
// A key split shorter than this costs more in task overhead and merging than
// its parallelism returns.
constexpr int64_t kMinSplitKeys = 256;
}  // namespace

#if !defined(MCE_HAVE_X86)
AttendTileFn attend_tile_avx2() { return nullptr; }
AttendTileFn attend_tile_avx512() { return nullptr; }
#endif
#if !defined(MCE_NEON_ATTENTION)
AttendTileFn attend_tile_neon() { return nullptr; }
#endif

AttendTileFn attend_tile_for(Isa isa) {
  if (!isa_supported(isa)) throw ArgumentError(std::string("ISA level ") + isa_name(isa) + " is not available on this CPU");
  AttendTileFn fn = nullptr;
  switch (isa) {
    case Isa::Avx512: fn = attend_tile_avx512(); break;
    case Isa::Avx2: fn = attend_tile_avx2(); break;
    case Isa::Neon:
    case Isa::NeonDotprod: fn = attend_tile_neon(); break;
    case Isa::Scalar: break;
  }
  return fn ? fn : attend_tile_scalar();
}

AttendTileFn attend_tile() { return attend_tile_for(kernels().isa); }

size_t attention_scratch_floats(int64_t n_rows, int64_t head_dim) {
  // Scores/probabilities [rows][block], outputs [rows][padded head_dim], and
  // the running max and sum per row (the layout of attention_tile_impl.h).
  return size_t(n_rows) * size_t(kAttnBlockKeys + kv_value_stride(head_dim) + 2);
}

AttentionWorkspace::AttentionWorkspace(int n_threads, int n_head, int n_head_kv, int64_t head_dim)
    : n_threads_(n_threads), n_head_(n_head), n_head_kv_(n_head_kv), head_dim_(head_dim) {
  if (n_threads < 1 || n_head < 1 || n_head_kv < 1 || n_head % n_head_kv != 0 || head_dim < 1)
    throw ArgumentError("attention: invalid shape");
  const int group = n_head / n_head_kv;
  tile_tokens_ = std::max(1, kTileRows / group);
  rows_per_tile_ = size_t(tile_tokens_) * size_t(group);
  scratch_floats_ = (attention_scratch_floats(int64_t(rows_per_tile_), head_dim) + 15) / 16 * 16;
  scratch_.resize(size_t(n_threads) * scratch_floats_ + 16);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(scratch_.data());
  scratch_base_ = scratch_.data() + ((64 - addr % 64) % 64) / sizeof(float);
  const size_t rows = size_t(n_head_kv) * kMaxSplits * rows_per_tile_;
  partial_out_.resize(rows * size_t(head_dim));
  partial_max_.resize(rows);
  partial_sum_.resize(rows);
}

void attention_causal(AttendTileFn fn, const float* q, int64_t q_stride, int n_tok, int64_t pos0,
                      const KvLayerView& kv, float scale, float* out, int64_t out_stride, ThreadPool& pool,
                      AttentionWorkspace& ws) {
  if (n_tok <= 0) return;
  if (pool.size() > ws.n_threads()) throw ArgumentError("attention: workspace has fewer threads than the pool");
  const int Hkv = ws.n_head_kv(), G = ws.n_head() / Hkv, Tq = ws.tile_tokens();
  const int64_t D = ws.head_dim(), n_keys = pos0 + n_tok;
  const int n_qtiles = (n_tok + Tq - 1) / Tq;

  auto base_task = [&](int h) {
    AttentionTask a;
    a.q_stride = q_stride;
    a.n_group = G;
    a.kv_type = kv.type;
    a.k = kv.k + size_t(h) * kv.k_head_bytes;
    a.v = kv.v + size_t(h) * kv.v_head_bytes;
    a.head_dim = D;
    a.scale = scale;
    return a;
  };

  // Decode (one query tile): (KV head, tile) tasks alone may be fewer than
  // the threads, so the keys are split too (Flash-Decoding) and the partial
  // softmaxes merged below.
  int n_splits = 1;
  int64_t chunk = n_keys;
  if (n_qtiles == 1 && pool.size() > 1) {
    const int64_t want = (4 * int64_t(pool.size()) + Hkv - 1) / Hkv;
    n_splits = int(std::max<int64_t>(1, std::min<int64_t>({AttentionWorkspace::kMaxSplits, want, n_keys / kMinSplitKeys})));
    chunk = ((n_keys + n_splits - 1) / n_splits + kAttnBlockKeys - 1) / kAttnBlockKeys * kAttnBlockKeys;
    n_splits = int((n_keys + chunk - 1) / chunk);
  }

  if (n_splits == 1) {
    // Later query tiles see more keys: hand them out first.
    pool.parallel_for(int64_t(Hkv) * n_qtiles, [&](int64_t task, int thread) {
      const int h = int(task % Hkv), tile = n_qtiles - 1 - int(task / Hkv);
      const int t0 = tile * Tq;
      AttentionTask a = base_task(h);
      a.q = q + t0 * q_stride + int64_t(h) * G * D;
      a.n_tok = std::min(Tq, n_tok - t0);
      a.pos0 = pos0 + t0;
      a.key_begin = 0;
      a.key_end = pos0 + t0 + a.n_tok;
      a.out = out + t0 * out_stride + int64_t(h) * G * D;
      a.out_stride = out_stride;
      fn(a, ws.thread_scratch(thread));
    });
    return;
  }

  pool.parallel_for(int64_t(Hkv) * n_splits, [&](int64_t task, int thread) {
    const int h = int(task % Hkv), s = int(task / Hkv);
    AttentionTask a = base_task(h);
    a.q = q + int64_t(h) * G * D;
    a.n_tok = n_tok;
    a.pos0 = pos0;
    a.key_begin = s * chunk;
    a.key_end = std::min(n_keys, (s + 1) * chunk);
    a.out = ws.partial_out(h, s);
    a.out_stride = int64_t(G) * D;
    a.row_max = ws.partial_max(h, s);
    a.row_sum = ws.partial_sum(h, s);
    fn(a, ws.thread_scratch(thread));
  });

  // Merge: out = sum_s w_s o_s / sum_s w_s with w_s = l_s exp(m_s - M),
  // M = max_s m_s (each o_s is already normalised by its own l_s).
  const int R = n_tok * G;
  for (int h = 0; h < Hkv; ++h) {
    for (int r = 0; r < R; ++r) {
      float M = -INFINITY;
      for (int s = 0; s < n_splits; ++s) M = std::max(M, ws.partial_max(h, s)[r]);
      float* dst = out + (r / G) * out_stride + int64_t(h) * G * D + (r % G) * D;
      std::fill(dst, dst + D, 0.0f);
      if (M == -INFINITY) continue;
      float wsum = 0.0f;
      for (int s = 0; s < n_splits; ++s) {
        const float w = ws.partial_sum(h, s)[r] * std::exp(ws.partial_max(h, s)[r] - M);
        if (w == 0.0f) continue;
        wsum += w;
        const float* o = ws.partial_out(h, s) + int64_t(r) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] += w * o[d];
      }
      const float inv = 1.0f / wsum;
      for (int64_t d = 0; d < D; ++d) dst[d] *= inv;
    }
  }
}

}  // namespace mce
