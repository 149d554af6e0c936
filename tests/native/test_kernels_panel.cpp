// f32 panel GEMM (KernelTable::gemm_f32_panel): every level must give the
// scalar reference's bits (one fma per k, in order; dispatch.h GemmPanelFn),
// for ragged K, 1..9 tokens, partial panels (n_rows < 16), both the store and
// the accumulate form, and strides larger than the data.
#include <doctest/doctest.h>

#include <vector>

#include "kernel_test_util.h"

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
