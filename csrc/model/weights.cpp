#include "model/weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/dispatch.h"
#include "model/minifloat_weight.h"
#include "quant/dequantize.h"
#include "quant/ternary_import.h"

namespace mce {

constexpr size_t kHugePage = size_t(2) << 20;

AlignedBuffer weight_buffer(size_t bytes) {
  const size_t align = bytes >= kHugePage ? kHugePage : 64;
  const size_t padded = (bytes + align - 1) / align * align;
  void* raw = std::aligned_alloc(align, padded);
  if (raw == nullptr) throw Error("out of memory for weights (" + std::to_string(bytes) + " bytes)");
#if defined(MADV_HUGEPAGE)
  if (align == kHugePage) ::madvise(raw, padded, MADV_HUGEPAGE);
#endif
  return AlignedBuffer(static_cast<uint8_t*>(raw));
}

namespace {

std::string shape_str(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

const gguf::TensorInfo& require(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) throw FormatError("GGUF: required tensor '" + name + "' is missing");
  return *t;
}

void check_matrix_shape(const gguf::TensorInfo& t, int64_t rows, int64_t cols) {
  if (t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows)
    throw FormatError("GGUF: tensor '" + t.name + "' has shape " + shape_str(t) + ", expected [" +
                      std::to_string(cols) + ", " + std::to_string(rows) + "]");
}

// A low-bit matrix (docs/FORMAT.md "w{b}g{G}"): `t` holds the codes as I8,
// described by minicpm_edge.lowbit.<name> = [b, G, has_min], with
// <name>.scale (and <name>.min) as F16. Everything is checked against the
// descriptor and the expected shape, since the metadata may be hostile.
Weight as_lowbit_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, const gguf::Value& desc, int64_t rows,
                        int64_t cols) {
  const std::string key = "minicpm_edge.lowbit." + t.name;
  if (!desc.is_array() || desc.array_size() != 3 || desc.arr_u.size() != 3)
    throw FormatError("GGUF: '" + key + "' must be an array of 3 unsigned integers [bits, group, has_min]");
  LowBitFormat fmt;
  if (desc.arr_u[0] > 8 || desc.arr_u[1] > 1024 || desc.arr_u[2] > 1)
    throw FormatError("GGUF: '" + key + "' has out-of-range values");
  fmt.bits = int(desc.arr_u[0]);
  fmt.group = int(desc.arr_u[1]);
  fmt.has_min = desc.arr_u[2] == 1;
  if (!lowbit_format_valid(fmt))
    throw UnsupportedError("tensor '" + t.name + "': low-bit format with " + std::to_string(fmt.bits) +
                           " bits and group " + std::to_string(fmt.group) +
                           " is not supported (bits 1-4, group 32, 64 or 128)");
  if (cols % fmt.group != 0)
    throw FormatError("GGUF: tensor '" + t.name + "' has " + std::to_string(cols) +
                      " inputs, not a multiple of its group size " + std::to_string(fmt.group));
  const int64_t code_bytes = int64_t(lowbit_code_row_bytes(fmt, cols));
  if (t.type != GgmlType::I8 || t.n_dims != 2 || t.ne[0] != code_bytes || t.ne[1] != rows)
    throw FormatError("GGUF: low-bit tensor '" + t.name + "' must be I8 of shape [" + std::to_string(code_bytes) +
                      ", " + std::to_string(rows) + "], found " + shape_str(t));
  auto side = [&](const std::string& suffix) -> const gguf::TensorInfo& {
    const gguf::TensorInfo& s = require(f, t.name + suffix);
    if (s.type != GgmlType::F16 || s.n_dims != 2 || s.ne[0] != cols / fmt.group || s.ne[1] != rows)
      throw FormatError("GGUF: tensor '" + s.name + "' must be F16 of shape [" + std::to_string(cols / fmt.group) +
                        ", " + std::to_string(rows) + "], found " + shape_str(s));
    return s;
  };
  Weight w;
  w.type = GgmlType::I8;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = size_t(code_bytes);
  w.data = t.data;
  w.lowbit = fmt;
  w.lowbit_scale = reinterpret_cast<const uint16_t*>(side(".scale").data);
  if (fmt.has_min) w.lowbit_min = reinterpret_cast<const uint16_t*>(side(".min").data);
  else if (f.find_tensor(t.name + ".min"))
    throw FormatError("GGUF: '" + key + "' says symmetric, but tensor '" + t.name + ".min' exists");
  return w;
}


// One buffer for every ternary matrix of a file (ours, and llama.cpp's TQ
// ones rewritten into t2), on 2 MiB pages: decode streams all of them once
// per token, and from huge pages the hardware prefetchers keep going past
// 4 KiB boundaries (tl3 blocks from memory: 6.8 against 5.2 GB/s on one
// thread of an AVX-512 Xeon VM). One buffer rather than one per matrix, so
// that matrices under 2 MiB get huge pages too and nothing is rounded up but
// the end. Sized by a pass over the tensors.
struct TernaryArena {
  AlignedBuffer buf;
  size_t size = 0, used = 0;

