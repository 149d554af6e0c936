// Kernel microbenchmark entry point for bench/: times the matmul driver on
// random matrices of one shape and weight format, cycling through enough
// copies that every pass streams its weights from DRAM (as decode does), and
// returns per-matmul times. Values are random: speed does not depend on them.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/ternary_layout.h"
#include "kernels/ternary_lut_layout.h"
#include "model/weights.h"
#include "quant/ggml_types.h"

namespace py = pybind11;

namespace mce::py_bind {
namespace {

struct RandomMatrix {
  std::vector<uint8_t> data;           // file-layout rows (or codes)
  std::vector<uint16_t> scale, min;    // low-bit groups
  ModelWeights owner;                  // packed copy; owner.output is the matrix
  size_t ternary_bytes = 0;            // t2 / tl3: the bytes one matmul streams
};

// A binary16 scale between 2^-9 and 2^-7: finite products for any format.
uint16_t random_scale(std::mt19937& rng) { return uint16_t(0x1800 + (rng() & 0x7ff)); }

void make_matrix(const std::string& kind, int64_t rows, int64_t cols, std::mt19937& rng, RandomMatrix& m) {
  Weight w;
  w.rows = rows;
  w.cols = cols;
  std::smatch match;
  static const std::regex lowbit("w([1-4])g(32|64|128)(s?)");
  if (kind == "t2" || kind == "tl3") {
    // Random bytes: every t2 code and tl3 index is as costly as a valid one
    // (the kernels do not branch on values); scale 1.
    const bool lut = kind == "tl3";
    if (!lut && cols % kTernaryChunk != 0) throw ArgumentError("t2 needs cols a multiple of 128");
    m.ternary_bytes = lut ? tl3_block_bytes(cols) * size_t(tl3_blocks(rows)) : ternary_row_bytes(cols) * size_t(rows);
    // On huge pages, as the model loads ternary matrices (weights.cpp).
    AlignedBuffer buf = weight_buffer(m.ternary_bytes);
    for (size_t i = 0; i < m.ternary_bytes; ++i) buf.get()[i] = uint8_t(rng());
    const uint8_t* codes = buf.get();
    m.owner.packed_storage.push_back(std::move(buf));
    m.owner.output = lut ? ternary_lut_weight(codes, rows, cols, 1.0f, m.owner.packed_storage)
                         : ternary_weight(codes, rows, cols, 1.0f);
    return;
  }
  if (std::regex_match(kind, match, lowbit)) {
    LowBitFormat f{std::stoi(match[1]), std::stoi(match[2]), match[3].length() == 0};
    if (cols % f.group != 0) throw ArgumentError("cols must be a multiple of the group size");
    w.type = GgmlType::I8;
    w.row_bytes = lowbit_code_row_bytes(f, cols);
    m.data.resize(w.row_bytes * size_t(rows));
    for (auto& b : m.data) b = uint8_t(rng());
    m.scale.resize(size_t(rows * (cols / f.group)));
    for (auto& s : m.scale) s = random_scale(rng);
    if (f.has_min) m.min.assign(m.scale.size(), 0x9800);  // -2^-9
    w.lowbit = f;
    w.lowbit_scale = m.scale.data();
    w.lowbit_min = f.has_min ? m.min.data() : nullptr;
  } else {
    GgmlType t;
    if (kind == "q4_0") t = GgmlType::Q4_0;
    else if (kind == "q8_0") t = GgmlType::Q8_0;
    else if (kind == "f16") t = GgmlType::F16;
    else if (kind == "q6_k") t = GgmlType::Q6_K;
    else throw ArgumentError("unknown weight kind '" + kind + "' (q4_0, q8_0, q6_k, f16, w{1-4}g{32,64,128}[s], t2, tl3)");
    const TypeGeometry g = type_geometry(uint32_t(t));
    if (cols % g.block_size != 0) throw ArgumentError("cols must be a multiple of the block size");
    w.type = t;
    w.row_bytes = row_bytes(t, cols);
    m.data.resize(w.row_bytes * size_t(rows));
    for (auto& b : m.data) b = uint8_t(rng());
    // Every block's binary16 scale (an F16 value, the leading d of a Q4_0 /
    // Q8_0 block, the trailing d of a Q6_K block) gets a finite value.
    const size_t d_at = t == GgmlType::Q6_K ? g.type_size - 2 : 0;
    uint8_t* p = m.data.data();
    for (size_t i = 0, n = m.data.size() / g.type_size; i < n; ++i, p += g.type_size) {
      const uint16_t s = random_scale(rng);
      std::memcpy(p + d_at, &s, 2);
    }
  }
  w.data = m.data.data();
  m.owner.output = w;
  pack_weights(m.owner, nullptr);
  // When every row is packed, the packed copy is all the kernels read (rows
  // past the last packed group are read from `data`).
  if (m.owner.output.packed != nullptr && m.owner.output.packed_rows == rows) {
    m.data.clear();
    m.data.shrink_to_fit();
    m.owner.output.data = nullptr;
  }
}

py::dict bench_matmul(const std::string& kind, int64_t rows, int64_t cols, int64_t n_tok, int n_threads, int reps,
                      int64_t min_bytes, bool int8) {
  if (rows < 1 || cols < 1 || n_tok < 1 || reps < 1 || n_threads < 1 || n_threads > 64 || min_bytes < 0)
    throw ArgumentError("rows, cols, n_tok, reps, n_threads must be positive (n_threads <= 64)");
  std::mt19937 rng(1234);
  std::vector<RandomMatrix> mats(1);
  make_matrix(kind, rows, cols, rng, mats[0]);
  const Weight& w0 = mats[0].owner.output;
  // Bytes one matmul reads: the packed groups (low-bit tiles round the rows
  // up to whole tiles) and the rows left in the file layout.
  const int64_t group_rows = w0.packed ? packed_group_rows(w0.packed_kind) : 1;
  const size_t packed_bytes = w0.packed ? w0.packed_group_bytes * size_t((w0.packed_rows + group_rows - 1) / group_rows) : 0;
  const size_t bytes = mats[0].ternary_bytes ? mats[0].ternary_bytes
                                             : packed_bytes + size_t(w0.rows - w0.packed_rows) * w0.row_bytes;
  const int64_t copies = std::max<int64_t>(1, (min_bytes + int64_t(bytes) - 1) / int64_t(bytes));
  if (copies > 100000) throw ArgumentError("min_bytes / matrix size is too large");
  mats.resize(size_t(copies));
  for (int64_t c = 1; c < copies; ++c) make_matrix(kind, rows, cols, rng, mats[size_t(c)]);
  std::vector<float> x(size_t(n_tok * cols)), y(size_t(n_tok * rows));
  for (auto& v : x) v = float(int(rng() % 2001) - 1000) / 1000.0f;
  std::vector<double> times;
  {
    py::gil_scoped_release nogil;
    ThreadPool pool(n_threads);
    std::vector<uint8_t> act;
    const ActivationPrecision prec = int8 ? ActivationPrecision::Int8 : ActivationPrecision::Exact;
    for (auto& m : mats) matmul(m.owner.output, x.data(), n_tok, y.data(), pool, act, prec);  // warm-up
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (auto& m : mats) matmul(m.owner.output, x.data(), n_tok, y.data(), pool, act, prec);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(copies));
    }
  }
  py::dict out;
  out["seconds"] = times;
  out["weight_bytes"] = bytes;
  out["copies"] = copies;
  return out;
}

}  // namespace

void register_bench(py::module_& m) {
  m.def("bench_matmul", &bench_matmul, py::arg("kind"), py::arg("rows"), py::arg("cols"), py::arg("n_tok") = 1,
        py::arg("n_threads") = 1, py::arg("reps") = 5, py::arg("min_bytes") = int64_t(512) << 20,
        py::arg("int8") = true,
        "Seconds per matmul (one entry per repetition) of the matmul driver on random matrices of one "
        "format (q4_0, q8_0, f16, w{b}g{G}[s], ternary t2 / tl3), cycling through copies totalling at least min_bytes so "
        "the weights come from DRAM; also returns the weight bytes one matmul reads.");
}

}  // namespace mce::py_bind
