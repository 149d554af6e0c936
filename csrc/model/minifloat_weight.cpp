#include "model/minifloat_weight.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "kernels/minifloat_layout.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/ggml_types.h"

namespace mce {

namespace {

std::string shape_str(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

void check_2d(const gguf::TensorInfo& t, GgmlType type, const char* type_name, int64_t ne0, int64_t ne1) {
  if (t.type != type || t.n_dims != 2 || t.ne[0] != ne0 || t.ne[1] != ne1)
    throw FormatError("GGUF: minifloat tensor '" + t.name + "' must be " + type_name + " of shape [" +
                      std::to_string(ne0) + ", " + std::to_string(ne1) + "], found " + shape_str(t));
}

}  // namespace

Weight minifloat_weight(const MiniFloatFormat& fmt, const uint8_t* codes, const uint8_t* scales, int64_t rows,
                        int64_t cols, const std::string& what) {
  const size_t code_bytes = fmt.code_row_bytes(cols), scale_bytes = fmt.scale_row_bytes(cols);
  for (int64_t r = 0; r < rows; ++r)
    if (const char* problem =
            minifloat_row_problem(fmt, cols, codes + size_t(r) * code_bytes, scales + size_t(r) * scale_bytes))
      throw FormatError("GGUF: minifloat matrix '" + what + "' row " + std::to_string(r) + " has " + problem);
  Weight w;
  w.type = GgmlType::I8;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = code_bytes;
  w.data = codes;
  w.minifloat = fmt;
  w.mf_scale = scales;
  return w;
}

Weight as_minifloat_matrix(const gguf::GgufFile& f, const gguf::TensorInfo& t, const gguf::Value& desc, int64_t rows,
                           int64_t cols) {
  const std::string key = "minicpm_edge.minifloat." + t.name;
  if (!desc.is_array() || desc.array_size() != 4 || desc.arr_u.size() != 4)
    throw FormatError("GGUF: '" + key +
                      "' must be an array of 4 unsigned integers [exp_bits, man_bits, block, scaling]");
  for (uint64_t v : desc.arr_u)
    if (v > 1024) throw FormatError("GGUF: '" + key + "' has out-of-range values");
  MiniFloatFormat fmt;
  fmt.exp_bits = int(desc.arr_u[0]);
  fmt.man_bits = int(desc.arr_u[1]);
  fmt.block = int(desc.arr_u[2]);
  if (desc.arr_u[3] > 2) throw UnsupportedError("tensor '" + t.name + "': minifloat scaling " +
                                                std::to_string(desc.arr_u[3]) + " is not supported (0 f16, 1 E8M0, 2 NVFP4)");
  fmt.scaling = MfScaling(desc.arr_u[3]);
  if (!fmt.valid())
    throw UnsupportedError("tensor '" + t.name + "': minifloat E" + std::to_string(fmt.exp_bits) + "M" +
                           std::to_string(fmt.man_bits) + " with block " + std::to_string(fmt.block) +
                           " and scaling " + std::to_string(desc.arr_u[3]) +
                           " is not supported (E4M3, E5M2, E3M2, E2M3, E2M1; f16 scales per 16/32/64/128, "
                           "E8M0 per 32, NVFP4 = E2M1 with E4M3 per 16)");
  if (cols % fmt.block != 0 || (fmt.bits() == 6 && cols % 4 != 0))
    throw FormatError("GGUF: tensor '" + t.name + "' has " + std::to_string(cols) +
                      " inputs, not a multiple of its block size " + std::to_string(fmt.block));
  check_2d(t, GgmlType::I8, "I8", int64_t(fmt.code_row_bytes(cols)), rows);
  const gguf::TensorInfo* s = f.find_tensor(t.name + ".scale");
  if (!s) throw FormatError("GGUF: required tensor '" + t.name + ".scale' is missing");
  const bool f16 = fmt.scaling == MfScaling::F16;
  check_2d(*s, f16 ? GgmlType::F16 : GgmlType::I8, f16 ? "F16" : "I8", cols / fmt.block, rows);
  const gguf::TensorInfo* ts = f.find_tensor(t.name + ".tensor_scale");
  if (fmt.scaling == MfScaling::NvFp4) {
    if (!ts || ts->type != GgmlType::F32 || ts->n_elements() != 1)
      throw FormatError("GGUF: NVFP4 matrix '" + t.name + "' needs tensor '" + t.name +
                        ".tensor_scale', one F32 value");
    std::memcpy(&fmt.tensor_scale, ts->data, sizeof(float));
    if (!std::isfinite(fmt.tensor_scale) || fmt.tensor_scale < 0.0f)
      throw FormatError("GGUF: tensor '" + ts->name + "' must be a finite, non-negative scale");
  } else if (ts) {
    throw FormatError("GGUF: '" + key + "' is not NVFP4, but tensor '" + ts->name + "' exists");
  }
  return minifloat_weight(fmt, t.data, s->data, rows, cols, t.name);
}

namespace {
AlignedBuffer aligned_bytes(size_t total) {
  const size_t padded = (total + 63) / 64 * 64;
  void* raw = std::aligned_alloc(64, padded > 0 ? padded : 64);
  if (raw == nullptr) throw Error("out of memory for weights (" + std::to_string(total) + " bytes)");
  return AlignedBuffer(static_cast<uint8_t*>(raw));
}
}  // namespace

bool minifloat_to_q8_0(Weight& m, const gguf::GgufFile* file, std::vector<AlignedBuffer>& storage) {
  const MiniFloatFormat& f = m.minifloat;
  if (!mf8_applies(f, m.cols)) return false;
  const int mult = f.int_multiplier();
  const int64_t nb = m.cols / kQK8_0;
  const size_t scale_bytes = f.scale_row_bytes(m.cols);
  // Every block's Q8_0 scale, or false at the first that is not exact.
  std::vector<uint16_t> d(size_t(m.rows * nb));
  for (int64_t r = 0; r < m.rows; ++r) {
    const uint8_t* scales = m.mf_scale + size_t(r) * scale_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const float s0 = minifloat_block_scale(f, scales, (b * kQK8_0) / f.block);
      const float s1 = minifloat_block_scale(f, scales, (b * kQK8_0 + 16) / f.block);
      const float ds = s0 / float(mult);  // exact: a power-of-two division of a normal f32
      const uint16_t h = f32_to_fp16(ds);
      if (s0 != s1 || fp16_to_f32(h) != ds || ds * float(mult) != s0) return false;
      d[size_t(r * nb + b)] = h;
    }
  }
  const size_t row_bytes = size_t(nb) * sizeof(Q8_0Block);
  AlignedBuffer buf = aligned_bytes(row_bytes * size_t(m.rows));
  const float* table = minifloat_table(f.exp_bits, f.man_bits);
  for (int64_t r = 0; r < m.rows; ++r) {
    Q8_0Block* out = reinterpret_cast<Q8_0Block*>(buf.get() + size_t(r) * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      Q8_0Block blk;
      blk.d = d[size_t(r * nb + b)];
      for (int i = 0; i < kQK8_0; ++i)
        blk.qs[i] = int8_t(std::lrint(table[minifloat_code(m.row(r), f.bits(), b * kQK8_0 + i)] * float(mult)));
      std::memcpy(out + b, &blk, sizeof blk);
    }
  }
  if (file) {
    file->drop_pages(m.data, size_t(m.rows) * m.row_bytes);
    file->drop_pages(m.mf_scale, size_t(m.rows) * scale_bytes);
  }
  Weight q;
  q.type = GgmlType::Q8_0;
  q.rows = m.rows;
  q.cols = m.cols;
  q.row_bytes = row_bytes;
  q.data = buf.get();
  storage.push_back(std::move(buf));
  m = q;
  return true;
}

void pack_minifloat(Weight& m, const gguf::GgufFile* file, std::vector<AlignedBuffer>& storage) {
  if (m.mf8 != nullptr || !mf8_applies(m.minifloat, m.cols)) return;
  const size_t row_bytes = mf8_row_bytes(m.cols);
  AlignedBuffer buf = aligned_bytes(row_bytes * size_t(m.rows));
  const size_t scale_bytes = m.minifloat.scale_row_bytes(m.cols);
  for (int64_t r = 0; r < m.rows; ++r)
    mf8_pack_row(m.minifloat, m.cols, m.row(r), m.mf_scale + size_t(r) * scale_bytes, buf.get() + size_t(r) * row_bytes);
  m.mf8 = buf.get();
  storage.push_back(std::move(buf));
  if (file) {
    // Both paths read the mf8 copy from now on.
    file->drop_pages(m.data, size_t(m.rows) * m.row_bytes);
    file->drop_pages(m.mf_scale, size_t(m.rows) * scale_bytes);
  }
}

void minifloat_row(const Weight& w, int64_t r, int64_t k0, int64_t k1, float* out) {
  if (w.mf8 != nullptr) {
    mf8_decode_row(w.mf8 + size_t(r) * mf8_row_bytes(w.cols), k0, k1, out);
    return;
  }
  minifloat_decode_row(w.minifloat, w.row(r), w.mf_scale + size_t(r) * w.minifloat.scale_row_bytes(w.cols), k0, k1,
                       out);
}

}  // namespace mce