  static size_t padded(size_t n) { return (n + 63) / 64 * 64; }

  explicit TernaryArena(const gguf::GgufFile& f) {
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (f.find("minicpm_edge.ternary." + t.name)) size += padded(size_t(t.nbytes));
      else if ((t.type == GgmlType::TQ1_0 || t.type == GgmlType::TQ2_0) && t.n_dims == 2)
        size += padded(ternary_row_bytes(t.ne[0]) * size_t(t.ne[1]));
    }
    if (size > 0) buf = weight_buffer(size);
  }
  // n bytes of the buffer, for the tensor `name`.
  uint8_t* take(size_t n, const std::string& name) {
    if (used + padded(n) > size) throw Error("internal: ternary arena too small for '" + name + "'");
    uint8_t* dst = buf.get() + used;
    used += padded(n);
    return dst;
  }
  // A copy of tensor t's bytes (the file's pages are then dropped).
  const uint8_t* copy(const gguf::GgufFile& f, const gguf::TensorInfo& t) {
    uint8_t* dst = take(size_t(t.nbytes), t.name);
    std::memcpy(dst, t.data, size_t(t.nbytes));
    f.drop_pages(t.data, size_t(t.nbytes));
    return dst;
  }
};

// A ternary matrix (docs/FORMAT.md "Ternary"), described by
// minicpm_edge.ternary.<name> = [layout], with <name>.scale, one F32. `t`
// holds, as I8: t2, the codes ([K/4, rows]); tl3, the blocks of 32 rows
// ([tl3_block_bytes(K), ceil(rows / 32)]).
Weight as_ternary_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, const gguf::Value& desc, int64_t rows,
                         int64_t cols, TernaryArena& arena, std::vector<AlignedBuffer>& storage) {
  const std::string key = "minicpm_edge.ternary." + t.name;
  if (!desc.is_array() || desc.arr_u.empty() || desc.arr_u.size() != desc.array_size())
    throw FormatError("GGUF: '" + key + "' must be an array of unsigned integers ([2] or [3, rows, cols])");
  const uint64_t layout = desc.arr_u[0];
  if (layout != uint64_t(kTernaryT2) && layout != uint64_t(kTernaryTL3))
    throw UnsupportedError("tensor '" + t.name + "': ternary layout " + std::to_string(layout) +
                           " is not supported (2: t2, 3: tl3)");
  const size_t want_size = layout == uint64_t(kTernaryT2) ? 1 : 3;
  if (desc.arr_u.size() != want_size)
    throw FormatError("GGUF: '" + key + "' must be " + (want_size == 1 ? "[2]" : "[3, rows, cols]"));
  if (want_size == 3 && (desc.arr_u[1] != uint64_t(rows) || desc.arr_u[2] != uint64_t(cols)))
    throw FormatError("GGUF: '" + key + "' describes a " + std::to_string(desc.arr_u[1]) + " x " +
                      std::to_string(desc.arr_u[2]) + " matrix; the model needs " + std::to_string(rows) + " x " +
                      std::to_string(cols));
  if (layout == uint64_t(kTernaryT2) && cols % kTernaryChunk != 0)
    throw FormatError("GGUF: ternary tensor '" + t.name + "' has " + std::to_string(cols) +
                      " inputs, not a multiple of " + std::to_string(kTernaryChunk));
  const bool lut = layout == uint64_t(kTernaryTL3);
  const int64_t ne0 = lut ? int64_t(tl3_block_bytes(cols)) : int64_t(ternary_row_bytes(cols));
  const int64_t ne1 = lut ? tl3_blocks(rows) : rows;
  if (t.type != GgmlType::I8 || t.n_dims != 2 || t.ne[0] != ne0 || t.ne[1] != ne1)
    throw FormatError("GGUF: ternary tensor '" + t.name + "' must be I8 of shape [" + std::to_string(ne0) + ", " +
                      std::to_string(ne1) + "], found " + type_geometry(uint32_t(t.type)).name + " " + shape_str(t));
  const gguf::TensorInfo& s = require(f, t.name + ".scale");
  if (s.type != GgmlType::F32 || s.n_elements() != 1)
    throw FormatError("GGUF: tensor '" + s.name + "' must be one F32 value, found " + shape_str(s));
  float scale;
  std::memcpy(&scale, s.data, sizeof scale);
  if (!std::isfinite(scale) || scale < 0.0f)
    throw FormatError("GGUF: tensor '" + s.name + "' must be a finite, non-negative scale");
  const uint8_t* data = arena.copy(f, t);
  return lut ? ternary_lut_weight(data, rows, cols, scale, storage) : ternary_weight(data, rows, cols, scale);
}

