// W8A8 kernels (kernels/w8a8_layout.h; W8A8DotsFn in kernels/dispatch.h):
//   - packing: a group holds each row's weights where the layout says, as
//     offset codes, the padding as zero weights; -128 is refused; decoding a
//     row gives w * scale;
//   - dots: every level equals, exactly, the products of the plain int8 rows
//     computed here (not through the layout), for every group/token tail the
//     tiles leave, K with every remainder mod 16, strided activations and
//     outputs (the outputs' gaps checked untouched), the extreme activations
//     -128 and 127 and weights -127 and 127, and the largest K the format
//     allows with every product at its bound.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/w8a8_layout.h"

namespace mce::test {
namespace {

constexpr int32_t kSentinel = int32_t(0x5EA5EA5E);

// rows x K weights in [-127, 127] (extremes frequent), or all `fixed`.
std::vector<int8_t> random_weights(Rng& rng, int rows, int64_t K, int fixed) {
  std::vector<int8_t> w(size_t(rows) * size_t(K));
  for (int8_t& v : w) {
    const int r = randint(rng, 0, 9);
    v = fixed ? int8_t(fixed) : r == 0 ? int8_t(-127) : r == 1 ? int8_t(127) : int8_t(randint(rng, -127, 127));
  }
  return w;
}

struct Packed {
  std::vector<uint8_t> groups;
  int64_t n_groups = 0;
};

Packed pack(const std::vector<int8_t>& w, int rows, int64_t K) {
  Packed p;
  p.n_groups = w8a8_groups(rows);
  const size_t gb = w8a8_group_bytes(K);
  p.groups.resize(gb * size_t(p.n_groups));
  for (int64_t g = 0; g < p.n_groups; ++g) {
    const int n = int(std::min<int64_t>(kW8A8Rows, rows - g * kW8A8Rows));
    REQUIRE(w8a8_pack_group(w.data() + size_t(g) * kW8A8Rows * size_t(K), size_t(K), n, K,
                            p.groups.data() + size_t(g) * gb));
  }
  return p;
}

struct Case {
  int64_t K;
  int rows, toks;
  int fixed_w = 0, fixed_a = 0;  // 0: random
};

std::string describe(const Case& c) {
  return "K=" + std::to_string(c.K) + " rows=" + std::to_string(c.rows) + " toks=" + std::to_string(c.toks) +
         (c.fixed_w ? " w=" + std::to_string(c.fixed_w) : "") + (c.fixed_a ? " a=" + std::to_string(c.fixed_a) : "");
}

void check_dots(Rng& rng, const Case& c) {
  const std::vector<int8_t> w = random_weights(rng, c.rows, c.K, c.fixed_w);
  const Packed p = pack(w, c.rows, c.K);
  const int64_t Kp = w8a8_padded_cols(c.K);
  const size_t act_stride = size_t(Kp) + 16 + 3;  // > Kp, rows not 4-byte aligned
  std::vector<int8_t> act(act_stride * size_t(c.toks) + 1, 0);
  std::vector<int32_t> sums(size_t(c.toks), 0);
  for (int t = 0; t < c.toks; ++t)
    for (int64_t k = 0; k < c.K; ++k) {
      const int r = randint(rng, 0, 9);
      const int8_t v = c.fixed_a ? int8_t(c.fixed_a)
                                 : r == 0 ? int8_t(-128) : r == 1 ? int8_t(127) : int8_t(randint(rng, -128, 127));
      act[size_t(t) * act_stride + size_t(k)] = v;  // inputs K..Kp stay 0, as the driver writes them
      sums[size_t(t)] += v;
    }
  const int64_t out_stride = p.n_groups * kW8A8Rows + 5;
  const size_t out_size = size_t(out_stride) * size_t(c.toks) + 8;
  std::vector<int32_t> want(out_size, kSentinel);
  for (int t = 0; t < c.toks; ++t)
    for (int64_t r = 0; r < p.n_groups * kW8A8Rows; ++r) {
      int64_t s = 0;
      for (int64_t k = 0; k < c.K && r < c.rows; ++k)
        s += int64_t(w[size_t(r) * size_t(c.K) + size_t(k)]) * act[size_t(t) * act_stride + size_t(k)];
      want[size_t(t) * size_t(out_stride) + size_t(r)] = int32_t(s);  // padded rows: 0
    }
  for (Isa isa : levels_to_test()) {
    std::vector<int32_t> got(out_size, kSentinel);
    kernels_for(isa).w8a8_dots(c.K, p.groups.data(), p.n_groups, act.data(), act_stride, sums.data(), c.toks,
                               got.data(), out_stride);
    size_t first_diff = 0;
    while (first_diff < got.size() && got[first_diff] == want[first_diff]) ++first_diff;
    INFO(level_name(isa), " ", describe(c), " first difference at out[", first_diff, "]");
    CHECK(got == want);
  }
}

TEST_CASE("w8a8 layout: packing puts each weight where the layout says, decoding scales it") {
  Rng rng(8801);
  for (int64_t K : {1, 5, 16, 37, 64}) {
    const int rows = 11;  // one short group: rows 11..15 are zero weights
    const std::vector<int8_t> w = random_weights(rng, rows, K, 0);
    const Packed p = pack(w, rows, K);
    const int64_t Kp = w8a8_padded_cols(K);
    CHECK(Kp % 16 == 0);
    CHECK(p.groups.size() == size_t(Kp) * 16);
    bool ok = true;
    for (int i = 0; i < 16; ++i)
      for (int64_t k = 0; k < Kp; ++k) {
        const int want = i < rows && k < K ? w[size_t(i) * size_t(K) + size_t(k)] : 0;
        ok = ok && int(p.groups[size_t(k / 4) * 64 + size_t(4 * i) + size_t(k % 4)]) - 128 == want;
        ok = ok && int(w8a8_code(p.groups.data(), i, k)) - 128 == want;
      }
    INFO("K=", K);
    CHECK(ok);
    std::vector<float> row(static_cast<size_t>(K));
    w8a8_decode_row(p.groups.data(), 3, 0, K, 0.25f, row.data());
    for (int64_t k = 0; k < K; ++k) CHECK(row[size_t(k)] == float(w[size_t(3 * K + k)]) * 0.25f);
  }
  std::vector<int8_t> bad(16 * 32, 1);
  bad[100] = -128;
  std::vector<uint8_t> dst(w8a8_group_bytes(32));
  CHECK_FALSE(w8a8_pack_group(bad.data(), 32, 16, 32, dst.data()));
}

TEST_CASE("w8a8_dots: every level gives the exact products, all group, row and token tails") {
  Rng rng(8803);
  const int row_counts[] = {1, 7, 16, 17, 32, 33, 48, 80};
  const int tok_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13};
  for (int64_t K : {1, 3, 4, 15, 16, 17, 31, 64, 100, 576}) {
    for (int rows : row_counts)
      for (int toks : tok_counts) check_dots(rng, Case{K, rows, toks});
  }
  for (int rows : {16, 50, 64})
    for (int toks : {1, 2, 5, 9}) check_dots(rng, Case{1536, rows, toks});
}

TEST_CASE("w8a8_dots: extreme sums (every product at its bound, the largest K)") {
  Rng rng(8807);
  for (int w : {-127, 127})
    for (int a : {-128, 127})
      for (int64_t K : {16, 1000, 4096})
        for (int toks : {1, 5}) check_dots(rng, Case{K, 20, toks, w, a});
  for (int w : {-127, 127})
    for (int a : {-128, 127}) check_dots(rng, Case{kW8A8MaxCols, 16, 2, w, a});
}

TEST_CASE("w8a8_dots: empty shapes write nothing") {
  Rng rng(8809);
  const std::vector<int8_t> w = random_weights(rng, 16, 64, 0);
  const Packed p = pack(w, 16, 64);
  std::vector<int8_t> act(64 * 4, 1);
  std::vector<int32_t> sums(4, 64), out(64, kSentinel);
  for (Isa isa : levels_to_test()) {
    kernels_for(isa).w8a8_dots(64, p.groups.data(), 0, act.data(), 64, sums.data(), 4, out.data(), 16);
    kernels_for(isa).w8a8_dots(64, p.groups.data(), 1, act.data(), 64, sums.data(), 0, out.data(), 16);
    INFO(level_name(isa));
    CHECK(std::all_of(out.begin(), out.end(), [](int32_t v) { return v == kSentinel; }));
  }
}

}  // namespace
}  // namespace mce::test
