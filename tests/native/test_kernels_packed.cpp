// Packed-weight GEMMs (KernelTable::gemm_x8, kernels/packed_layout.h): every
// level must give the scalar reference's bits (the GemmX8Fn contract in
// dispatch.h), for 1..9 tokens (tiles of 4 and every remainder) and several
// block counts, honouring the activation, sums and output strides; and each
// output must be the exact dot of its row within the documented tolerance.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/packed_layout.h"

namespace mce::test {
namespace {

struct PackedCase {
  GgmlType type;
  PackedKind kind;
};
const PackedCase kPacked[3] = {{GgmlType::Q4_0, PackedKind::Q4_0x8},
                               {GgmlType::Q4_1, PackedKind::Q4_1x8},
                               {GgmlType::Q8_0, PackedKind::Q8_0x8}};

TEST_CASE("gemm_x8: every level gives the scalar bits and the exact dots") {
  Rng rng(808);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  const float sentinel = -777.0f;
  for (const PackedCase& pc : kPacked) {
    REQUIRE(packed_kind_for(pc.type) == pc.kind);
    for (int64_t nb : {1, 2, 3, 5}) {
      const int64_t K = nb * 32;
      const size_t row_bytes_w = row_bytes(pc.type, K);
      std::vector<uint8_t> rows;
      for (int r = 0; r < kPackRows; ++r) {
        const std::vector<uint8_t> row = random_weight_row(rng, pc.type, K);
        rows.insert(rows.end(), row.begin(), row.end());
      }
      std::vector<uint8_t> group(size_t(nb) * packed_block_bytes(pc.kind));
      pack_group(pc.kind, rows.data(), row_bytes_w, nb, group.data());

      for (int64_t n_tok : {1, 2, 3, 4, 5, 7, 9}) {
        // Strides larger than the data, so a kernel that ignores them fails.
        const size_t act_stride = act_row_bytes(GgmlType::Q8_0, K) + 34;
        const int64_t sums_stride = nb + 3, y_stride = kPackRows + 5;
        std::vector<uint8_t> act(act_stride * size_t(n_tok), 0x5A);
        std::vector<int32_t> sums(size_t(sums_stride * n_tok), 0x7FFFFFFF);
        for (int64_t t = 0; t < n_tok; ++t) {
          const std::vector<uint8_t> q = quantize_scalar(GgmlType::Q8_0, random_activation(rng, K));
          std::memcpy(act.data() + size_t(t) * act_stride, q.data(), q.size());
          for (int64_t b = 0; b < nb; ++b) {
            int32_t s = 0;
            for (int i = 0; i < 32; ++i) s += reinterpret_cast<const Q8_0Block*>(q.data())[b].qs[i];
            sums[size_t(t * sums_stride + b)] = s;
          }
        }
        std::vector<float> want(size_t(y_stride * n_tok), sentinel);
        scalar.gemm_x8[int(pc.kind)](nb, group.data(), act.data(), act_stride, sums.data(), sums_stride, n_tok,
                                     want.data(), y_stride);
        // The scalar outputs against the exact dots of the GGUF rows.
        for (int64_t t = 0; t < n_tok; ++t) {
          for (int r = 0; r < kPackRows; ++r) {
            const Exact e = exact_dot(pc.type, rows.data() + size_t(r) * row_bytes_w, GgmlType::Q8_0,
                                      act.data() + size_t(t) * act_stride, K);
            INFO(type_name(pc.type), " nb=", nb, " token ", t, " row ", r);
            CHECK(std::fabs(want[size_t(t * y_stride + r)] - e.value) <= dot_tolerance(pc.type, K, e.magnitude));
          }
        }
        for (Isa isa : levels_to_test()) {
          std::vector<float> got(want.size(), sentinel);
          kernels_for(isa).gemm_x8[int(pc.kind)](nb, group.data(), act.data(), act_stride, sums.data(), sums_stride,
                                                 n_tok, got.data(), y_stride);
          bool same = true;
          for (size_t i = 0; i < got.size(); ++i) same = same && float_bits(got[i]) == float_bits(want[i]);
          INFO(level_name(isa), " ", type_name(pc.type), " nb=", nb, " n_tok=", n_tok);
          CHECK(same);
        }
      }
    }
  }
}

TEST_CASE("packed rows decode to the GGUF decoder's bits") {
  Rng rng(909);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  for (const PackedCase& pc : kPacked) {
    const int64_t nb = 3, K = nb * 32;
    const size_t rb = row_bytes(pc.type, K);
    std::vector<uint8_t> rows;
    for (int r = 0; r < kPackRows; ++r) {
      const std::vector<uint8_t> row = random_weight_row(rng, pc.type, K);
      rows.insert(rows.end(), row.begin(), row.end());
    }
    std::vector<uint8_t> group(size_t(nb) * packed_block_bytes(pc.kind));
    pack_group(pc.kind, rows.data(), rb, nb, group.data());
    for (int r = 0; r < kPackRows; ++r) {
      std::vector<float> got(static_cast<size_t>(K)), want(static_cast<size_t>(K));
      unpack_group_row(pc.kind, group.data(), nb, r, got.data());
      scalar.dequantize_row[uint32_t(pc.type)](rows.data() + size_t(r) * rb, want.data(), K);
      bool same = true;
      for (int64_t i = 0; i < K; ++i) same = same && float_bits(got[size_t(i)]) == float_bits(want[size_t(i)]);
      INFO(type_name(pc.type), " row ", r);
      CHECK(same);
    }
  }
}

}  // namespace
}  // namespace mce::test
