#include "kernels/matmul.h"

#include <algorithm>

#include "kernels/dispatch.h"
#include "kernels/matmul_runs.h"
#include "kernels/minifloat_layout.h"
#include "kernels/w8a8_matmul.h"
#include "model/minifloat_weight.h"
#include "quant/blocks.h"
#include "quant/ggml_types.h"

namespace mce {

namespace {
// Rows per task of the per-row paths: enough to amortise the hand-out, small
// enough that two threads stay balanced on the narrowest matrices (576 rows
// in SmolLM2).
constexpr int64_t kRowsPerTask = 16;
// Tokens per tile in prefill: the activation tile stays in L2 while a row
// chunk of weights streams through L1.
constexpr int64_t kTokensPerTile = 64;
// Budget for one token tile of tl3 lookup tables (512 bytes per 48 inputs and
// token): a block of 32 rows stays in L1/L2 while the tile's tokens pass, so
// prefill reads the matrix from DRAM once per tile.
constexpr size_t kTableTileBytes = 1024 * 1024;
// Panel GEMM: columns per decoded slice (16 rows x 512 f32 = 32 KiB, an L1;
// a multiple of every block size) and tokens per task.
constexpr int64_t kPanelSlice = 512;
constexpr int64_t kPanelTokens = 192;
// From this many tokens on, decoding a panel once pays for itself.
constexpr int64_t kPanelMinTokens = 4;
// Batch size from which a low-bit matrix of b bits (index) takes the int8
// GEMM instead of table lookup; 0: never. Measured on Zen 3 (AVX2), 4096x4096,
// 1 and 2 threads: the tile conversion costs as much as ~150 (w4) to ~300
// (w3) tokens of lookups, and at 512 tokens int8 is 1.31-1.33x (w4), 1.15x
// (w3) and 0.85x (w2) of table lookup (bench/lut_gemv.py --gemm-paths).
constexpr int64_t kInt8MinTokens[5] = {0, 0, 0, 320, 192};

// Columns [k0, k1) of row r decoded to f32 (k0, k1 on block boundaries).
void decode_row_slice(const KernelTable& kt, const Weight& w, int64_t r, int64_t k0, int64_t k1, float* out) {
  if (w.w8a8_scale) {
    w8a8_decode_row(w.w8a8_groups + size_t(r / kW8A8Rows) * w8a8_group_bytes(w.cols), int(r % kW8A8Rows), k0, k1,
                    w.w8a8_scale[r], out);
    return;
  }
  if (w.ternary.kind == kTernaryTL3) {
    tl3_decode_row(w.data, w.cols, r, k0, k1, w.ternary.scale, out);
    return;
  }
  if (w.ternary.kind > 0) {
    // k0, k1 are multiples of the panel slice (512) or the row's ends, so
    // whole 128-input chunks.
    ternary_decode_row(w.row(r) + ternary_row_bytes(k0), k1 - k0, w.ternary.scale, out);
    return;
  }
  if (w.minifloat.exp_bits > 0) {
    minifloat_row(w, r, k0, k1, out);
    return;
  }
  if (w.packed_kind == PackedKind::LutTile) {
    lut_decode_row(w.lowbit, w.cols, w.group(r / kLutTileRows), int(r % kLutTileRows), k0, k1, out);
    return;
  }
  if (r < w.packed_rows && !is_panel16(w.packed_kind)) {
    const uint8_t* g = w.group(r / kPackRows) + size_t(k0 / kPackBlock) * packed_block_bytes(w.packed_kind);
    unpack_group_row(w.packed_kind, g, (k1 - k0) / kPackBlock, int(r % kPackRows), out);
    return;
  }
  const TypeGeometry geo = type_geometry(uint32_t(w.type));
  const uint8_t* src = w.row(r) + size_t(k0 / geo.block_size) * geo.type_size;
  kt.dequantize_row[uint32_t(w.type)](src, out, k1 - k0);
}

// Columns [k0, k1) of the 16 rows from r0 as a k-major f32 panel. A 16-bit
// packed group already is one: widening it is the type's row decoder run
// over the slice (exact; F16 and BF16 have blocks of 1).
void decode_panel_slice(const KernelTable& kt, const Weight& w, int64_t r0, int n_rows, int64_t k0, int64_t k1,
                        float* panel, float* row) {
  const int64_t len = k1 - k0;
  if (is_panel16(w.packed_kind) && r0 < w.packed_rows) {
    const uint8_t* src = w.group(r0 / kPanel16Rows) + size_t(k0) * kPanel16Rows * sizeof(uint16_t);
    kt.dequantize_row[uint32_t(w.type)](src, panel, len * kPanel16Rows);
    return;
  }
  for (int i = 0; i < kPanelRows; ++i) {
    if (i < n_rows) decode_row_slice(kt, w, r0 + i, k0, k1, row);
    else std::fill(row, row + len, 0.0f);
    for (int64_t k = 0; k < len; ++k) panel[size_t(k) * kPanelRows + i] = row[size_t(k)];
  }
}

// f32 activations against weights decoded to f32 (F16/BF16/F32 weights, and
// every type in exact mode): tasks of 16 rows x a tile of tokens; the rows
// are decoded slice by slice into a k-major panel that stays in L1 while the
// panel GEMM sweeps the tile's tokens over it. The only rounding besides the
// f32 sums is that of the weights themselves.
void matmul_f32_panel(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, int64_t y_stride) {
  const KernelTable& kt = kernels();
  const int64_t K = w.cols;
  const int64_t n_chunks = (w.rows + kPanelRows - 1) / kPanelRows;
  const int64_t n_tiles = (n_tok + kPanelTokens - 1) / kPanelTokens;
  pool.parallel_for(n_chunks * n_tiles, [&](int64_t task, int) {
    thread_local std::vector<float> panel, row;
    panel.resize(size_t(kPanelSlice) * kPanelRows);
    row.resize(size_t(kPanelSlice));
    const int64_t r0 = (task % n_chunks) * kPanelRows;
    const int n_rows = int(std::min<int64_t>(kPanelRows, w.rows - r0));
    const int64_t t0 = (task / n_chunks) * kPanelTokens, t1 = std::min(n_tok, t0 + kPanelTokens);
    for (int64_t k0 = 0; k0 < K; k0 += kPanelSlice) {
      const int64_t k1 = std::min(K, k0 + kPanelSlice), len = k1 - k0;
      decode_panel_slice(kt, w, r0, n_rows, k0, k1, panel.data(), row.data());
      kt.gemm_f32_panel(len, panel.data(), x + t0 * K + k0, K, t1 - t0, y + t0 * y_stride + r0, y_stride, n_rows,
                        k0 > 0);
    }
  });
}

// Small batches (decode) with f32 activations: one dot per row and token,
// rows split in chunks; quantized rows in exact mode are decoded first.
void matmul_f32_rows(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool, int64_t y_stride) {
  const KernelTable& kt = kernels();
  const WeightKernel& wk = kt.weight[uint32_t(w.type)];
  const int64_t K = w.cols;
  const bool direct = wk.vec_dot != nullptr && wk.act_type == GgmlType::F32;
  const int64_t n_chunks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(n_chunks, [&](int64_t task, int) {
    thread_local std::vector<float> rows;
    const int64_t r0 = task * kRowsPerTask, r1 = std::min(w.rows, r0 + kRowsPerTask);
    if (!direct) {
      rows.resize(size_t((r1 - r0) * K));
      for (int64_t r = r0; r < r1; ++r) decode_row_slice(kt, w, r, 0, K, rows.data() + (r - r0) * K);
    }
    for (int64_t t = 0; t < n_tok; ++t)
      for (int64_t r = r0; r < r1; ++r)
        y[t * y_stride + r] = direct ? wk.vec_dot(K, w.row(r), x + t * K) : kt.dot_f32(K, rows.data() + (r - r0) * K, x + t * K);
  });
}

// Small batches against F16/BF16 panels: one GEMV per 16-row group and
// token, groups split over the threads; the rows past the last group take
// the per-row dots.
void matmul_panel16_rows(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
                         int64_t y_stride) {
  const KernelTable& kt = kernels();
  const GemvPanel16Fn gemv = w.packed_kind == PackedKind::F16x16 ? kt.gemv_f16_panel : kt.gemv_bf16_panel;
  const VecDotFn dot = kt.weight[uint32_t(w.type)].vec_dot;
  const int64_t K = w.cols, groups = w.packed_rows / kPanel16Rows;
  const bool tail = w.packed_rows < w.rows;
  pool.parallel_for(groups + (tail ? 1 : 0), [&](int64_t g, int) {
    if (g == groups) {
      for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = w.packed_rows; r < w.rows; ++r) y[t * y_stride + r] = dot(K, w.row(r), x + t * K);
      return;
    }
    const uint16_t* panel = reinterpret_cast<const uint16_t*>(w.group(g));
    for (int64_t t = 0; t < n_tok; ++t) gemv(K, panel, x + t * K, y + t * y_stride + g * kPanel16Rows);
  });
}

// The 16-row tiles of several low-bit matrices numbered as one sequence, so a
// parallel loop can split them all at once.
struct TileIndex {
  const MatmulTarget* targets;
  int64_t first[kMaxMatmulTargets + 1] = {0};  // first tile of each matrix
  TileIndex(const MatmulTarget* t, int n) : targets(t) {
    for (int i = 0; i < n; ++i) first[i + 1] = first[i] + (t[i].w->rows + kLutTileRows - 1) / kLutTileRows;
  }
  struct Tile {
    const MatmulTarget& target;
    int64_t g, r0, y_stride;  // tile of its matrix, first row, output row stride
    int n_rows;               // rows of the matrix in the tile (the last one may be short)
  };
  Tile operator[](int64_t tile) const {
    int i = 0;
    while (tile >= first[i + 1]) ++i;
    const MatmulTarget& t = targets[i];
    const int64_t g = tile - first[i], r0 = g * kLutTileRows;
    return {t, g, r0, t.y_stride ? t.y_stride : t.w->rows, int(std::min<int64_t>(kLutTileRows, t.w->rows - r0))};
  }
};

// Low-bit weights by table lookup (kernels/lut_layout.h): each token's tables
// are built once and shared by every matrix of the call (Q/K/V, gate/up:
// T-MAC's table sharing, extended across the projections that read the same
// input); tasks are runs of 16-row tiles, every tile meeting all tokens
// while it is in L1.
void matmul_lut(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                std::vector<uint8_t>& act_buf) {
  const KernelTable& kt = kernels();
  const LowBitFormat fmt = targets[0].w->lowbit;
  const int64_t K = targets[0].w->cols;
  const size_t per_tok = lut_activation_bytes(fmt, K);
  if (act_buf.size() < per_tok * size_t(n_tok)) act_buf.resize(per_tok * size_t(n_tok));
  uint8_t* act = act_buf.data();
  pool.parallel_for(n_tok, [&](int64_t t, int) {
    const LutActivation a = lut_activation_view(fmt, K, act + size_t(t) * per_tok);
    kt.lut_build(x + t * K, K, fmt.group, a.tables, a.half_sigma, a.xsum);
  });
  const TileIndex index(targets, n);
  const int64_t tiles = index.first[n];
  // Prefill: tokens in blocks whose tables stay in L2 while each weight tile
  // of a task meets every token of the block from L1.
  const int64_t block = std::min<int64_t>(n_tok, std::max<int64_t>(1, int64_t(kActTileBytes / per_tok)));
  const int64_t n_blocks = (n_tok + block - 1) / block;
  std::vector<Run>& runs = run_scratch();
  split_runs(&tiles, 1, pool.size(), n_blocks, tiles * n_blocks / (pool.size() * kTasksPerThread), runs);
  const int64_t n_runs = int64_t(runs.size());
  pool.parallel_for(n_runs * n_blocks, [&](int64_t task, int) {
    float out[kLutTileRows];
    const int64_t t0 = (task / n_runs) * block, t1 = std::min(n_tok, t0 + block);
    const Run& r = runs[size_t(task % n_runs)];
    for (int64_t tile = r.begin; tile < r.end; ++tile) {
      const TileIndex::Tile at = index[tile];
      for (int64_t t = t0; t < t1; ++t) {
        const LutActivation a = lut_activation_view(fmt, K, act + size_t(t) * per_tok);
        kt.lut_gemv(fmt, K, at.target.w->group(at.g), a.tables, a.half_sigma, a.xsum, out);
        std::copy(out, out + at.n_rows, at.target.y + t * at.y_stride + at.r0);
      }
    }
  });
}

// Int8 activations for the packed GEMMs, in act_buf: Q8_0 rows, then the
// int32 sum of each block's quants (read by the Q4 kinds), nb per token.
struct Q8Activations {
  uint8_t* rows;
  size_t stride;
  int32_t* sums;
};

Q8Activations quantize_q8_0_activations(const KernelTable& kt, const float* x, int64_t n_tok, int64_t K,
                                        ThreadPool& pool, std::vector<uint8_t>& act_buf) {
  const int64_t nb = K / kPackBlock;
  const size_t stride = act_row_bytes(GgmlType::Q8_0, K);
  const size_t sums_offset = (stride * size_t(n_tok) + 63) / 64 * 64;
  const size_t need = sums_offset + sizeof(int32_t) * size_t(nb * n_tok);
  if (act_buf.size() < need) act_buf.resize(need);
  Q8Activations a{act_buf.data(), stride, reinterpret_cast<int32_t*>(act_buf.data() + sums_offset)};
  pool.parallel_for(n_tok, [&](int64_t t, int) {
    uint8_t* row = a.rows + size_t(t) * stride;
    kt.quantize_q8_0(x + t * K, row, K);
    const Q8_0Block* blk = reinterpret_cast<const Q8_0Block*>(row);
    for (int64_t b = 0; b < nb; ++b) {
      int32_t sum = 0;
      for (int i = 0; i < kQK8_0; ++i) sum += blk[b].qs[i];
      a.sums[t * nb + b] = sum;
    }
  });
  return a;
}

// Tokens per tile of Q8_0 activations (rows `stride` bytes): a multiple of
// 4 (the packed GEMMs' token step) that keeps the tile within kActTileBytes.
int64_t q8_token_tile(size_t stride, int64_t n_tok) {
  return std::min(n_tok, std::max<int64_t>(4, int64_t(kActTileBytes / stride) / 4 * 4));
}

// Int8 activations against packed groups: each task takes a run of groups of
// one matrix and a tile of tokens; the kernel shares every decoded weight
// vector among up to 4 tokens. Several matrices reading the same activations
// (Q/K/V, gate/up) share one quantization and one parallel region.
struct PackedJob {
  const Weight* w;
  float* y;
  int64_t y_stride;
};

void matmul_packed(PackedJob* jobs, int n_jobs, const float* x, int64_t n_tok, ThreadPool& pool,
                   std::vector<uint8_t>& act_buf) {
  const KernelTable& kt = kernels();
  const int64_t K = jobs[0].w->cols, nb = K / kPackBlock;
  const Q8Activations qa = quantize_q8_0_activations(kt, x, n_tok, K, pool, act_buf);
  uint8_t* act = qa.rows;
  const size_t act_stride = qa.stride;
  const int32_t* sums = qa.sums;

  const int64_t tile = q8_token_tile(act_stride, n_tok);
  const int64_t n_tiles = (n_tok + tile - 1) / tile;
  // Runs of groups over all matrices (split_runs), for prefill about the same
  // number in every matrix, enough for kTasksPerThread tasks per thread over
  // all matrices and tiles.
  int64_t groups[kMaxMatmulTargets], all_groups = 0;
  for (int j = 0; j < n_jobs; ++j) all_groups += groups[j] = jobs[j].w->packed_rows / kPackRows;
  const int64_t want_runs = std::max<int64_t>(1, pool.size() * kTasksPerThread / n_tiles);
  std::vector<Run>& runs = run_scratch();
  split_runs(groups, n_jobs, pool.size(), n_tiles, (all_groups + want_runs - 1) / want_runs, runs);
  const int64_t n_runs = int64_t(runs.size());
  // Tasks: every run x token tile, then one task per matrix with rows past its
  // last group.
  int tails[kMaxMatmulTargets], n_tails = 0;
  for (int j = 0; j < n_jobs; ++j)
    if (jobs[j].w->packed_rows < jobs[j].w->rows) tails[n_tails++] = j;
  pool.parallel_for(n_runs * n_tiles + n_tails, [&](int64_t task, int) {
    if (task >= n_runs * n_tiles) {
      const PackedJob& job = jobs[tails[task - n_runs * n_tiles]];
      const Weight& w = *job.w;
      // The rows past the last group: per-row dots in the GGUF layout, with
      // activations in the format that dot takes (Q8_0, or Q8_1 for Q4_1).
      const WeightKernel& wk = kt.weight[uint32_t(w.type)];
      thread_local std::vector<uint8_t> xq;
      xq.resize(act_row_bytes(wk.act_type, K));
      for (int64_t t = 0; t < n_tok; ++t) {
        quantize_activation_row(kt, wk.act_type, x + t * K, xq.data(), K);
        for (int64_t r = w.packed_rows; r < w.rows; ++r) job.y[t * job.y_stride + r] = wk.vec_dot(K, w.row(r), xq.data());
      }
      return;
    }
    const Run& run = runs[size_t(task % n_runs)];
    const PackedJob& job = jobs[run.matrix];
    const Weight& w = *job.w;
    const int64_t g0 = run.begin, g1 = run.end;
    const int64_t t0 = (task / n_runs) * tile, t1 = std::min(n_tok, t0 + tile);
    const GemmX8Fn gemm = kt.gemm_x8[int(w.packed_kind)];
    for (int64_t g = g0; g < g1; ++g)
      gemm(nb, w.group(g), act + size_t(t0) * act_stride, act_stride, sums + t0 * nb, nb, t1 - t0,
           job.y + t0 * job.y_stride + g * kPackRows, job.y_stride);
  });
}

// Low-bit prefill through the int8 GEMM ("dequantize to int8 tiles", the
// alternative T-MAC weighs table lookup against for large batches): each task
// converts its run of tiles to Q4_1x8 groups once (lut_tile_to_q4_1x8), then
// sweeps the token tiles over them with the packed Q4_1 kernel, int8
// activations as in matmul_packed.
void matmul_lut_int8(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                     std::vector<uint8_t>& act_buf) {
  const KernelTable& kt = kernels();
  const LowBitFormat fmt = targets[0].w->lowbit;
  const int64_t K = targets[0].w->cols, nb = K / kPackBlock;
  const Q8Activations qa = quantize_q8_0_activations(kt, x, n_tok, K, pool, act_buf);
  const TileIndex index(targets, n);
  const int64_t tiles = index.first[n];
  const int64_t tile_tok = q8_token_tile(qa.stride, n_tok);
  const int64_t run = std::max<int64_t>(1, tiles / (pool.size() * kTasksPerThread));
  const int64_t n_runs = (tiles + run - 1) / run;
  const size_t half_bytes = size_t(nb) * packed_block_bytes(PackedKind::Q4_1x8);
  const GemmX8Fn gemm = kt.gemm_x8[int(PackedKind::Q4_1x8)];
  pool.parallel_for(n_runs, [&](int64_t task, int) {
    thread_local std::vector<uint8_t> groups;
    thread_local std::vector<float> out;
    const int64_t begin = task * run, end = std::min(tiles, begin + run);
    groups.resize(size_t(end - begin) * 2 * half_bytes);
    out.resize(size_t(tile_tok) * kLutTileRows);
    for (int64_t tile = begin; tile < end; ++tile) {
      const TileIndex::Tile at = index[tile];
      lut_tile_to_q4_1x8(fmt, K, at.target.w->group(at.g), groups.data() + size_t(tile - begin) * 2 * half_bytes);
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += tile_tok) {
      const int64_t nt = std::min(tile_tok, n_tok - t0);
      for (int64_t tile = begin; tile < end; ++tile) {
        const TileIndex::Tile at = index[tile];
        const uint8_t* gr = groups.data() + size_t(tile - begin) * 2 * half_bytes;
        for (int half = 0; half < 2; ++half)
          gemm(nb, gr + size_t(half) * half_bytes, qa.rows + size_t(t0) * qa.stride, qa.stride, qa.sums + t0 * nb, nb,
               nt, out.data() + half * kPackRows, kLutTileRows);
        for (int64_t t = 0; t < nt; ++t)
          std::copy(out.data() + t * kLutTileRows, out.data() + t * kLutTileRows + at.n_rows,
                    at.target.y + (t0 + t) * at.y_stride + at.r0);
      }
    }
  });
}

// Ternary weights (kernels/ternary_layout.h, kernels/ternary_lut_layout.h)
// against int8 activations quantized per token as BitNet's BitLinear: one
// quantization for every matrix of the call (and, when a tl3 matrix is among
// them, one set of lookup tables per token), then tasks of row runs x token
// tiles, each an exact integer product finished by
//   t2:  y = float(dot - sum_a) * (s / inv)   (dots of the codes t + 1),
//   tl3: y = float(dot) * (s / inv).
void matmul_ternary(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                    std::vector<uint8_t>& act_buf) {
  const KernelTable& kt = kernels();
  const int64_t K = targets[0].w->cols;
  bool any_lut = false;
  for (int i = 0; i < n; ++i) any_lut = any_lut || targets[i].w->ternary.kind == kTernaryTL3;
  const size_t stride = (size_t(K) + 63) / 64 * 64;
  const size_t table_stride = any_lut ? (tl3_table_bytes(K) + 63) / 64 * 64 : 0;
  const size_t states_offset = stride * size_t(n_tok);
  const size_t tables_offset = (states_offset + sizeof(TernaryActivation) * size_t(n_tok) + 63) / 64 * 64;
  const size_t need = tables_offset + table_stride * size_t(n_tok);
  if (act_buf.size() < need) act_buf.resize(need);
  uint8_t* base = act_buf.data();
  int8_t* act = reinterpret_cast<int8_t*>(base);
  TernaryActivation* states = reinterpret_cast<TernaryActivation*>(base + states_offset);
  uint8_t* tables = base + tables_offset;
  pool.parallel_for(n_tok, [&](int64_t t, int) {
    states[t] = kt.ternary_quantize(x + t * K, K, act + size_t(t) * stride);
    if (any_lut) kt.ternary_lut_build(act + size_t(t) * stride, K, tables + size_t(t) * table_stride);
  });

  const int64_t tile = std::min(
      n_tok, std::max<int64_t>(1, int64_t(any_lut ? kTableTileBytes / table_stride : kActTileBytes / stride)));
  const int64_t n_tiles = (n_tok + tile - 1) / tile;
  // Row runs in units of 32 rows (a tl3 block), for prefill about
  // kTasksPerThread tasks per thread.
  int64_t blocks[kMaxMatmulTargets], all_blocks = 0;
  for (int i = 0; i < n; ++i) all_blocks += blocks[i] = (targets[i].w->rows + kTl3BlockRows - 1) / kTl3BlockRows;
  const int64_t want = std::max<int64_t>(1, pool.size() * kTasksPerThread / n_tiles);
  std::vector<Run>& runs = run_scratch();
  split_runs(blocks, n, pool.size(), n_tiles, all_blocks / want, runs);
  const int64_t n_runs = int64_t(runs.size());
  pool.parallel_for(n_runs * n_tiles, [&](int64_t task, int) {
    thread_local std::vector<int32_t> dots;
    const Run& run = runs[size_t(task % n_runs)];
    const int64_t t0 = (task / n_runs) * tile, nt = std::min(tile, n_tok - t0);
    const int i = run.matrix;
    const Weight& w = *targets[i].w;
    const int64_t ys = targets[i].y_stride ? targets[i].y_stride : w.rows;
    const int64_t r0 = run.begin * kTl3BlockRows, nr = std::min(run.end * kTl3BlockRows, w.rows) - r0;
    const bool lut = w.ternary.kind == kTernaryTL3;
    // tl3 computes whole blocks: the last run's padded rows land in the scratch too.
    const int64_t dstride = lut ? (nr + kTl3BlockRows - 1) / kTl3BlockRows * kTl3BlockRows : nr;
    dots.resize(size_t(nt * dstride));
    if (lut) {
      kt.ternary_lut_dots(K, w.data + size_t(r0 / kTl3BlockRows) * tl3_block_bytes(K), dstride / kTl3BlockRows,
                          w.ternary_bias + r0, tables + size_t(t0) * table_stride, table_stride, int(nt), dots.data(),
                          dstride);
    } else {
      kt.ternary_dots(K, w.row(r0), w.row_bytes, int(nr), act + size_t(t0) * stride, stride, int(nt), dots.data(),
                      dstride);
    }
    for (int64_t t = 0; t < nt; ++t) {
      const TernaryActivation& a = states[t0 + t];
      const float f = w.ternary.scale / a.inv;
      const int32_t offset = lut ? 0 : a.sum;
      float* y = targets[i].y + (t0 + t) * ys + r0;
      const int32_t* d = dots.data() + t * dstride;
      for (int64_t r = 0; r < nr; ++r) y[r] = float(d[r] - offset) * f;
    }
  });
}

// Integer-valued minifloat weights in mf8 rows (kernels/minifloat_layout.h)
// against Q8_0 activations: one quantization per token, then tasks of row
// chunks x token tiles, each one call of the level's mf8 dots.
void matmul_mf8(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
                std::vector<uint8_t>& act_buf, int64_t y_stride) {
  const KernelTable& kt = kernels();
  const int64_t K = w.cols;
  const size_t stride = act_row_bytes(GgmlType::Q8_0, K);
  if (act_buf.size() < stride * size_t(n_tok)) act_buf.resize(stride * size_t(n_tok));
  uint8_t* act = act_buf.data();
  pool.parallel_for(n_tok, [&](int64_t t, int) { kt.quantize_q8_0(x + t * K, act + size_t(t) * stride, K); });
  const size_t row_bytes = mf8_row_bytes(K);
  const int64_t n_row_chunks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t n_tok_tiles = (n_tok + kTokensPerTile - 1) / kTokensPerTile;
  pool.parallel_for(n_row_chunks * n_tok_tiles, [&](int64_t task, int) {
    const int64_t r0 = (task % n_row_chunks) * kRowsPerTask, r1 = std::min(w.rows, r0 + kRowsPerTask);
    const int64_t t0 = (task / n_row_chunks) * kTokensPerTile, t1 = std::min(n_tok, t0 + kTokensPerTile);
    kt.mf8_dots(K, w.mf8 + size_t(r0) * row_bytes, row_bytes, int(r1 - r0), act + size_t(t0) * stride, stride,
                int(t1 - t0), y + t0 * y_stride + r0, y_stride);
  });
}

LowBitGemm g_lowbit_gemm = LowBitGemm::Auto;

// Low-bit GEMM path for a batch of n_tok tokens (see lowbit_gemm_uses_int8).
void matmul_lowbit(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                   std::vector<uint8_t>& act_buf) {
  if (lowbit_gemm_uses_int8(targets[0].w->lowbit, n_tok)) matmul_lut_int8(targets, n, x, n_tok, pool, act_buf);
  else matmul_lut(targets, n, x, n_tok, pool, act_buf);
}

}  // namespace