// A TQ1_0 / TQ2_0 matrix of llama.cpp (quant/ternary_import.h), rewritten into
// t2 codes in the arena (these files are ternary models with one scale per
// tensor; the kernels then see no difference from our own t2 matrices).
Weight as_tq_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, int64_t rows, int64_t cols,
                    TernaryArena& arena) {
  check_matrix_shape(t, rows, cols);
  uint8_t* codes = arena.take(ternary_row_bytes(cols) * size_t(rows), t.name);
  float scale = 0.0f;
  if (!ternary_from_tq(t.type, t.data, rows, cols, codes, &scale))
    throw UnsupportedError("tensor '" + t.name + "' (" + type_geometry(uint32_t(t.type)).name +
                           ") has blocks with different scales; only ternary models with one scale per tensor "
                           "(BitNet b1.58) can run it");
  if (!std::isfinite(scale) || scale < 0.0f)
    throw FormatError("GGUF: tensor '" + t.name + "' has a negative or non-finite block scale");
  f.drop_pages(t.data, size_t(t.nbytes));  // the t2 copy is the one the kernels read
  return ternary_weight(codes, rows, cols, scale);
}

// A W8A8 matrix (docs/FORMAT.md "W8A8"): `t` holds the weights as I8
// ([cols, rows]), described by minicpm_edge.w8a8.<name> = [8, 8], with
// <name>.scale, one F32 per row.
Weight as_w8a8_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, const gguf::Value& desc, int64_t rows,
                      int64_t cols) {
  const std::string key = "minicpm_edge.w8a8." + t.name;
  if (!desc.is_array() || desc.array_size() != 2 || desc.arr_u.size() != 2)
    throw FormatError("GGUF: '" + key + "' must be an array of 2 unsigned integers [8, 8]");
  if (desc.arr_u[0] != 8 || desc.arr_u[1] != 8)
    throw UnsupportedError("tensor '" + t.name + "': W8A8 descriptor [" + std::to_string(desc.arr_u[0]) + ", " +
                           std::to_string(desc.arr_u[1]) + "] is not supported (weight and activation bits: [8, 8])");
  if (t.type != GgmlType::I8 || t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows)
    throw FormatError("GGUF: W8A8 tensor '" + t.name + "' must be I8 of shape [" + std::to_string(cols) + ", " +
                      std::to_string(rows) + "], found " + type_geometry(uint32_t(t.type)).name + " " + shape_str(t));
  if (cols > kW8A8MaxCols)
    throw UnsupportedError("tensor '" + t.name + "': W8A8 rows of " + std::to_string(cols) +
                           " inputs are not supported (at most " + std::to_string(kW8A8MaxCols) + ")");
  const gguf::TensorInfo& s = require(f, t.name + ".scale");
  if (s.type != GgmlType::F32 || s.n_dims != 1 || s.ne[0] != rows)
    throw FormatError("GGUF: tensor '" + s.name + "' must be F32 of shape [" + std::to_string(rows) + "], found " +
                      type_geometry(uint32_t(s.type)).name + " " + shape_str(s));
  const float* scales = reinterpret_cast<const float*>(s.data);
  for (int64_t r = 0; r < rows; ++r)
    if (!std::isfinite(scales[r]) || scales[r] < 0.0f)
      throw FormatError("GGUF: tensor '" + s.name + "' must hold finite, non-negative scales");
  return w8a8_weight(reinterpret_cast<const int8_t*>(t.data), scales, rows, cols, t.name);
}

