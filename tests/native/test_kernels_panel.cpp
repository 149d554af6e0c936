// f32 panel GEMM (KernelTable::gemm_f32_panel): every level must give the
// scalar reference's bits (one fma per k, in order; dispatch.h GemmPanelFn),
// for ragged K, 1..9 tokens, partial panels (n_rows < 16), both the store and
// the accumulate form, and strides larger than the data.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/packed_layout.h"

namespace mce::test {
namespace {

TEST_CASE("gemm_f32_panel: every level gives the scalar bits") {
  Rng rng(1601);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  const float sentinel = -999.0f;
  for (int64_t K : {1, 3, 16, 17, 100}) {
    std::vector<float> panel = random_activation(rng, K * kPanelRows);
    for (int64_t n_tok : {1, 2, 3, 4, 5, 9}) {
      const int64_t ldx = K + 3, ldy = kPanelRows + 2;
      const std::vector<float> x = random_activation(rng, ldx * n_tok);
      const std::vector<float> y0 = random_activation(rng, ldy * n_tok);
      for (int n_rows : {16, 13, 1}) {
        // Rows past n_rows are zero in a real panel.
        std::vector<float> p = panel;
        for (int64_t k = 0; k < K; ++k)
          for (int i = n_rows; i < kPanelRows; ++i) p[size_t(k * kPanelRows + i)] = 0.0f;
        for (bool accumulate : {false, true}) {
          std::vector<float> want = y0;
          for (int64_t t = 0; t < n_tok; ++t)
            for (int i = n_rows; i < ldy; ++i) want[size_t(t * ldy + i)] = sentinel;
          const std::vector<float> start = want;
          scalar.gemm_f32_panel(K, p.data(), x.data(), ldx, n_tok, want.data(), ldy, n_rows, accumulate);
          for (Isa isa : levels_to_test()) {
            std::vector<float> got = start;
            kernels_for(isa).gemm_f32_panel(K, p.data(), x.data(), ldx, n_tok, got.data(), ldy, n_rows, accumulate);
            bool same = true;
            for (size_t i = 0; i < got.size(); ++i) same = same && float_bits(got[i]) == float_bits(want[i]);
            INFO(level_name(isa), " K=", K, " n_tok=", n_tok, " n_rows=", n_rows, " accumulate=", accumulate);
            CHECK(same);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace mce::test

namespace mce::test {
namespace {

// Decode GEMV over 16-bit panels (KernelTable::gemv_f16_panel /
// gemv_bf16_panel): every level gives the scalar bits (four fma chains by
// k mod 4; dispatch.h GemvPanel16Fn), for K with 0-3 columns past the last
// step of 4, and the scalar result is within f32 rounding of the double sum
// of the widened weights.
TEST_CASE("gemv panel16: every level gives the scalar bits, near the double sum") {
  Rng rng(1607);
  for (bool bf16 : {false, true}) {
    for (int64_t K : {1, 2, 3, 4, 5, 7, 64, 130, 1027}) {
      std::vector<uint16_t> panel(size_t(K) * kPanel16Rows);
      for (auto& h : panel) h = bf16 ? random_bf16(rng) : random_finite_f16(rng);
      const std::vector<float> x = random_activation(rng, K);
      const KernelTable& scalar = kernels_for(Isa::Scalar);
      float want[kPanel16Rows];
      (bf16 ? scalar.gemv_bf16_panel : scalar.gemv_f16_panel)(K, panel.data(), x.data(), want);
      for (int i = 0; i < kPanel16Rows; ++i) {
        double exact = 0.0, magnitude = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          const uint16_t h = panel[size_t(k * kPanel16Rows + i)];
          const double w = bf16 ? bf16_to_f32(h) : fp16_to_f32(h);
          exact += w * x[size_t(k)];
          magnitude += std::fabs(w * x[size_t(k)]);
        }
        INFO("bf16=", bf16, " K=", K, " row ", i);
        CHECK(std::fabs(want[i] - exact) <= 2.0 * 5.96e-8 * double(K + 4) * magnitude + 1e-37);
      }
      for (Isa isa : levels_to_test()) {
        float got[kPanel16Rows];
        const KernelTable& kt = kernels_for(isa);
        (bf16 ? kt.gemv_bf16_panel : kt.gemv_f16_panel)(K, panel.data(), x.data(), got);
        bool same = true;
        for (int i = 0; i < kPanel16Rows; ++i) same = same && float_bits(got[i]) == float_bits(want[i]);
        INFO(level_name(isa), " bf16=", bf16, " K=", K);
        CHECK(same);
      }
    }
  }
}

TEST_CASE("pack_panel16 puts row r, column k at k*16 + r and unpacks back") {
  Rng rng(1609);
  const int64_t cols = 37;
  const size_t row_bytes = size_t(cols) * 2 + 6;  // rows further apart than their data
  std::vector<uint8_t> rows(row_bytes * kPanel16Rows);
  fill_random(rng, rows.data(), rows.size());
  std::vector<uint16_t> panel(size_t(cols) * kPanel16Rows);
  pack_panel16(rows.data(), row_bytes, cols, panel.data());
  CHECK(packed_group_bytes(PackedKind::F16x16, cols) == panel.size() * 2);
  for (int r = 0; r < kPanel16Rows; ++r) {
    std::vector<uint16_t> back(static_cast<size_t>(cols));
    unpack_panel16_row(panel.data(), cols, r, back.data());
    for (int64_t k = 0; k < cols; ++k) {
      uint16_t v;
      std::memcpy(&v, rows.data() + size_t(r) * row_bytes + 2 * size_t(k), 2);
      CHECK(panel[size_t(k * kPanel16Rows + r)] == v);
      CHECK(back[size_t(k)] == v);
    }
  }
}

}  // namespace
}  // namespace mce::test