void set_lowbit_gemm(LowBitGemm path) { g_lowbit_gemm = path; }

bool lowbit_gemm_uses_int8(const LowBitFormat& f, int64_t n_tok) {
  if (g_lowbit_gemm != LowBitGemm::Auto) return g_lowbit_gemm == LowBitGemm::Int8 && n_tok > 1;
  const int64_t min_tokens = f.bits >= 1 && f.bits <= 4 ? kInt8MinTokens[f.bits] : 0;
  return min_tokens > 0 && n_tok >= min_tokens;
}

void matmul(const Weight& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool,
            std::vector<uint8_t>& act_buf, ActivationPrecision precision, int64_t y_stride) {
  if (n_tok <= 0) return;  // nothing to compute (and the tilings below divide by tile sizes)
  const KernelTable& kt = kernels();
  const WeightKernel& wk = kt.weight[static_cast<uint32_t>(w.type)];
  if (y_stride == 0) y_stride = w.rows;
  const int64_t K = w.cols;
  if (w.ternary.kind > 0 && precision == ActivationPrecision::Int8) {
    const MatmulTarget target{&w, y, y_stride};
    matmul_ternary(&target, 1, x, n_tok, pool, act_buf);
    return;
  }
  if (w.w8a8_scale && precision == ActivationPrecision::Int8) {
    const MatmulTarget target{&w, y, y_stride};
    matmul_w8a8(&target, 1, x, n_tok, pool, act_buf);
    return;
  }
  // Batches from kPanelMinTokens on decode mf8 rows into f32 panels instead:
  // with one dot per row and token, the int8 dots were 4-5x slower than the
  // panel GEMM on 256 tokens (1536 x 576, AVX-512 VM), while decode gained
  // 1.9x (SmolLM2-135M with every layer matrix in mf8 rows, one thread).
  if (w.mf8 != nullptr && precision == ActivationPrecision::Int8 && n_tok < kPanelMinTokens) {
    matmul_mf8(w, x, n_tok, y, pool, act_buf, y_stride);
    return;
  }
  if (w.lowbit.bits > 0 && precision == ActivationPrecision::Int8) {
    const MatmulTarget target{&w, y, y_stride};
    matmul_lowbit(&target, 1, x, n_tok, pool, act_buf);
    return;
  }
  // Weights without an integer dot (low-bit in exact mode) are decoded to f32.
  const bool f32_act = wk.vec_dot == nullptr || wk.act_type == GgmlType::F32 || precision == ActivationPrecision::Exact;
  if (f32_act) {
    if (n_tok >= kPanelMinTokens) matmul_f32_panel(w, x, n_tok, y, pool, y_stride);
    else if (is_panel16(w.packed_kind)) matmul_panel16_rows(w, x, n_tok, y, pool, y_stride);
    else matmul_f32_rows(w, x, n_tok, y, pool, y_stride);
    return;
  }
  if (w.packed != nullptr && !is_panel16(w.packed_kind)) {
    PackedJob job{&w, y, y_stride};
    matmul_packed(&job, 1, x, n_tok, pool, act_buf);
    return;
  }

  // Int8 activations against rows in the GGUF layout (types without a packed
  // layout): one integer dot per row and token.
  const size_t act_stride = act_row_bytes(wk.act_type, K);
  if (act_buf.size() < act_stride * static_cast<size_t>(n_tok)) act_buf.resize(act_stride * n_tok);
  uint8_t* act = act_buf.data();
  pool.parallel_for(n_tok, [&](int64_t t, int) {
    quantize_activation_row(kt, wk.act_type, x + t * K, act + t * act_stride, K);
  });

  const int64_t n_row_chunks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t n_tok_tiles = (n_tok + kTokensPerTile - 1) / kTokensPerTile;
  const VecDotFn dot = wk.vec_dot;
  pool.parallel_for(n_row_chunks * n_tok_tiles, [&](int64_t task, int) {
    const int64_t r0 = (task % n_row_chunks) * kRowsPerTask;
    const int64_t r1 = std::min(w.rows, r0 + kRowsPerTask);
    const int64_t t0 = (task / n_row_chunks) * kTokensPerTile;
    const int64_t t1 = std::min(n_tok, t0 + kTokensPerTile);
    for (int64_t t = t0; t < t1; ++t) {
      const uint8_t* a = act + static_cast<size_t>(t) * act_stride;
      float* yt = y + t * y_stride;
      for (int64_t r = r0; r < r1; ++r) yt[r] = dot(K, w.row(r), a);
    }
  });
}

