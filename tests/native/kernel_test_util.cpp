#include "kernel_test_util.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "quant/ggml_types.h"

namespace mce::test {

namespace {

std::set<int>& tested() {
  static std::set<int> s;
  return s;
}

void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// A scale field: mostly moderate, sometimes zero, the largest finite
// binary16 or a subnormal.
uint16_t scale_with_extremes(Rng& rng) {
  const int r = randint(rng, 0, 19);
  if (r == 0) return 0;
  if (r == 1) return chance(rng, 0.5) ? 0x7BFF : 0xFBFF;                           // +-65504
  if (r == 2) return static_cast<uint16_t>(randint(rng, 1, 0x3FF) | (chance(rng, 0.5) ? 0x8000 : 0));  // subnormal
  return random_scale_f16(rng);
}

}  // namespace

void fill_random(Rng& rng, uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
}

const GgmlType kDotTypes[8] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                               GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K};

std::vector<Isa> levels_to_test() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::NeonDotprod}) {
    if (isa_supported(isa)) {
      out.push_back(isa);
      tested().insert(static_cast<int>(isa));
    }
  }
  return out;
}

void note_tested(Isa isa) { tested().insert(static_cast<int>(isa)); }

std::string tested_levels_summary() {
  std::string s;
  for (int i : tested()) {
    if (!s.empty()) s += ", ";
    s += isa_name(static_cast<Isa>(i));
  }
  return s.empty() ? "none" : s;
}

std::string type_name(GgmlType t) {
  const TypeGeometry g = type_geometry(static_cast<uint32_t>(t));
  return g.name ? g.name : "?";
}

int64_t block_elems(GgmlType t) { return type_geometry(static_cast<uint32_t>(t)).block_size; }
size_t block_bytes(GgmlType t) { return type_geometry(static_cast<uint32_t>(t)).type_size; }

uint16_t random_scale_f16(Rng& rng) {
  const float mag = static_cast<float>(std::ldexp(uniform(rng, 1.0, 2.0), randint(rng, -10, 9)));
  return f32_to_fp16(chance(rng, 0.5) ? -mag : mag);
}

uint16_t random_finite_f16(Rng& rng) {
  for (;;) {
    const uint16_t h = static_cast<uint16_t>(rng());
    if ((h & 0x7C00) != 0x7C00) return h;
  }
}

uint16_t random_bf16(Rng& rng) {
  const uint16_t sign = chance(rng, 0.5) ? 0x8000 : 0;
  const int r = randint(rng, 0, 19);
  if (r == 0) return sign;                                                   // +-0
  if (r == 1) return static_cast<uint16_t>(sign | randint(rng, 1, 0x7F));    // subnormal
  const int exp = randint(rng, 127 - 40, 127 + 40);
  return static_cast<uint16_t>(sign | (exp << 7) | randint(rng, 0, 0x7F));
}

std::vector<uint8_t> random_weight_row(Rng& rng, GgmlType t, int64_t n) {
  std::vector<uint8_t> row(row_bytes(t, n));
  uint8_t* p = row.data();
  if (t == GgmlType::F32) {
    for (int64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(std::normal_distribution<double>(0.0, 1.0)(rng));
      const int r = randint(rng, 0, 19);
      if (r == 0) v = 0.0f;
      if (r == 1) v *= 1e3f;
      if (r == 2) v *= 1e-40f;  // f32 subnormal
      std::memcpy(p + 4 * i, &v, 4);
    }
    return row;
  }
  if (t == GgmlType::F16 || t == GgmlType::BF16) {
    for (int64_t i = 0; i < n; ++i) put_u16(p + 2 * i, t == GgmlType::F16 ? random_finite_f16(rng) : random_bf16(rng));
    return row;
  }
  const size_t bb = block_bytes(t);
  for (int64_t b = 0; b < n / block_elems(t); ++b, p += bb) {
    fill_random(rng, p, bb);
    const int mode = randint(rng, 0, 9);
    switch (t) {
      case GgmlType::Q8_0:
        put_u16(p, scale_with_extremes(rng));
        if (mode == 0) std::memset(p, 0, bb);                  // zero block
        if (mode == 1) std::memset(p + 2, 0x80, 32);           // quants of -128
        if (mode == 2) std::memset(p + 2, 0x7F, 32);
        break;
      case GgmlType::Q4_0:
        put_u16(p, scale_with_extremes(rng));
        if (mode == 0) std::memset(p, 0, bb);
        if (mode == 1) std::memset(p + 2, 0xFF, 16);
        if (mode == 2) std::memset(p + 2, 0x00, 16);           // all -8
        break;
      case GgmlType::Q4_1:
        put_u16(p, scale_with_extremes(rng));
        put_u16(p + 2, scale_with_extremes(rng));
        if (mode == 0) std::memset(p, 0, bb);
        if (mode == 1) std::memset(p + 4, 0xFF, 16);
        break;
      case GgmlType::Q4_K:
        put_u16(p, scale_with_extremes(rng));
        put_u16(p + 2, scale_with_extremes(rng));
        if (mode == 0) std::memset(p, 0, bb);
        if (mode == 1) std::memset(p + 4, 0xFF, 12 + 128);     // scales/mins 63, quants 15
        break;
      case GgmlType::Q6_K:
        put_u16(p + 208, scale_with_extremes(rng));
        if (mode == 0) std::memset(p, 0, bb);
        if (mode == 1) std::memset(p, 0xFF, 192);               // quants 63
        if (mode == 2) std::memset(p + 192, 0x80, 16);          // scales -128
        break;
      default: throw std::invalid_argument("random_weight_row: unsupported type");
    }
  }
  return row;
}

