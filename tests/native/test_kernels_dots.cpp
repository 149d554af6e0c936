// Dot products of every level (the KernelTable's vec_dot entries, dot_f32,
// axpy_f32) against the scalar level and against the exact value computed in
// double from the scalar decoders, on random rows of many lengths (ragged
// tails for the float rows, several block counts for the quantized ones).
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace mce::test {
namespace {

// Collects failures so one broken kernel reports a few lines, not thousands.
struct Failures {
  int count = 0;
  std::ostringstream first;
  void add(const std::string& what) {
    if (count++ < 5) first << "  " << what << "\n";
  }
  std::string text() const { return std::to_string(count) + " failure(s), first ones:\n" + first.str(); }
};

std::vector<int64_t> lengths_for(GgmlType t) {
  const int64_t bs = block_elems(t);
  if (bs == 1) return {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 257};
  if (bs == 32) return {32, 64, 96, 128, 160, 256, 416};
  return {256, 512, 768};
}

TEST_CASE("vec_dot: every level agrees with the scalar level and the exact value") {
  Rng rng(20240611);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    for (GgmlType t : kDotTypes) {
      Failures f;
      const GgmlType fmt = act_format(t);
      const VecDotFn dot = kt.weight[uint32_t(t)].vec_dot;
      REQUIRE((dot != nullptr));
      CHECK(kt.weight[uint32_t(t)].act_type == fmt);
      for (int64_t n : lengths_for(t)) {
        for (int rep = 0; rep < 8; ++rep) {
          const std::vector<uint8_t> w = random_weight_row(rng, t, n);
          const std::vector<uint8_t> act = quantize_scalar(fmt, random_activation(rng, n));
          const double got = dot(n, w.data(), act.data());
          const double ref = scalar.weight[uint32_t(t)].vec_dot(n, w.data(), act.data());
          const Exact e = exact_dot(t, w.data(), fmt, act.data(), n);
          const double tol = dot_tolerance(t, n, e.magnitude);
          if (!(std::fabs(got - e.value) <= tol) || !(std::fabs(got - ref) <= tol)) {
            std::ostringstream s;
            s << level_name(isa) << " " << type_name(t) << " n=" << n << ": got " << got << ", scalar " << ref
              << ", exact " << e.value << ", tolerance " << tol;
            f.add(s.str());
          }
        }
      }
      INFO(level_name(isa), " ", type_name(t));
      CHECK_MESSAGE(f.count == 0, f.text());
    }
  }
}

// Weight and activation rows whose scales are 1 and whose integer totals stay
// below 2^24: every float operation is then exact in any order, so every level
// must return the exact integer. This isolates the integer parts.
std::vector<uint8_t> unit_scale_weight(Rng& rng, GgmlType t, int64_t n) {
  std::vector<uint8_t> w = random_weight_row(rng, t, n);
  const size_t bb = block_bytes(t);
  const uint16_t one = 0x3C00, two = 0x4000;
  for (size_t off = 0; off < w.size(); off += bb) {
    uint8_t* p = w.data() + off;
    fill_random(rng, p, bb);
    switch (t) {
      case GgmlType::Q8_0: case GgmlType::Q4_0: std::memcpy(p, &one, 2); break;
      case GgmlType::Q4_1: std::memcpy(p, &one, 2), std::memcpy(p + 2, &two, 2); break;
      case GgmlType::Q4_K:
        std::memcpy(p, &one, 2), std::memcpy(p + 2, &one, 2);
        for (int k = 0; k < 12; ++k) p[4 + k] &= 0x0F;  // scales and mins <= 15
        break;
      case GgmlType::Q6_K:
        std::memcpy(p + 208, &one, 2);
        for (int g = 0; g < 16; ++g) p[192 + g] = static_cast<uint8_t>(randint(rng, -7, 7));
        break;
      default: break;
    }
  }
  return w;
}

TEST_CASE("vec_dot: integer parts are exact on every level") {
  Rng rng(77);
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K}) {
      const GgmlType fmt = act_format(t);
      const int64_t n = 256;
      for (int rep = 0; rep < 6; ++rep) {
        const std::vector<uint8_t> w = unit_scale_weight(rng, t, n);
        // Integers in [-127, 127] with +-127 in every block quantize with
        // scale 1 (Q8_K: -1) to themselves.
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) x[size_t(i)] = static_cast<float>(randint(rng, -127, 127));
        for (int64_t i = 0; i < n; i += 32) x[size_t(i + randint(rng, 0, 31))] = chance(rng, 0.5) ? 127.0f : -127.0f;
        const std::vector<uint8_t> act = quantize_scalar(fmt, x);
        const Exact e = exact_dot(t, w.data(), fmt, act.data(), n);
        REQUIRE(std::fabs(e.value) < 16777216.0);
        const float got = kt.weight[uint32_t(t)].vec_dot(n, w.data(), act.data());
        INFO(level_name(isa), " ", type_name(t), " rep ", rep);
        CHECK(double(got) == e.value);
      }
    }
  }
}

TEST_CASE("dot_f32 and axpy_f32: every level agrees with the scalar level") {
  Rng rng(5);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  const double eps = std::ldexp(1.0, -23);
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    Failures f;
    for (int64_t n : lengths_for(GgmlType::F32)) {
      for (int rep = 0; rep < 4; ++rep) {
        const std::vector<float> a = random_activation(rng, n), b = random_activation(rng, n);
        double exact = 0.0, mag = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          exact += double(a[size_t(i)]) * b[size_t(i)];
          mag += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
        }
        const double tol = dot_tolerance(GgmlType::F32, n, mag);
        const double got = kt.dot_f32(n, a.data(), b.data());
        const double ref = scalar.dot_f32(n, a.data(), b.data());
        if (!(std::fabs(got - exact) <= tol) || !(std::fabs(got - ref) <= tol)) {
          f.add(std::string(level_name(isa)) + " dot_f32 n=" + std::to_string(n));
        }

        // axpy: one multiply and one add per element, or one FMA: within two
        // roundings of the exact y + alpha*x.
        const float alpha = static_cast<float>(uniform(rng, -3.0, 3.0));
        std::vector<float> y = random_activation(rng, n), y_ref = y;
        const std::vector<float> y0 = y;
        kt.axpy_f32(n, alpha, a.data(), y.data());
        scalar.axpy_f32(n, alpha, a.data(), y_ref.data());
        for (int64_t i = 0; i < n; ++i) {
          const double want = double(y0[size_t(i)]) + double(alpha) * a[size_t(i)];
          const double bound = 2.0 * eps * (std::fabs(y0[size_t(i)]) + std::fabs(double(alpha) * a[size_t(i)])) +
                               std::ldexp(1.0, -148);
          if (!(std::fabs(y[size_t(i)] - want) <= bound) || !(std::fabs(y[size_t(i)] - y_ref[size_t(i)]) <= 2 * bound)) {
            f.add(std::string(level_name(isa)) + " axpy_f32 n=" + std::to_string(n) + " i=" + std::to_string(i));
            break;
          }
        }
      }
    }
    INFO(level_name(isa));
    CHECK_MESSAGE(f.count == 0, f.text());
  }
}

}  // namespace
}  // namespace mce::test
