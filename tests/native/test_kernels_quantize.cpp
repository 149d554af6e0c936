// Activation quantizers: every level must write the scalar quantizer's bytes
// (quant/quantize_act.h), on random rows and on the cases where a careless
// implementation rounds differently: exact ties, the sign of the first of
// several largest magnitudes (Q8_K), and products whose f32 rounding lands on
// a tie that the exact product misses (a fused multiply-add, or rounding in
// higher precision, would give the other integer).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace mce::test {
namespace {

std::vector<uint8_t> quantize_with(const KernelTable& kt, GgmlType fmt, const std::vector<float>& x) {
  std::vector<uint8_t> out(act_row_bytes(fmt, static_cast<int64_t>(x.size())), 0xA5);
  quantize_activation_row(kt, fmt, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

const GgmlType kFormats[3] = {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K};

// Checks all levels produce the scalar bytes for x; returns the scalar bytes.
std::vector<uint8_t> check_all_levels(GgmlType fmt, const std::vector<float>& x, const std::string& what) {
  const std::vector<uint8_t> ref = quantize_with(kernels_for(Isa::Scalar), fmt, x);
  for (Isa isa : levels_to_test()) {
    const std::vector<uint8_t> got = quantize_with(kernels_for(isa), fmt, x);
    size_t first_diff = 0;
    while (first_diff < got.size() && got[first_diff] == ref[first_diff]) ++first_diff;
    INFO(level_name(isa), " ", type_name(fmt), " ", what, " n=", x.size(), " first differing byte ", first_diff);
    CHECK(got == ref);
  }
  return ref;
}

int64_t block_of(GgmlType fmt) { return fmt == GgmlType::Q8_K ? 256 : 32; }

TEST_CASE("quantizers: every level writes the scalar bytes on random rows") {
  Rng rng(31337);
  for (GgmlType fmt : kFormats) {
    for (int64_t nb : {1, 2, 3, 5, 8}) {
      for (int rep = 0; rep < 6; ++rep) check_all_levels(fmt, random_activation(rng, nb * block_of(fmt)), "random");
    }
  }
}

TEST_CASE("quantizers: zero, negative-zero, tiny and huge blocks") {
  Rng rng(8);
  for (GgmlType fmt : kFormats) {
    const int64_t n = 2 * block_of(fmt);
    for (float scale : {0.0f, -0.0f, 1e-30f, 1e-7f, 3e4f, 1e30f}) {
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) v = scale * static_cast<float>(uniform(rng, -1.0, 1.0));
      if (scale == 0.0f) std::fill(x.begin(), x.end(), scale);  // keeps the sign of -0.0
      check_all_levels(fmt, x, "extreme");
    }
  }
}

TEST_CASE("Q8_0/Q8_1 round half away from zero; Q8_K rounds half to even") {
  // amax = 127 gives d = 1 and id = 1 (Q8_0/Q8_1); a first maximum of -127
  // gives iscale = 1 (Q8_K): x = k + 0.5 then meets the rounding rule itself.
  for (GgmlType fmt : kFormats) {
    const int64_t n = block_of(fmt);
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = static_cast<float>((i % 32) - 16) + 0.5f;
    x[0] = fmt == GgmlType::Q8_K ? -127.0f : 127.0f;
    const std::vector<uint8_t> ref = check_all_levels(fmt, x, "ties");
    const int8_t* qs = reinterpret_cast<const int8_t*>(ref.data() + (fmt == GgmlType::Q8_0 ? 2 : 4));
    // x[3] = -12.5, x[4] = -11.5, x[20] = 4.5, x[21] = 5.5
    if (fmt == GgmlType::Q8_K) {
      CHECK(int(qs[3]) == -12);
      CHECK(int(qs[4]) == -12);
      CHECK(int(qs[20]) == 4);
      CHECK(int(qs[21]) == 6);
    } else {
      CHECK(int(qs[3]) == -13);
      CHECK(int(qs[4]) == -12);
      CHECK(int(qs[20]) == 5);
      CHECK(int(qs[21]) == 6);
    }
  }
}

TEST_CASE("Q8_K takes the sign of the first element of largest magnitude") {
  std::vector<float> x(256, 0.25f);
  x[5] = -3.0f;
  x[9] = 3.0f;
  x[200] = -3.0f;
  const std::vector<uint8_t> ref = check_all_levels(GgmlType::Q8_K, x, "first max");
  const Q8_KBlock* b = reinterpret_cast<const Q8_KBlock*>(ref.data());
  CHECK(b->d > 0.0f);  // 1/iscale with iscale = -127 / -3
  CHECK(int(b->qs[5]) == -127);
  CHECK(int(b->qs[9]) == 127);
}

// Rounds the f32 product a*b as the quantizers' reference formulas do. The
// product goes through a volatile so that no compiler fuses it with the
// rounding step.
float f32_product(float a, float b) {
  volatile float p = a * b;
  return p;
}

TEST_CASE("quantizers round the f32 product, not the exact one") {
  Rng rng(99);
  // Q8_K: x[0] = -100 is the maximum, iscale = -127 / -100. Find x whose f32
  // product with iscale is exactly k + 0.5 while the exact product lies on the
  // side of the tie that nearest-even does not pick.
  {
    const float iscale = -127.0f / -100.0f;
    float found = 0.0f;
    int expect = 0;
    for (int tries = 0; tries < 4000000 && found == 0.0f; ++tries) {
      const float x = static_cast<float>(uniform(rng, 1.0, 99.0));
      const float p = f32_product(iscale, x);
      const double exact = double(iscale) * double(x);
      if (p - std::floor(p) != 0.5f || exact == double(p)) continue;
      const int even = static_cast<int>(std::nearbyint(p));  // ties to even (default rounding mode)
      const int exact_round = exact > p ? static_cast<int>(std::floor(p)) + 1 : static_cast<int>(std::floor(p));
      if (even == exact_round) continue;
      found = x;
      expect = even;
    }
    REQUIRE(found != 0.0f);
    std::vector<float> x(256, 0.0f);
    x[0] = -100.0f;
    x[1] = found;
    const std::vector<uint8_t> ref = check_all_levels(GgmlType::Q8_K, x, "product tie");
    INFO("x = ", found, ", want ", expect);
    CHECK(int(reinterpret_cast<const Q8_KBlock*>(ref.data())->qs[1]) == expect);
  }
  // Q8_0/Q8_1: amax = 100, id = 1 / (100 / 127); the f32 product is k + 0.5
  // (rounded away from zero to k + 1) while the exact product is below it.
  {
    const float d = 100.0f / 127.0f, id = 1.0f / d;
    float found = 0.0f;
    for (int tries = 0; tries < 4000000 && found == 0.0f; ++tries) {
      const float x = static_cast<float>(uniform(rng, 1.0, 99.0));
      const float p = f32_product(x, id);
      if (p - std::floor(p) == 0.5f && double(x) * double(id) < double(p)) found = x;
    }
    REQUIRE(found != 0.0f);
    const int expect = static_cast<int>(std::floor(f32_product(found, id))) + 1;
    for (GgmlType fmt : {GgmlType::Q8_0, GgmlType::Q8_1}) {
      std::vector<float> x(32, 0.0f);
      x[0] = 100.0f;
      x[1] = found;
      const std::vector<uint8_t> ref = check_all_levels(fmt, x, "product tie");
      const int8_t* qs = reinterpret_cast<const int8_t*>(ref.data() + (fmt == GgmlType::Q8_0 ? 2 : 4));
      INFO(type_name(fmt), " x = ", found, ", want ", expect);
      CHECK(int(qs[1]) == expect);
    }
  }
}

TEST_CASE("Q8_1 stores s = d * sum(q) and Q8_K the group sums") {
  Rng rng(4);
  for (Isa isa : levels_to_test()) {
    const std::vector<float> x = random_activation(rng, 512);
    const std::vector<uint8_t> q1 = quantize_with(kernels_for(isa), GgmlType::Q8_1, x);
    for (int b = 0; b < 16; ++b) {
      const Q8_1Block& blk = reinterpret_cast<const Q8_1Block*>(q1.data())[b];
      int sum = 0;
      for (int i = 0; i < 32; ++i) sum += blk.qs[i];
      const float d = fp16_to_f32(blk.d);
      // s was formed from the f32 d and then rounded, d was rounded on its
      // own: s and sum * d differ by at most two binary16 roundings.
      const double want = double(sum) * d;
      // Subnormal binary16 values are quantized in steps of 2^-24.
      CHECK(std::fabs(fp16_to_f32(blk.s) - want) <=
            std::ldexp(1.0, -10) * std::fabs(want) + (std::abs(sum) + 1) * std::ldexp(1.0, -24));
    }
    const std::vector<uint8_t> qk = quantize_with(kernels_for(isa), GgmlType::Q8_K, x);
    for (int b = 0; b < 2; ++b) {
      const Q8_KBlock& blk = reinterpret_cast<const Q8_KBlock*>(qk.data())[b];
      for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += blk.qs[16 * g + i];
        INFO(level_name(isa), " block ", b, " group ", g);
        CHECK(int(blk.bsums[g]) == sum);
      }
    }
  }
}

}  // namespace
}  // namespace mce::test
