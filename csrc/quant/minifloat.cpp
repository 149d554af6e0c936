#include "quant/minifloat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "quant/fp16.h"

namespace mce {

namespace {

// Value of one code (OCP MX v1.0 element formats): bias 2^(E-1) - 1, normal
// 2^(e-bias) * (1 + m/2^M), subnormal (e = 0) 2^(1-bias) * m/2^M. E4M3 has
// no infinities and one NaN per sign (S.1111.111); E5M2 keeps IEEE's
// specials (exponent all ones); the FP6 and FP4 formats have neither.
float code_value(int E, int M, uint32_t code) {
  const uint32_t mag_bits = uint32_t(E + M);
  const bool neg = (code >> mag_bits) & 1u;
  const uint32_t mag = code & ((1u << mag_bits) - 1);
  const int e = int(mag >> M), m = int(mag & ((1u << M) - 1));
  const int bias = (1 << (E - 1)) - 1, top = (1 << E) - 1;
  float v;
  if (E == 5 && M == 2 && e == top) v = m == 0 ? std::numeric_limits<float>::infinity()
                                               : std::numeric_limits<float>::quiet_NaN();
  else if (E == 4 && M == 3 && e == top && m == 7) v = std::numeric_limits<float>::quiet_NaN();
  else if (e == 0) v = std::ldexp(float(m), 1 - bias - M);
  else v = std::ldexp(float((1 << M) + m), e - bias - M);
  return neg ? -v : v;
}

struct Tables {
  float e4m3[256], e5m2[256], e3m2[64], e2m3[64], e2m1[16];
  Tables() {
    for (uint32_t c = 0; c < 256; ++c) e4m3[c] = code_value(4, 3, c), e5m2[c] = code_value(5, 2, c);
    for (uint32_t c = 0; c < 64; ++c) e3m2[c] = code_value(3, 2, c), e2m3[c] = code_value(2, 3, c);
    for (uint32_t c = 0; c < 16; ++c) e2m1[c] = code_value(2, 1, c);
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const float* minifloat_table(int E, int M) {
  const Tables& t = tables();
  if (E == 4 && M == 3) return t.e4m3;
  if (E == 5 && M == 2) return t.e5m2;
  if (E == 3 && M == 2) return t.e3m2;
  if (E == 2 && M == 3) return t.e2m3;
  if (E == 2 && M == 1) return t.e2m1;
  return nullptr;
}

bool minifloat_code_special(int E, int M, uint32_t code) {
  const float* t = minifloat_table(E, M);
  return t != nullptr && !std::isfinite(t[code]);
}

bool MiniFloatFormat::valid() const {
  if (minifloat_table(exp_bits, man_bits) == nullptr) return false;
  switch (scaling) {
    case MfScaling::F16: return block == 16 || block == 32 || block == 64 || block == 128;
    case MfScaling::E8M0: return block == 32;  // MX v1.0: k = 32 for every concrete format
    case MfScaling::NvFp4: return block == 16 && exp_bits == 2 && man_bits == 1;
  }
  return false;
}

int MiniFloatFormat::int_multiplier() const {
  if (exp_bits == 2 && man_bits == 1) return 2;  // E2M1: 0.5-steps up to 6
  if (exp_bits == 2 && man_bits == 3) return 8;  // E2M3: 0.125-steps up to 7.5
  return 0;
}

float minifloat_block_scale(const MiniFloatFormat& f, const uint8_t* scales, int64_t j) {
  switch (f.scaling) {
    case MfScaling::F16: {
      uint16_t h;
      std::memcpy(&h, scales + 2 * j, sizeof h);
      return fp16_to_f32(h);
    }
    case MfScaling::E8M0:
      // 2^(c-127): exact in f32 (2^-127 is a subnormal), code 255 (NaN) refused at load.
      return std::ldexp(1.0f, int(scales[j]) - 127);
    case MfScaling::NvFp4:
      return f.tensor_scale * tables().e4m3[scales[j]];
  }
  return 0.0f;
}

void minifloat_decode_row(const MiniFloatFormat& f, const uint8_t* codes, const uint8_t* scales, int64_t k0,
                          int64_t k1, float* out) {
  const float* table = minifloat_table(f.exp_bits, f.man_bits);
  const int bits = f.bits();
  int64_t k = k0;
  while (k < k1) {
    const int64_t j = k / f.block, end = std::min<int64_t>(k1, (j + 1) * f.block);
    const float s = minifloat_block_scale(f, scales, j);
    for (; k < end; ++k) out[k - k0] = table[minifloat_code(codes, bits, k)] * s;
  }
}

const char* minifloat_row_problem(const MiniFloatFormat& f, int64_t K, const uint8_t* codes, const uint8_t* scales) {
  for (int64_t j = 0; j < K / f.block; ++j) {
    if (f.scaling == MfScaling::E8M0 && scales[j] == 255) return "an E8M0 scale of 255 (NaN)";
    if (f.scaling == MfScaling::NvFp4 && (scales[j] & 0x80u) != 0) return "a negative E4M3 block scale";
    if (!std::isfinite(minifloat_block_scale(f, scales, j))) return "a scale that is not finite";
  }
  if (f.bits() == 8)
    for (int64_t k = 0; k < K; ++k)
      if (minifloat_code_special(f.exp_bits, f.man_bits, codes[k])) return "an Inf or NaN element code";
  return nullptr;
}

}  // namespace mce
