// Element-wise ops (kernels/ops.h) of every level: bit for bit against the
// scalar reference (the contract: every level reproduces its evaluation
// order), and every level, the scalar one included, against exact values
// computed in double within the bounds ops.h documents, over ragged lengths
// (tails of every vector width) and odd offsets.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/ops.h"

namespace mce::test {
namespace {

constexpr double kEps = 1.0 / (1 << 23);  // f32 machine epsilon
const int64_t kLengths[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 65, 100, 576, 1537};

struct Failures {
  int count = 0;
  std::ostringstream first;
  void add(const std::string& what) {
    if (count++ < 5) first << "  " << what << "\n";
  }
  std::string text() const { return std::to_string(count) + " failure(s), first ones:\n" + first.str(); }
};

std::vector<float> normal_floats(Rng& rng, int64_t n, double sigma) {
  std::normal_distribution<float> d(0.0f, static_cast<float>(sigma));
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

std::string where(Isa isa, const char* op, int64_t n, int64_t i) {
  std::ostringstream s;
  s << level_name(isa) << " " << op << " n=" << n << " i=" << i;
  return s.str();
}

// The contract's equality: the same bits, or NaN on both sides (a NaN's sign
// and payload may differ between levels).
bool same_bits(float a, float b) { return float_bits(a) == float_bits(b) || (std::isnan(a) && std::isnan(b)); }

// Adds a failure for each element of got that is not the reference's bits.
void check_bits(Failures& f, Isa isa, const char* op, const float* got, const float* want, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!same_bits(got[i], want[i])) {
      std::ostringstream s;
      s << where(isa, op, n, i) << ": bits " << std::hex << float_bits(got[i]) << ", scalar reference "
        << float_bits(want[i]) << std::dec << " (" << got[i] << " vs " << want[i] << ")";
      f.add(s.str());
    }
}

TEST_CASE("ops: rmsnorm and add_rmsnorm are the scalar reference's bits and near exact") {
  Rng rng(101);
  for (Isa isa : levels_to_test()) {
    const OpsTable& op = ops_for(isa);
    Failures f;
    for (int64_t n : kLengths) {
      if (n == 0) continue;
      for (int rep = 0; rep < 3; ++rep) {
        const std::vector<float> x = normal_floats(rng, n, rep == 2 ? 1e3 : 1.0);
        const std::vector<float> w = normal_floats(rng, n, 1.0);
        const std::vector<float> d = normal_floats(rng, n, 1.0);
        const float eps = 1e-5f, s = 0.75f;
        std::vector<float> out(static_cast<size_t>(n)), ref_out(static_cast<size_t>(n));
        op.rmsnorm(x.data(), w.data(), out.data(), n, eps);
        ref::rmsnorm(x.data(), w.data(), ref_out.data(), n, eps);
        double ss = 0;
        for (float v : x) ss += double(v) * v;
        const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
        check_bits(f, isa, "rmsnorm", out.data(), ref_out.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double exact = double(x[i]) * inv * w[i];
          // The inverse rounds once, each product once: 2 ulp of the result.
          if (!(std::fabs(out[i] - exact) <= 4 * kEps * std::fabs(exact) + 1e-38))
            f.add(where(isa, "rmsnorm", n, i));
        }

        // Fused residual add + norm: x' = fma(s, d, x), correctly rounded;
        // out = rmsnorm(x') as above; out may alias d.
        std::vector<float> xa = x, da = d, xr = x, dr = d;
        op.add_rmsnorm(xa.data(), da.data(), s, w.data(), da.data(), n, eps);
        ref::add_rmsnorm(xr.data(), dr.data(), s, w.data(), dr.data(), n, eps);
        check_bits(f, isa, "add_rmsnorm(x)", xa.data(), xr.data(), n);
        check_bits(f, isa, "add_rmsnorm(out)", da.data(), dr.data(), n);
        double ss2 = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double exact_x = double(x[i]) + double(s) * d[i];
          if (!(std::fabs(xa[i] - exact_x) <= 0.51 * kEps * std::fabs(exact_x) + 0x1p-150))
            f.add(where(isa, "add_rmsnorm(x)", n, i));
          ss2 += double(xa[i]) * xa[i];
        }
        const double inv2 = 1.0 / std::sqrt(ss2 / double(n) + eps);
        for (int64_t i = 0; i < n; ++i) {
          const double exact = double(xa[i]) * inv2 * w[i];
          if (!(std::fabs(da[i] - exact) <= 4 * kEps * std::fabs(exact) + 1e-38))
            f.add(where(isa, "add_rmsnorm(out)", n, i));
        }
      }
    }
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

TEST_CASE("ops: add_scaled, scale, silu_mul are the scalar reference's bits and near exact") {
  Rng rng(202);
  for (Isa isa : levels_to_test()) {
    const OpsTable& op = ops_for(isa);
    Failures f;
    for (int64_t n : kLengths) {
      const std::vector<float> x = normal_floats(rng, n, 3.0);
      std::vector<float> y = normal_floats(rng, n, 3.0);
      const std::vector<float> y0 = y;
      const float s = -1.3f;
      std::vector<float> yr = y0;
      op.add_scaled(y.data(), x.data(), s, n);
      ref::add_scaled(yr.data(), x.data(), s, n);
      check_bits(f, isa, "add_scaled", y.data(), yr.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        // One fused rounding: within half an ulp (2^-24 relative; the
        // slack covers exact's own rounding in double).
        const double exact = double(y0[i]) + double(s) * x[i];
        if (!(std::fabs(y[i] - exact) <= 0.51 * kEps * std::fabs(exact) + 0x1p-150))
          f.add(where(isa, "add_scaled", n, i));
      }

      std::vector<float> z = x, zr = x;
      op.scale(z.data(), 0.37f, n);
      ref::scale(zr.data(), 0.37f, n);
      for (int64_t i = 0; i < n; ++i)
        if (float_bits(z[i]) != float_bits(zr[i])) f.add(where(isa, "scale", n, i));

      // Gates from -120 to 120 reach exp overflow (silu -> -0) and the
      // saturated side (silu(g) = g).
      std::vector<float> g = normal_floats(rng, n, 8.0);
      for (int64_t i = 0; i < n; i += 7) g[size_t(i)] = static_cast<float>(uniform(rng, -120, 120));
      const std::vector<float> g0 = g, up = normal_floats(rng, n, 1.0);
      std::vector<float> gr = g;
      op.silu_mul(g.data(), up.data(), n);
      ref::silu_mul(gr.data(), up.data(), n);
      check_bits(f, isa, "silu_mul", g.data(), gr.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double exact = double(g0[i]) / (1.0 + std::exp(-double(g0[i]))) * up[i];
        if (!(std::fabs(g[i] - exact) <= 6 * kEps * std::fabs(exact) + 1e-35 * std::fabs(up[i]))) {
          std::ostringstream s2;
          s2 << where(isa, "silu_mul", n, i) << " g=" << g0[i] << " got " << g[i] << " exact " << exact;
          f.add(s2.str());
        }
      }
    }
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

TEST_CASE("ops: rope_interleaved is the scalar reference's bits, near exact, and leaves unrotated dims") {
  Rng rng(303);
  for (Isa isa : levels_to_test()) {
    const OpsTable& op = ops_for(isa);
    Failures f;
    for (int rep = 0; rep < 60; ++rep) {
      const int64_t head_dim = 2 * randint(rng, 1, 80), n_rot = 2 * randint(rng, 0, int(head_dim / 2));
      const int64_t n_heads = randint(rng, 1, 5);
      const std::vector<float> x0 = normal_floats(rng, n_heads * head_dim, 2.0);
      std::vector<float> c(size_t(n_rot / 2)), s(size_t(n_rot / 2));
      for (int64_t i = 0; i < n_rot / 2; ++i) {
        const double a = uniform(rng, -100, 100);
        c[size_t(i)] = float(std::cos(a) * 1.1);
        s[size_t(i)] = float(std::sin(a) * 1.1);
      }
      std::vector<float> x = x0, xr = x0;
      op.rope_interleaved(x.data(), n_heads, head_dim, n_rot, c.data(), s.data());
      ref::rope_interleaved(xr.data(), n_heads, head_dim, n_rot, c.data(), s.data());
      check_bits(f, isa, "rope", x.data(), xr.data(), n_heads * head_dim);
      for (int64_t h = 0; h < n_heads; ++h) {
        const float* a0 = x0.data() + h * head_dim;
        const float* a = x.data() + h * head_dim;
        for (int64_t i = 0; i < n_rot / 2; ++i) {
          const double p = a0[2 * i], q = a0[2 * i + 1];
          const double mag = std::fabs(p * c[size_t(i)]) + std::fabs(q * s[size_t(i)]);
          const double mag2 = std::fabs(p * s[size_t(i)]) + std::fabs(q * c[size_t(i)]);
          if (!(std::fabs(a[2 * i] - (p * c[size_t(i)] - q * s[size_t(i)])) <= kEps * mag) ||
              !(std::fabs(a[2 * i + 1] - (p * s[size_t(i)] + q * c[size_t(i)])) <= kEps * mag2))
            f.add(where(isa, "rope", head_dim, 2 * i));
        }
        for (int64_t d = n_rot; d < head_dim; ++d)
          if (float_bits(a[d]) != float_bits(a0[d])) f.add(where(isa, "rope(unrotated)", head_dim, d));
      }
    }
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

// One softmax of x on one level: its bits against the reference's, and
// within ops.h's bound of the exact (double) softmax.
void check_softmax(Failures& f, Isa isa, const OpsTable& op, std::vector<float> x) {
  const int64_t n = int64_t(x.size());
  const std::vector<float> x0 = x;
  std::vector<float> xr = x;
  op.softmax(x.data(), n);
  ref::softmax(xr.data(), n);
  check_bits(f, isa, "softmax", x.data(), xr.data(), n);
  double m = -INFINITY, sum = 0;
  for (float v : x0) m = std::max(m, double(v));
  for (float v : x0) sum += std::exp(double(v) - m);
  for (int64_t i = 0; i < n; ++i) {
    const double exact = std::exp(double(x0[i]) - m) / sum;
    const double bound = exact == 0 ? 0.0 : (double(n) / 8 + 8 + std::fabs(double(x0[i]) - m)) * kEps * exact;
    if (!(std::fabs(x[i] - exact) <= bound + 1e-44)) {
      std::ostringstream s;
      s << where(isa, "softmax", n, i) << ": " << x[i] << " vs " << exact << " (x " << x0[i] << ", max " << m << ")";
      f.add(s.str());
    }
  }
}

TEST_CASE("ops: softmax is the scalar reference's bits and within its documented bound") {
  Rng rng(404);
  for (Isa isa : levels_to_test()) {
    const OpsTable& op = ops_for(isa);
    Failures f;
    for (int64_t n : kLengths) {
      if (n == 0) continue;
      // Spreads of 6 and 40: the second sends many terms to subnormals and 0.
      for (double sigma : {6.0, 40.0}) {
        std::vector<float> x = normal_floats(rng, n, sigma);
        if (n > 3) x[size_t(n / 2)] = -std::numeric_limits<float>::infinity();
        check_softmax(f, isa, op, x);
      }
    }
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

TEST_CASE("ops: exp is the scalar reference's bits and accurate to 2^-22 relative over the whole range") {
  // Every 4093rd float in [-110, 100] (about 270000), plus special values.
  std::vector<float> x;
  auto from_bits = [](uint32_t u) {
    float v;
    std::memcpy(&v, &u, 4);
    return v;
  };
  for (uint32_t u = 0; u < float_bits(100.0f); u += 4093) x.push_back(from_bits(u));
  for (uint32_t u = 0x80000000u; u < float_bits(-110.0f); u += 4093) x.push_back(from_bits(u));
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 88.72283935546875f, 88.7228317f, 88.72284f, -87.33654f, -103.2789f,
                  -103.97208f, -104.0f, -1e30f, 1e30f, inf, -inf, std::numeric_limits<float>::quiet_NaN()})
    x.push_back(v);
  std::vector<float> y_ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) y_ref[i] = ref::exp_poly(x[i]);
  // Exactly, as the attention kernels' rescaling relies on it.
  CHECK(float_bits(ref::exp_poly(0.0f)) == float_bits(1.0f));
  CHECK(float_bits(ref::exp_poly(-std::numeric_limits<float>::infinity())) == float_bits(0.0f));
  for (Isa isa : levels_to_test()) {
    const OpsTable& op = ops_for(isa);
    std::vector<float> y(x.size());
    // Odd offsets and lengths exercise the tails.
    for (size_t i0 = 0; i0 < x.size(); i0 += 1001) op.exp(x.data() + i0, y.data() + i0, std::min<int64_t>(1001, int64_t(x.size() - i0)));
    Failures f;
    check_bits(f, isa, "exp", y.data(), y_ref.data(), int64_t(x.size()));
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double e = std::exp(double(x[i]));
      bool ok;
      if (std::isnan(x[i])) ok = std::isnan(y[i]);
      else if (e > double(std::numeric_limits<float>::max()) * (1 + kEps / 2)) ok = std::isinf(y[i]) && y[i] > 0;
      else if (e < double(std::numeric_limits<float>::min())) ok = std::fabs(y[i] - e) <= std::ldexp(1.0, -149);
      else {
        const double rel = std::fabs(y[i] - e) / e;
        worst = std::max(worst, rel);
        ok = rel < std::ldexp(1.0, -22);
      }
      if (!ok) {
        std::ostringstream s;
        s << level_name(isa) << " exp(" << x[i] << ") = " << y[i] << ", exact " << e;
        f.add(s.str());
      }
    }
    MESSAGE(level_name(isa) << " exp: max relative error " << worst);
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

TEST_CASE("ops: binary16 conversions are bit-identical to quant/fp16.h") {
  Rng rng(505);
  std::vector<float> x;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = static_cast<uint32_t>(rng());
    // Most draws near the binary16 range so rounding, subnormals and
    // overflow are all hit.
    if (i % 4 != 0) u = (u & 0x807fffffu) | (uint32_t(randint(rng, 96, 145)) << 23);
    float v;
    std::memcpy(&v, &u, 4);
    x.push_back(v);
  }
  for (float v : {65504.0f, 65519.99f, 65520.0f, -65520.0f, 5.96046448e-8f, 2.98023224e-8f, 2.98023253e-8f,
                  6.09755516e-5f, 6.10351562e-5f})
    x.push_back(v);
  const int64_t n = int64_t(x.size());
  std::vector<uint16_t> h_ref(x.size());
  ref::f32_to_f16(x.data(), h_ref.data(), n);
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[size_t(i)] = uint16_t(i);
  std::vector<float> f_ref(65536);
  ref::f16_to_f32(all.data(), f_ref.data(), 65536);
  for (Isa isa : levels_to_test()) {
    const OpsTable& op = ops_for(isa);
    Failures f;
    std::vector<uint16_t> h(x.size());
    op.f32_to_f16(x.data(), h.data(), n);
    for (size_t i = 0; i < x.size(); ++i)
      if (h[i] != h_ref[i]) {
        std::ostringstream s;
        s << level_name(isa) << " f32_to_f16 bits " << std::hex << float_bits(x[i]) << ": " << h[i] << " vs " << h_ref[i];
        f.add(s.str());
      }
    std::vector<float> back(65536);
    for (int i0 = 0; i0 < 65536; i0 += 4099) op.f16_to_f32(all.data() + i0, back.data() + i0, std::min(4099, 65536 - i0));
    for (size_t i = 0; i < back.size(); ++i)
      if (float_bits(back[i]) != float_bits(f_ref[i])) f.add(where(isa, "f16_to_f32", 65536, int64_t(i)));
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

}  // namespace
}  // namespace mce::test