std::vector<float> random_activation(Rng& rng, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int64_t b = 0; b < n; b += 32) {
    const int mode = randint(rng, 0, 24);
    for (int64_t i = b; i < std::min<int64_t>(n, b + 32); ++i) {
      double v = normal(rng);
      switch (mode) {
        case 0: case 1: v = 0.0; break;
        case 2: v = -0.0; break;
        case 3: case 4: v *= 1e-6; break;                    // binary16 scale underflows
        // Large, but not so large that Q8_1's binary16 s = d * sum(q)
        // overflows (|sum x| must stay below 65504).
        case 5: case 6: v *= 300.0; break;
        case 7: case 8: case 9: v *= std::pow(10.0, uniform(rng, -3, 2)); break;
        default: break;
      }
      x[size_t(i)] = static_cast<float>(v);
    }
  }
  return x;
}

std::vector<uint8_t> quantize_scalar(GgmlType fmt, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> out(act_row_bytes(fmt, n));
  quantize_activation_row(kernels_for(Isa::Scalar), fmt, x.data(), out.data(), n);
  return out;
}

std::vector<double> decode_activation(GgmlType fmt, const uint8_t* act, int64_t n) {
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (fmt) {
      case GgmlType::F32: {
        float f;
        std::memcpy(&f, act + 4 * i, 4);
        x[size_t(i)] = f;
        break;
      }
      case GgmlType::Q8_0: {
        const Q8_0Block& b = reinterpret_cast<const Q8_0Block*>(act)[i / 32];
        x[size_t(i)] = double(fp16_to_f32(b.d)) * b.qs[i % 32];
        break;
      }
      case GgmlType::Q8_1: {
        const Q8_1Block& b = reinterpret_cast<const Q8_1Block*>(act)[i / 32];
        x[size_t(i)] = double(fp16_to_f32(b.d)) * b.qs[i % 32];
        break;
      }
      case GgmlType::Q8_K: {
        const Q8_KBlock& b = reinterpret_cast<const Q8_KBlock*>(act)[i / 256];
        x[size_t(i)] = double(b.d) * b.qs[i % 256];
        break;
      }
      default: throw std::invalid_argument("decode_activation: not an activation format");
    }
  }
  return x;
}

Exact exact_dot(GgmlType wt, const uint8_t* w, GgmlType fmt, const uint8_t* act, int64_t n) {
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  const size_t bytes = row_bytes(wt, n);
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n), 0.0f);
  const bool has_offset = wt == GgmlType::Q4_1 || wt == GgmlType::Q4_K;
  if (!has_offset) {
    scalar.dequantize_row[uint32_t(wt)](w, a.data(), n);
  } else {
    // Both types keep (scale, offset scale) as binary16 at bytes 0 and 2.
    std::vector<uint8_t> only_a(w, w + bytes), only_b(w, w + bytes);
    const size_t bb = block_bytes(wt);
    for (size_t off = 0; off < bytes; off += bb) {
      put_u16(only_a.data() + off + 2, 0);
      put_u16(only_b.data() + off, 0);
    }
    scalar.dequantize_row[uint32_t(wt)](only_a.data(), a.data(), n);
    scalar.dequantize_row[uint32_t(wt)](only_b.data(), b.data(), n);
  }
  const std::vector<double> x = decode_activation(fmt, act, n);
  Exact e;
  for (int64_t i = 0; i < n; ++i) {
    const double ai = a[size_t(i)], bi = b[size_t(i)], xi = x[size_t(i)];
    e.value += ai * xi;
    if (!(wt == GgmlType::Q4_1 && fmt == GgmlType::Q8_1)) e.value += bi * xi;
    e.magnitude += (std::fabs(ai) + std::fabs(bi)) * std::fabs(xi);
  }
  if (wt == GgmlType::Q4_1 && fmt == GgmlType::Q8_1) {
    const Q4_1Block* wb = reinterpret_cast<const Q4_1Block*>(w);
    const Q8_1Block* xb = reinterpret_cast<const Q8_1Block*>(act);
    for (int64_t k = 0; k < n / 32; ++k) e.value += double(fp16_to_f32(wb[k].m)) * fp16_to_f32(xb[k].s);
  }
  return e;
}

double dot_tolerance(GgmlType wt, int64_t n, double magnitude) {
  const bool is_float = wt == GgmlType::F32 || wt == GgmlType::F16 || wt == GgmlType::BF16;
  const double L = is_float ? double(n / 8 + 8) : double(n / block_elems(wt));
  const double eps = std::ldexp(1.0, -23);
  // The second term covers f32 subnormal results, whose rounding error is
  // absolute (2^-149 per operation), not relative.
  return 2.0 * eps * (L + 8.0) * magnitude + (L + 8.0) * std::ldexp(1.0, -140);
}

}  // namespace mce::test