Weight as_matrix(const gguf::TensorInfo& t, int64_t rows, int64_t cols) {
  check_matrix_shape(t, rows, cols);
  const uint32_t id = static_cast<uint32_t>(t.type);
  constexpr uint32_t n_ids = sizeof(KernelTable::weight) / sizeof(KernelTable::weight[0]);
  if (id >= n_ids || !kernels().weight[id].vec_dot)
    throw UnsupportedError("tensor '" + t.name + "' has type " + type_geometry(uint32_t(t.type)).name +
                           ", which this runtime cannot multiply yet");
  Weight w;
  w.type = t.type;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = row_bytes(t.type, cols);
  w.data = t.data;
  return w;
}

std::vector<float> as_vector(const gguf::TensorInfo& t, int64_t n) {
  if (t.n_elements() != n || t.ne[0] != n)
    throw FormatError("GGUF: tensor '" + t.name + "' has shape " + shape_str(t) + ", expected [" +
                      std::to_string(n) + "]");
  std::vector<float> v(static_cast<size_t>(n));
  dequantize_row(t.type, t.data, v.data(), n);
  return v;
}

std::vector<float> optional_vector(const gguf::GgufFile& f, const std::string& name, int64_t n) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  return t ? as_vector(*t, n) : std::vector<float>();
}

}  // namespace

Weight ternary_lut_weight(const uint8_t* blocks, int64_t rows, int64_t cols, float scale,
                          std::vector<AlignedBuffer>& storage) {
  const int64_t padded_rows = tl3_blocks(rows) * kTl3BlockRows;
  AlignedBuffer bias = weight_buffer(size_t(padded_rows) * sizeof(int32_t));
  int32_t* b = reinterpret_cast<int32_t*>(bias.get());
  tl3_row_bias(blocks, padded_rows, cols, b);
  Weight w;
  w.type = GgmlType::I8;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = 0;
  w.data = blocks;
  w.ternary = TernaryFormat{kTernaryTL3, scale};
  w.ternary_bias = b;
  storage.push_back(std::move(bias));
  return w;
}

Weight w8a8_weight(const int8_t* data, const float* scales, int64_t rows, int64_t cols, const std::string& name) {
  if (std::memchr(data, 0x80, size_t(rows) * size_t(cols)) != nullptr)
    throw FormatError("W8A8 tensor '" + name + "' holds -128; weights must be in [-127, 127]");
  Weight w;
  w.type = GgmlType::I8;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = size_t(cols);
  w.data = reinterpret_cast<const uint8_t*>(data);
  w.w8a8_scale = scales;
  return w;
}

Weight ternary_weight(const uint8_t* codes, int64_t rows, int64_t cols, float scale) {
  Weight w;
  w.type = GgmlType::I8;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = ternary_row_bytes(cols);
  w.data = codes;
  w.ternary = TernaryFormat{kTernaryT2, scale};
  return w;
}

void embedding_row(const Weight& w, int64_t r, float* out) {
  if (w.ternary.kind == kTernaryTL3) {
    tl3_decode_row(w.data, w.cols, r, 0, w.cols, w.ternary.scale, out);
    return;
  }
  if (w.ternary.kind > 0) {
    ternary_decode_row(w.row(r), w.cols, w.ternary.scale, out);
    return;
  }
  if (w.w8a8_scale) {
    const int8_t* row = reinterpret_cast<const int8_t*>(w.row(r));
    for (int64_t k = 0; k < w.cols; ++k) out[k] = float(row[k]) * w.w8a8_scale[r];
    return;
  }
  if (w.minifloat.exp_bits > 0) {
    minifloat_row(w, r, 0, w.cols, out);
    return;
  }
  if (w.lowbit.bits > 0) {
    const int64_t per_row = w.cols / w.lowbit.group;
    lowbit_dequantize_row(w.lowbit, w.cols, w.row(r), w.lowbit_scale + r * per_row,
                          w.lowbit_min ? w.lowbit_min + r * per_row : nullptr, out);
    return;
  }
  dequantize_row(w.type, w.row(r), out, w.cols);
}

