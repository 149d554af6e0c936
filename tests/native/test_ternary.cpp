// Ternary kernels (kernels/ternary_layout.h; TernaryQuantizeFn /
// TernaryDotsFn in kernels/dispatch.h):
//   - dots: every level equals, exactly, products computed here from the
//     layout's description (not through ternary_code), for every row/token
//     tail shape the kernels' tiles leave, padded rows, strided activations
//     and outputs (with the outputs' gaps checked untouched), the extreme
//     activations -128 and 127, and the sums that stress int16 accumulators.
//     Codes are 2-bit fields: besides valid matrices ({0, 1, 2}) the tests use
//     arbitrary bytes, so code 3 too (never in a valid file, multiplied as 3
//     by the reference), and every level must agree on those as well;
//   - quantize: the scalar reference follows the contract recomputed here
//     (std::nearbyint under the default rounding mode: nearest, ties to
//     even), and every level gives its bytes, inv and sum, on random rows of
//     several magnitudes, exact ties, products that round onto a tie in f32,
//     all-zero and tiny rows and row lengths with tails.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/ternary_layout.h"

namespace mce::test {
namespace {

// Code of input k of a row, from the layout's description: byte j of chunk c
// (32 bytes per 128 inputs) holds the codes of inputs 128c + j + 32i at bits
// 2i..2i+1.
int layout_code(const uint8_t* row, int64_t k) {
  const int64_t c = k / 128, i = (k % 128) / 32, j = k % 32;
  return (row[32 * c + j] >> (2 * i)) & 3;
}

enum class Codes { Valid, AnyByte, AllThree, AllTwo };

struct Matrix {
  int64_t K = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> bytes;
};

Matrix random_matrix(Rng& rng, int64_t K, int rows, bool padded, Codes codes) {
  Matrix m;
  m.K = K;
  m.row_bytes = size_t(K / 4) + (padded ? 32 + 5 : 0);  // padding that keeps rows unaligned
  m.bytes.resize(m.row_bytes * size_t(rows) + 1);
  fill_random(rng, m.bytes.data(), m.bytes.size());  // padding stays random: no kernel may read it as codes
  for (int r = 0; r < rows; ++r) {
    uint8_t* row = m.bytes.data() + size_t(r) * m.row_bytes;
    for (int64_t b = 0; b < K / 4; ++b) {
      switch (codes) {
        case Codes::Valid: {
          uint8_t v = 0;
          for (int i = 0; i < 4; ++i) v |= uint8_t(randint(rng, 0, 2) << (2 * i));
          row[b] = v;
          break;
        }
        case Codes::AnyByte: break;  // fill_random's bytes
        case Codes::AllThree: row[b] = 0xFF; break;
        case Codes::AllTwo: row[b] = 0xAA; break;
      }
    }
  }
  return m;
}

// n_tok activation rows of K int8 values, stride bytes apart; the extremes
// -128 and 127 are frequent. `fixed` (if not 0) sets every value.
std::vector<int8_t> random_acts(Rng& rng, int64_t K, int n_tok, size_t stride, int fixed) {
  std::vector<int8_t> a(stride * size_t(std::max(n_tok, 1)));
  for (int8_t& v : a) {
    const int r = randint(rng, 0, 9);
    v = fixed ? int8_t(fixed) : r == 0 ? int8_t(-128) : r == 1 ? int8_t(127) : int8_t(randint(rng, -128, 127));
  }
  return a;
}

constexpr int32_t kSentinel = int32_t(0x5EA5EA5E);

struct DotsCase {
  int64_t K;
  int rows, toks;
  bool padded;
  Codes codes;
  int fixed_act;  // 0: random
};

std::string describe(const DotsCase& c) {
  const char* codes[] = {"valid", "any byte", "all 3", "all 2"};
  return "K=" + std::to_string(c.K) + " rows=" + std::to_string(c.rows) + " toks=" + std::to_string(c.toks) +
         (c.padded ? " padded rows" : "") + " codes " + codes[int(c.codes)] +
         (c.fixed_act ? " act=" + std::to_string(c.fixed_act) : "");
}

void check_dots(Rng& rng, const DotsCase& c) {
  const Matrix m = random_matrix(rng, c.K, c.rows, c.padded, c.codes);
  const size_t act_stride = size_t(c.K) + 48 + 3;  // > K, and rows not 4-byte aligned
  const std::vector<int8_t> act = random_acts(rng, c.K, c.toks, act_stride, c.fixed_act);
  const int64_t out_stride = c.rows + 3;
  const size_t out_size = size_t(out_stride) * size_t(std::max(c.toks, 1)) + 8;

  // The products straight from the layout.
  std::vector<int32_t> want(out_size, kSentinel);
  std::vector<int> q(static_cast<size_t>(c.K));
  for (int r = 0; r < c.rows; ++r) {
    for (int64_t k = 0; k < c.K; ++k) q[size_t(k)] = layout_code(m.bytes.data() + size_t(r) * m.row_bytes, k);
    for (int t = 0; t < c.toks; ++t) {
      int64_t s = 0;
      for (int64_t k = 0; k < c.K; ++k) s += int64_t(q[size_t(k)]) * act[size_t(t) * act_stride + size_t(k)];
      want[size_t(t) * size_t(out_stride) + size_t(r)] = int32_t(s);
    }
  }

  for (Isa isa : levels_to_test()) {
    std::vector<int32_t> got(out_size, kSentinel);
    kernels_for(isa).ternary_dots(c.K, m.bytes.data(), m.row_bytes, c.rows, act.data(), act_stride, c.toks,
                                  got.data(), out_stride);
    size_t first_diff = 0;
    while (first_diff < got.size() && got[first_diff] == want[first_diff]) ++first_diff;
    INFO(level_name(isa), " ", describe(c), " first difference at out[", first_diff, "]");
    CHECK(got == want);  // the gaps (r >= rows) and the tail keep the sentinel
  }
}

TEST_CASE("ternary layout: ternary_code reads the layout's fields") {
  Rng rng(4401);
  const Matrix m = random_matrix(rng, 384, 1, false, Codes::AnyByte);
  bool same = true;
  for (int64_t k = 0; k < 384; ++k) same = same && ternary_code(m.bytes.data(), k) == layout_code(m.bytes.data(), k);
  CHECK(same);
}

TEST_CASE("ternary_dots: every level gives the exact products, all row and token tails") {
  Rng rng(4409);
  const int row_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 64};
  const int tok_counts[] = {1, 2, 3, 4, 5, 8, 13};
  for (int64_t K : {128, 256, 640, 1152}) {
    for (int rows : row_counts) {
      for (int toks : tok_counts) {
        const Codes codes = chance(rng, 0.3) ? Codes::AnyByte : Codes::Valid;
        check_dots(rng, DotsCase{K, rows, toks, chance(rng, 0.5), codes, 0});
      }
    }
  }
  // A long row (54 chunks: the kernels' chunk blocks and input blocks end
  // mid-row), fewer shapes.
  for (int rows : {1, 4, 5, 17, 64})
    for (int toks : {1, 2, 5, 13}) check_dots(rng, DotsCase{6912, rows, toks, rows == 5, Codes::Valid, 0});
  check_dots(rng, DotsCase{6912, 9, 3, true, Codes::AnyByte, 0});
}

TEST_CASE("ternary_dots: extreme sums (int16 partial sums at their bound)") {
  Rng rng(4421);
  // Code 3 (or 2) everywhere against -128 or 127 everywhere: every partial sum
  // a kernel keeps is as large as the layout allows.
  for (Codes codes : {Codes::AllThree, Codes::AllTwo})
    for (int a : {-128, 127})
      for (int64_t K : {128, 1152, 6912})
        for (int toks : {1, 5}) check_dots(rng, DotsCase{K, 6, toks, false, codes, a});
}

TEST_CASE("ternary_dots: empty shapes write nothing, K = 0 writes zeros") {
  Rng rng(4423);
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    const Matrix m = random_matrix(rng, 256, 4, false, Codes::Valid);
    const std::vector<int8_t> act = random_acts(rng, 256, 4, 256, 0);
    std::vector<int32_t> out(32, kSentinel);
    kt.ternary_dots(256, m.bytes.data(), m.row_bytes, 0, act.data(), 256, 4, out.data(), 4);
    kt.ternary_dots(256, m.bytes.data(), m.row_bytes, 4, act.data(), 256, 0, out.data(), 4);
    INFO(level_name(isa));
    CHECK(std::all_of(out.begin(), out.end(), [](int32_t v) { return v == kSentinel; }));
    for (int toks : {1, 3}) {
      kt.ternary_dots(0, m.bytes.data(), 0, 5, act.data(), 256, toks, out.data(), 6);
      for (int t = 0; t < toks; ++t)
        for (int r = 0; r < 6; ++r) CHECK(out[size_t(t * 6 + r)] == (r < 5 ? 0 : kSentinel));
    }
  }
}

