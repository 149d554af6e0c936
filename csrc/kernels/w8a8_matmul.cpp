// The W8A8 matmul (SmoothQuant, Xiao et al. 2023, §4: per-token dynamic
// activation quantization, per-channel weights). Each token is quantized to
// int8 once per call (BitLinear's absmax quantizer, the ternary kernels':
// inv = 127 / max|x|, a = round(x * inv)) and shared by every matrix of the
// call (Q/K/V, gate/up); then tasks of group runs x token tiles, each an exact
// int32 product (W8A8DotsFn) finished by
//   y = float(dot) * (s_row * d_tok),   d_tok = 1 / inv  (one f32 division)
// on every level, so all levels give the same bits.
#include "kernels/w8a8_matmul.h"

#include <algorithm>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/matmul_runs.h"

namespace mce {

void matmul_w8a8(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                 std::vector<uint8_t>& act_buf) {
  const KernelTable& kt = kernels();
  const int64_t K = targets[0].w->cols, Kp = w8a8_padded_cols(K);
  const size_t stride = (size_t(Kp) + 63) / 64 * 64;
  const size_t sums_offset = stride * size_t(n_tok);
  const size_t scale_offset = sums_offset + sizeof(int32_t) * size_t(n_tok);
  const size_t need = scale_offset + sizeof(float) * size_t(n_tok);
  if (act_buf.size() < need) act_buf.resize(need);
  int8_t* act = reinterpret_cast<int8_t*>(act_buf.data());
  int32_t* sums = reinterpret_cast<int32_t*>(act_buf.data() + sums_offset);
  float* d_tok = reinterpret_cast<float*>(act_buf.data() + scale_offset);
  pool.parallel_for(n_tok, [&](int64_t t, int) {
    int8_t* a = act + size_t(t) * stride;
    const TernaryActivation q = kt.ternary_quantize(x + t * K, K, a);
    std::memset(a + K, 0, stride - size_t(K));  // the kernels read the padding
    sums[t] = q.sum;
    d_tok[t] = 1.0f / q.inv;
  });

  const int64_t tile = std::min(n_tok, std::max<int64_t>(1, int64_t(kActTileBytes / stride)));
  const int64_t n_tiles = (n_tok + tile - 1) / tile;
  // The one token tile of int8 activations stays in L2 while each task's groups
  // (two at a time, from L1) sweep over it. Prefill runs are whole group pairs
  // (the prefill tile of the widest level); decode's are guided (split_runs).
  int64_t groups[kMaxMatmulTargets], all_groups = 0;
  for (int i = 0; i < n; ++i) all_groups += groups[i] = w8a8_groups(targets[i].w->rows);
  const int64_t want = std::max<int64_t>(1, pool.size() * kTasksPerThread / n_tiles);
  std::vector<Run>& runs = run_scratch();
  split_runs(groups, n, pool.size(), n_tiles, std::max<int64_t>(2, (all_groups + want - 1) / want + 1) / 2 * 2, runs);
  const int64_t n_runs = int64_t(runs.size());
  const size_t gb = w8a8_group_bytes(K);
  pool.parallel_for(n_runs * n_tiles, [&](int64_t task, int) {
    thread_local std::vector<int32_t> dots;
    const Run& run = runs[size_t(task % n_runs)];
    const int64_t t0 = (task / n_runs) * tile, nt = std::min(tile, n_tok - t0);
    const int i = run.matrix;
    const Weight& w = *targets[i].w;
    const int64_t ys = targets[i].y_stride ? targets[i].y_stride : w.rows;
    const int64_t g0 = run.begin, ng = run.end - run.begin;
    const int64_t r0 = g0 * kW8A8Rows, nr = std::min(ng * kW8A8Rows, w.rows - r0), dstride = ng * kW8A8Rows;
    dots.resize(size_t(nt * dstride));
    kt.w8a8_dots(K, w.w8a8_groups + size_t(g0) * gb, ng, act + size_t(t0) * stride, stride, sums + t0, int(nt),
                 dots.data(), dstride);
    const float* s = w.w8a8_scale + r0;
    for (int64_t t = 0; t < nt; ++t) {
      const float d = d_tok[t0 + t];
      float* y = targets[i].y + (t0 + t) * ys + r0;
      const int32_t* dt = dots.data() + t * dstride;
      for (int64_t r = 0; r < nr; ++r) y[r] = float(dt[r]) * (s[r] * d);
    }
  });
}

}  // namespace mce