ModelWeights bind_weights(const gguf::GgufFile& f, const ModelConfig& c) {
  ModelWeights w;
  TernaryArena arena(f);
  // Any matrix may be low-bit (the embedding table too: its rows are decoded
  // one at a time, and a tied head is packed from it like any matrix).
  auto matrix = [&f, &w, &arena](const gguf::TensorInfo& t, int64_t rows, int64_t cols) {
    if (t.type == GgmlType::TQ1_0 || t.type == GgmlType::TQ2_0) return as_tq_matrix(f, t, rows, cols, arena);
    const gguf::Value* lowbit = f.find("minicpm_edge.lowbit." + t.name);
    const gguf::Value* ternary = f.find("minicpm_edge.ternary." + t.name);
    const gguf::Value* w8a8 = f.find("minicpm_edge.w8a8." + t.name);
    const gguf::Value* minifloat = f.find("minicpm_edge.minifloat." + t.name);
    if ((lowbit != nullptr) + (ternary != nullptr) + (w8a8 != nullptr) + (minifloat != nullptr) > 1)
      throw FormatError("GGUF: tensor '" + t.name +
                        "' has more than one descriptor (low-bit, ternary, W8A8, minifloat)");
    if (w8a8) return as_w8a8_matrix(f, t, *w8a8, rows, cols);
    if (minifloat) return as_minifloat_matrix(f, t, *minifloat, rows, cols);
    if (lowbit) return as_lowbit_matrix(f, t, *lowbit, rows, cols);
    if (ternary) return as_ternary_matrix(f, t, *ternary, rows, cols, arena, w.packed_storage);
    return as_matrix(t, rows, cols);
  };
  const int64_t E = c.n_embd, D = c.head_dim;
  const int64_t q_dim = int64_t(c.n_head) * D, kv_dim = int64_t(c.n_head_kv) * D;
  const gguf::TensorInfo& emb = require(f, "token_embd.weight");
  int64_t n_vocab = emb.ne[1];
  w.tok_embd = matrix(emb, n_vocab, E);
  w.output_norm = as_vector(require(f, "output_norm.weight"), E);
  const gguf::TensorInfo* out = f.find_tensor("output.weight");
  w.output = out ? matrix(*out, n_vocab, E) : w.tok_embd;

  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    L.attn_norm = as_vector(require(f, p + "attn_norm.weight"), E);
    L.ffn_norm = as_vector(require(f, p + "ffn_norm.weight"), E);
    L.wq = matrix(require(f, p + "attn_q.weight"), q_dim, E);
    L.wk = matrix(require(f, p + "attn_k.weight"), kv_dim, E);
    L.wv = matrix(require(f, p + "attn_v.weight"), kv_dim, E);
    L.wo = matrix(require(f, p + "attn_output.weight"), E, q_dim);
    L.bq = optional_vector(f, p + "attn_q.bias", q_dim);
    L.bk = optional_vector(f, p + "attn_k.bias", kv_dim);
    L.bv = optional_vector(f, p + "attn_v.bias", kv_dim);
    L.w_gate = matrix(require(f, p + "ffn_gate.weight"), c.n_ff, E);
    L.w_up = matrix(require(f, p + "ffn_up.weight"), c.n_ff, E);
    L.w_down = matrix(require(f, p + "ffn_down.weight"), E, c.n_ff);
    if (c.sub_norms) {
      L.attn_sub_norm = as_vector(require(f, p + "attn_sub_norm.weight"), q_dim);
      L.ffn_sub_norm = as_vector(require(f, p + "ffn_sub_norm.weight"), c.n_ff);
    }
    // llama.cpp's bitnet files may carry a per-tensor output scale beside a
    // matrix (blk.N.attn_q.scale, ...); this runtime does not apply them, so
    // refuse rather than compute something else.
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
      if (f.find_tensor(p + m + ".scale"))
        throw UnsupportedError("tensor '" + p + m + ".scale' (a per-tensor output scale) is not supported");
  }
  const int64_t half_rot = c.n_rot / 2;
  w.rope_freqs = optional_vector(f, "rope_freqs.weight", half_rot);
  w.rope_long = optional_vector(f, "rope_factors_long.weight", half_rot);
  w.rope_short = optional_vector(f, "rope_factors_short.weight", half_rot);
  if (c.rope_scaling == RopeScaling::LongRope && w.rope_long.empty() && w.rope_short.empty())
    throw FormatError("GGUF: LongRoPE scaling needs rope_factors_long/short tensors");
  if (arena.buf) w.packed_storage.push_back(std::move(arena.buf));
  return w;
}