// The quantizer's contract, computed independently.
TernaryActivation quantize_contract(const std::vector<float>& x, std::vector<int8_t>& a) {
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  TernaryActivation r;
  r.inv = 127.0f / std::max(amax, 1e-5f);
  a.resize(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    const float p = x[k] * r.inv;  // one f32 multiply (tests build with -ffp-contract=off)
    const int q = int(std::min(127.0f, std::max(-128.0f, std::nearbyint(p))));
    a[k] = int8_t(q);
    r.sum += q;
  }
  return r;
}

void check_quantize(const std::vector<float>& x, const std::string& what) {
  const int64_t K = int64_t(x.size());
  std::vector<int8_t> want;
  const TernaryActivation w = quantize_contract(x, want);
  want.resize(x.size() + 16, int8_t(0x5A));  // guard bytes past K stay untouched
  for (Isa isa : levels_to_test()) {
    std::vector<int8_t> got(x.size() + 16, int8_t(0x5A));
    const TernaryActivation g = kernels_for(isa).ternary_quantize(x.data(), K, got.data());
    INFO(level_name(isa), " ", what, " K=", K);
    CHECK(got == want);
    CHECK(float_bits(g.inv) == float_bits(w.inv));
    CHECK(g.sum == w.sum);
  }
}

TEST_CASE("ternary_quantize: the contract on every level") {
  Rng rng(4451);
  for (int64_t K : {128, 640, 7, 0, 16, 33, 129, 1000}) {
    for (double scale : {1e-3, 1.0, 37.5, 1e4, 1e-6}) {
      std::vector<float> x(static_cast<size_t>(K));
      for (float& v : x) v = float(uniform(rng, -scale, scale));
      check_quantize(x, "uniform scale " + std::to_string(scale));
      // Mixed magnitudes, with the maximum negative.
      for (float& v : x) v = float(uniform(rng, -1.0, 1.0) * std::pow(10.0, randint(rng, -8, 3)));
      if (K > 0) x[size_t(K / 2)] = -2e3f;
      check_quantize(x, "mixed magnitudes");
    }
    check_quantize(std::vector<float>(size_t(K), 0.0f), "all zero");
    std::vector<float> neg_zero(size_t(K), -0.0f);
    check_quantize(neg_zero, "all -0");
  }
}

