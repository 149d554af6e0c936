// Row decoders: every level must give the scalar decoder's bits (dispatch.h:
// "bit for bit as the reference decoders"), for every type, on random rows
// with extreme scales, and on every finite binary16 value.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"

namespace mce::test {
namespace {

// Index of the first element whose bits differ, or -1.
int64_t first_bit_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (float_bits(a[i]) != float_bits(b[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

std::vector<float> decode(const KernelTable& kt, GgmlType t, const std::vector<uint8_t>& row, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n) + 1, -12345.0f);  // one sentinel past the end
  kt.dequantize_row[uint32_t(t)](row.data(), out.data(), n);
  CHECK_MESSAGE(out.back() == -12345.0f, "decoder wrote past the row");
  out.pop_back();
  return out;
}

TEST_CASE("row decoders: every level gives the scalar decoder's bits") {
  Rng rng(1234);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    for (GgmlType t : kDotTypes) {
      REQUIRE((kt.dequantize_row[uint32_t(t)] != nullptr));
      const int64_t bs = block_elems(t);
      const std::vector<int64_t> blocks =
          bs == 1 ? std::vector<int64_t>{1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 100} : std::vector<int64_t>{1, 2, 3, 5, 8};
      for (int64_t nb : blocks) {
        for (int rep = 0; rep < 3; ++rep) {
          const int64_t n = nb * bs;
          const std::vector<uint8_t> row = random_weight_row(rng, t, n);
          const int64_t at = first_bit_difference(decode(kt, t, row, n), decode(scalar, t, row, n));
          INFO(level_name(isa), " ", type_name(t), " n=", n, " first differing element ", at);
          CHECK(at == -1);
        }
      }
    }
  }
}

TEST_CASE("F16 decoders: every finite binary16 value exactly, NaN stays NaN") {
  std::vector<uint8_t> finite, nans;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t v = static_cast<uint16_t>(h);
    const bool nan = (v & 0x7C00) == 0x7C00 && (v & 0x03FF) != 0;
    std::vector<uint8_t>& dst = nan ? nans : finite;
    dst.push_back(static_cast<uint8_t>(v & 0xFF));
    dst.push_back(static_cast<uint8_t>(v >> 8));
  }
  const int64_t n_finite = static_cast<int64_t>(finite.size() / 2), n_nan = static_cast<int64_t>(nans.size() / 2);
  const std::vector<float> want = decode(kernels_for(Isa::Scalar), GgmlType::F16, finite, n_finite);
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    INFO(level_name(isa));
    CHECK(first_bit_difference(decode(kt, GgmlType::F16, finite, n_finite), want) == -1);
    // The quiet bit of a signalling NaN may be set by hardware conversions;
    // a NaN must stay a NaN of the same sign.
    const std::vector<float> got = decode(kt, GgmlType::F16, nans, n_nan);
    int bad = 0;
    for (int64_t i = 0; i < n_nan; ++i) {
      const bool neg = nans[size_t(2 * i + 1)] & 0x80;
      if (!std::isnan(got[size_t(i)]) || std::signbit(got[size_t(i)]) != neg) ++bad;
    }
    CHECK(bad == 0);
  }
}

}  // namespace
}  // namespace mce::test