void matmul_multi(const MatmulTarget* targets, int n, const float* x, int64_t n_tok, ThreadPool& pool,
                  std::vector<uint8_t>& act_buf, ActivationPrecision precision) {
  if (n_tok <= 0) return;
  // One table build serves the call only when every matrix has the same
  // format: the table-lookup and int8 kernels take the first matrix's.
  // Mixed-precision files (convert --target-size) give Q/K/V or gate/up
  // different types; those matrices are multiplied one at a time.
  bool ternary = precision == ActivationPrecision::Int8 && n <= kMaxMatmulTargets;
  for (int i = 0; i < n && ternary; ++i)
    ternary = targets[i].w->ternary.kind > 0 && targets[i].w->cols == targets[0].w->cols;
  if (ternary) {
    matmul_ternary(targets, n, x, n_tok, pool, act_buf);
    return;
  }
  bool w8a8 = precision == ActivationPrecision::Int8 && n <= kMaxMatmulTargets;
  for (int i = 0; i < n && w8a8; ++i)
    w8a8 = targets[i].w->w8a8_scale != nullptr && targets[i].w->cols == targets[0].w->cols;
  if (w8a8) {
    matmul_w8a8(targets, n, x, n_tok, pool, act_buf);
    return;
  }
  bool lut = precision == ActivationPrecision::Int8 && n <= kMaxMatmulTargets;
  const LowBitFormat& f0 = targets[0].w->lowbit;
  for (int i = 0; i < n && lut; ++i) {
    const LowBitFormat& f = targets[i].w->lowbit;
    lut = f.bits > 0 && f.bits == f0.bits && f.group == f0.group && f.has_min == f0.has_min &&
          targets[i].w->cols == targets[0].w->cols;
  }
  if (lut) {
    matmul_lowbit(targets, n, x, n_tok, pool, act_buf);
    return;
  }
  bool fuse = precision == ActivationPrecision::Int8 && n <= kMaxMatmulTargets;
  for (int i = 0; i < n && fuse; ++i)
    fuse = targets[i].w->packed != nullptr && !is_panel16(targets[i].w->packed_kind) &&
           targets[i].w->packed_kind != PackedKind::LutTile && targets[i].w->cols == targets[0].w->cols;
  if (!fuse) {
    for (int i = 0; i < n; ++i)
      matmul(*targets[i].w, x, n_tok, targets[i].y, pool, act_buf, precision, targets[i].y_stride);
    return;
  }
  PackedJob jobs[kMaxMatmulTargets];
  for (int i = 0; i < n; ++i)
    jobs[i] = PackedJob{targets[i].w, targets[i].y, targets[i].y_stride ? targets[i].y_stride : targets[i].w->rows};
  matmul_packed(jobs, n, x, n_tok, pool, act_buf);
}

}  // namespace mce