TEST_CASE("ternary_quantize: ties round to even, products are one f32 multiply") {
  Rng rng(4457);
  // amax = 127 makes inv exactly 1, amax = 254 exactly 0.5: x * inv lands on
  // n + 0.5 exactly.
  for (float amax : {127.0f, 254.0f}) {
    std::vector<float> x(160);
    const float step = 127.0f / amax;  // = inv
    for (size_t k = 0; k < x.size(); ++k) {
      const float t = float(randint(rng, -127, 126)) + 0.5f;  // the tie, in quantized units
      x[k] = t / step;
    }
    x[3] = amax;
    x[77] = -amax;
    check_quantize(x, "exact ties, amax " + std::to_string(amax));
    std::vector<int8_t> a;
    const TernaryActivation r = quantize_contract(x, a);
    CHECK(r.inv == step);
    CHECK(int(a[3]) == 127);
    CHECK(int(a[77]) == -127);
  }
  {
    // Explicit ties to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2, 3.5 -> 4.
    std::vector<float> x = {127.0f, 0.5f, 1.5f, 2.5f, -2.5f, 3.5f, -0.5f, 126.5f, -126.5f};
    std::vector<int8_t> a;
    quantize_contract(x, a);
    CHECK(std::vector<int>(a.begin(), a.end()) == std::vector<int>{127, 0, 2, 2, -2, 4, 0, 126, -126});
    x.resize(128, 0.25f);
    check_quantize(x, "ties to even");
  }
  {
    // Products whose f32 rounding lands on a tie the exact product misses: a
    // fused or wider multiply would round to the other integer.
    const float amax = 100.0f, inv = 127.0f / amax;
    std::vector<float> x = {amax};
    for (int n = -120; n < 120 && x.size() < 256; ++n) {
      const float center = (float(n) + 0.5f) / inv;
      float v = center;
      for (int s = 0; s < 64; ++s, v = std::nextafter(v, 1e9f)) {
        const float p = v * inv;
        if (p == float(n) + 0.5f && double(v) * double(inv) != double(n) + 0.5) {
          x.push_back(v);
          break;
        }
      }
    }
    REQUIRE(x.size() > 20);
    check_quantize(x, "f32 product on a tie");
  }
  {
    // A tiny row: amax below 1e-5, so inv = 127 / 1e-5 and the values do not
    // reach +-127.
    std::vector<float> x(256);
    for (float& v : x) v = float(uniform(rng, -3e-6, 3e-6));
    std::vector<int8_t> a;
    const TernaryActivation r = quantize_contract(x, a);
    CHECK(r.inv == 127.0f / 1e-5f);
    check_quantize(x, "tiny row");
  }
}

}  // namespace
}  // namespace mce::test
