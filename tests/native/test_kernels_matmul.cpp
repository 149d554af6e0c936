// The threaded matmul driver (kernels/matmul.h) on every level, with thread
// pools of 1, 2, 3 and 5 threads (more threads than tasks for the narrow
// cases), both activation precisions, and packed and GGUF-layout weights:
// every output against the exact value computed in double from the scalar
// decoders, within the tolerance of the dot product that produced it.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/packed_layout.h"
#include "model/weights.h"

namespace mce::test {
namespace {

// Restores the process-wide level when a test ends, even on failure.
struct IsaGuard {
  Isa saved = kernels().isa;
  ~IsaGuard() { set_isa(saved); }
};

struct Matrix {
  Weight w;
  std::vector<uint8_t> data;
  std::vector<AlignedBuffer> packed;
};

Matrix random_matrix(Rng& rng, GgmlType t, int64_t rows, int64_t cols, bool pack) {
  Matrix m;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = random_weight_row(rng, t, cols);
    m.data.insert(m.data.end(), row.begin(), row.end());
  }
  m.w.type = t;
  m.w.rows = rows;
  m.w.cols = cols;
  m.w.row_bytes = row_bytes(t, cols);
  m.w.data = m.data.data();
  if (pack) pack_weight(m.w, nullptr, nullptr, m.packed);
  return m;
}

// Exact output (t, r) and its tolerance, for the path matmul takes.
std::pair<double, double> expected(const Matrix& m, const std::vector<float>& x_t, int64_t r,
                                   ActivationPrecision precision) {
  const Weight& w = m.w;
  const GgmlType act = act_format(w.type);
  if (act == GgmlType::F32 || precision == ActivationPrecision::Exact) {
    // f32 activations against the row decoded to f32 (exactly the scalar
    // decoder's values on every level), summed as a float dot (8 interleaved
    // sums) or, from a few tokens on, by the panel GEMM's one fma per column
    // in order: the bound of a sequential sum of K terms covers both.
    std::vector<float> dec(size_t(w.cols));
    kernels_for(Isa::Scalar).dequantize_row[uint32_t(w.type)](w.row(r), dec.data(), w.cols);
    double value = 0.0, mag = 0.0;
    for (int64_t i = 0; i < w.cols; ++i) {
      value += double(dec[size_t(i)]) * x_t[size_t(i)];
      mag += std::fabs(double(dec[size_t(i)]) * x_t[size_t(i)]);
    }
    return {value, 2.0 * std::ldexp(1.0, -23) * double(w.cols + 8) * mag + std::ldexp(1.0, -130)};
  }
  // Int8: packed rows meet Q8_0 activations; the others their type's format.
  // Every level's quantizer writes the scalar bytes (test_kernels_quantize).
  const GgmlType fmt = r < w.packed_rows ? GgmlType::Q8_0 : act;
  const std::vector<uint8_t> q = quantize_scalar(fmt, x_t);
  const Exact e = exact_dot(w.type, w.row(r), fmt, q.data(), w.cols);
  return {e.value, dot_tolerance(w.type, w.cols, e.magnitude)};
}

TEST_CASE("matmul: every level, 1/2/3/5 threads, both precisions, packed and plain rows") {
  IsaGuard guard;
  Rng rng(4242);
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int n : {1, 2, 3, 5}) pools.push_back(std::make_unique<ThreadPool>(n));
  // 4 packed groups of 8 (quantized kinds) or 2 panels of 16 (F16/BF16), and
  // 5 rows in the GGUF layout.
  const int64_t rows = 37;
  for (Isa isa : levels_to_test()) {
    set_isa(isa);
    for (GgmlType t : kDotTypes) {
      const int64_t bs = block_elems(t);
      const int64_t cols = bs == 1 ? 72 : bs == 32 ? 160 : 512;
      const bool packable = packed_kind_for(t) != PackedKind::None;
      for (bool pack : {false, true}) {
        if (pack && !packable) continue;
        const Matrix m = random_matrix(rng, t, rows, cols, pack);
        for (int64_t n_tok : {1, 4, 7}) {
          std::vector<std::vector<float>> x(static_cast<size_t>(n_tok));
          std::vector<float> xs;
          for (auto& xt : x) {
            xt = random_activation(rng, cols);
            xs.insert(xs.end(), xt.begin(), xt.end());
          }
          for (ActivationPrecision precision : {ActivationPrecision::Exact, ActivationPrecision::Int8}) {
            std::vector<std::pair<double, double>> want;
            for (int64_t tt = 0; tt < n_tok; ++tt)
              for (int64_t r = 0; r < rows; ++r) want.push_back(expected(m, x[size_t(tt)], r, precision));
            for (auto& pool : pools) {
              const int64_t y_stride = rows + 3;  // the gap must stay untouched
              std::vector<float> y(size_t(y_stride * n_tok), -555.0f);
              std::vector<uint8_t> act_buf;
              matmul(m.w, xs.data(), n_tok, y.data(), *pool, act_buf, precision, y_stride);
              int bad = 0;
              std::ostringstream first;
              for (int64_t tt = 0; tt < n_tok; ++tt) {
                for (int64_t r = 0; r < y_stride; ++r) {
                  const float got = y[size_t(tt * y_stride + r)];
                  const bool ok = r >= rows ? got == -555.0f
                                            : std::fabs(got - want[size_t(tt * rows + r)].first) <=
                                                  want[size_t(tt * rows + r)].second;
                  if (!ok && bad++ == 0) {
                    first << "token " << tt << " row " << r << ": got " << got;
                    if (r < rows) first << ", want " << want[size_t(tt * rows + r)].first << " +- " << want[size_t(tt * rows + r)].second;
                  }
                }
              }
              INFO(level_name(isa), " ", type_name(t), std::string(pack ? " packed" : ""), " n_tok=", n_tok,
                   std::string(precision == ActivationPrecision::Exact ? " exact" : " int8"), " threads=", pool->size(), " ",
                   first.str());
              CHECK(bad == 0);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace mce::test