// A W8A8 matrix's rows into the kernels' groups (kernels/w8a8_layout.h).
void pack_w8a8(Weight& m, const gguf::GgufFile* file, ThreadPool* pool, std::vector<AlignedBuffer>& storage) {
  const int64_t groups = w8a8_groups(m.rows);
  const size_t gb = w8a8_group_bytes(m.cols);
  AlignedBuffer buf = weight_buffer(gb * size_t(groups));
  auto pack_one = [&](int64_t g, int) {
    const int64_t r0 = g * kW8A8Rows;
    w8a8_pack_group(reinterpret_cast<const int8_t*>(m.row(r0)), m.row_bytes,
                    int(std::min<int64_t>(kW8A8Rows, m.rows - r0)), m.cols, buf.get() + size_t(g) * gb);
  };
  if (pool != nullptr) pool->parallel_for(groups, pack_one);
  else for (int64_t g = 0; g < groups; ++g) pack_one(g, 0);
  m.w8a8_groups = buf.get();
  storage.push_back(std::move(buf));
  if (file) file->drop_pages(m.data, size_t(m.rows) * m.row_bytes);
}

void pack_weight(Weight& m, const gguf::GgufFile* file, ThreadPool* pool, std::vector<AlignedBuffer>& storage) {
  if (m.ternary.kind > 0) return;  // used in place (kernels/ternary_layout.h)
  if (m.w8a8_scale) {
    if (!m.w8a8_groups) pack_w8a8(m, file, pool, storage);
    return;
  }
  // A minifloat matrix that is exactly Q8_0 becomes Q8_0 and is packed as such below.
  if (m.minifloat.exp_bits > 0 && !minifloat_to_q8_0(m, file, storage)) {
    pack_minifloat(m, file, storage);
    return;
  }
  const bool lowbit = m.lowbit.bits > 0;
  const PackedKind kind = lowbit ? PackedKind::LutTile : packed_kind_for(m.type);
  const int group_rows = packed_group_rows(kind);
  // Low-bit tiles cover every row (the last one padded), other kinds whole groups.
  const int64_t groups = lowbit ? (m.rows + group_rows - 1) / group_rows : m.rows / group_rows;
  const size_t group_bytes = lowbit ? lut_tile_bytes(m.lowbit, m.cols) : packed_group_bytes(kind, m.cols);
  if (group_bytes == 0 || groups == 0) return;
  const size_t total = group_bytes * size_t(groups);
  AlignedBuffer buf = weight_buffer(total);
  auto pack_one = [&](int64_t g, int) {
    uint8_t* dst = buf.get() + size_t(g) * group_bytes;
    const uint8_t* src = m.row(g * group_rows);
    if (lowbit) {
      const int64_t per_row = m.cols / m.lowbit.group, r0 = g * group_rows;
      lut_pack_tile(m.lowbit, m.cols, src, m.row_bytes, m.lowbit_scale + r0 * per_row,
                    m.lowbit_min ? m.lowbit_min + r0 * per_row : nullptr, per_row,
                    int(std::min<int64_t>(group_rows, m.rows - r0)), dst);
    } else if (is_panel16(kind)) pack_panel16(src, m.row_bytes, m.cols, reinterpret_cast<uint16_t*>(dst));
    else pack_group(kind, src, m.row_bytes, m.cols / kPackBlock, dst);
  };
  if (pool != nullptr) pool->parallel_for(groups, pack_one);
  else for (int64_t g = 0; g < groups; ++g) pack_one(g, 0);
  m.packed_kind = kind;
  m.packed_rows = lowbit ? m.rows : groups * group_rows;
  m.packed_group_bytes = group_bytes;
  m.packed = buf.get();
  storage.push_back(std::move(buf));
  if (file) {
    file->drop_pages(m.data, size_t(m.packed_rows) * m.row_bytes);
    if (lowbit) {
      const size_t side_bytes = size_t(m.rows) * size_t(m.cols / m.lowbit.group) * sizeof(uint16_t);
      file->drop_pages(reinterpret_cast<const uint8_t*>(m.lowbit_scale), side_bytes);
      if (m.lowbit_min) file->drop_pages(reinterpret_cast<const uint8_t*>(m.lowbit_min), side_bytes);
    }
  }
}

void pack_weights(ModelWeights& w, const gguf::GgufFile* file, ThreadPool* pool) {
  for (LayerWeights& L : w.layers)
    for (Weight* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      pack_weight(*m, file, pool, w.packed_storage);
  pack_weight(w.output, file, pool, w.packed_storage);
}

}  // namespace mce
