// Low-bit table-lookup kernels (kernels/lut_layout.h; LutBuildFn / LutGemvFn
// in kernels/dispatch.h), for bits 1-4, groups 32/64/128, symmetric and
// asymmetric, full and partial tiles:
//   - packing: each tile decodes back to the values docs/FORMAT.md defines,
//     computed here straight from the file layout's bit strings;
//   - tables: every level gives the scalar bits;
//   - GEMV: the scalar result follows the contract's arithmetic recomputed
//     here in double from the file layout (not from the tile), and every
//     level gives the scalar bits.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/lut_layout.h"
#include "kernels/packed_layout.h"

namespace mce::test {
namespace {

struct LowBitMatrix {
  LowBitFormat f;
  int64_t K = 0;
  int rows = 0;
  std::vector<uint8_t> codes;      // file layout, rows x K*b/8
  std::vector<uint16_t> scale, min;
  std::vector<uint8_t> tile;
};

LowBitMatrix random_lowbit(Rng& rng, LowBitFormat f, int64_t K, int rows) {
  LowBitMatrix m;
  m.f = f;
  m.K = K;
  m.rows = rows;
  m.codes.resize(lowbit_code_row_bytes(f, K) * size_t(rows));
  fill_random(rng, m.codes.data(), m.codes.size());
  const size_t n = size_t(rows) * size_t(K / f.group);
  for (size_t i = 0; i < n; ++i) {
    m.scale.push_back(chance(rng, 0.05) ? uint16_t(0) : random_scale_f16(rng));
    if (f.has_min) m.min.push_back(random_scale_f16(rng));
  }
  m.tile.resize(lut_tile_bytes(f, K));
  lut_pack_tile(f, K, m.codes.data(), lowbit_code_row_bytes(f, K), m.scale.data(), f.has_min ? m.min.data() : nullptr,
                K / f.group, rows, m.tile.data());
  return m;
}

int code_at(const LowBitMatrix& m, int r, int64_t k) {
  // Bit i of the row's string is bit i % 8 of byte i / 8 (docs/FORMAT.md).
  const uint8_t* row = m.codes.data() + size_t(r) * lowbit_code_row_bytes(m.f, m.K);
  int q = 0;
  for (int i = 0; i < m.f.bits; ++i) {
    const int64_t bit = k * m.f.bits + i;
    q |= ((row[bit / 8] >> (bit % 8)) & 1) << i;
  }
  return q;
}

std::vector<LowBitFormat> all_formats() {
  std::vector<LowBitFormat> out;
  for (int bits = 1; bits <= 4; ++bits)
    for (int group : {32, 64, 128})
      for (bool has_min : {false, true}) out.push_back(LowBitFormat{bits, group, has_min});
  return out;
}

TEST_CASE("lut_pack_tile: tiles decode to the file layout's values") {
  Rng rng(3301);
  for (const LowBitFormat& f : all_formats()) {
    for (int rows : {16, 5}) {
      const int64_t K = 2 * f.group;
      const LowBitMatrix m = random_lowbit(rng, f, K, rows);
      const float center = float((1 << f.bits) - 1) * 0.5f;
      bool ok = true;
      for (int r = 0; r < kLutTileRows; ++r) {
        std::vector<float> got(static_cast<size_t>(K));
        lut_decode_row(f, K, m.tile.data(), r, 0, K, got.data());
        for (int64_t k = 0; k < K; ++k) {
          float want = 0.0f;  // padding rows are zero
          if (r < rows) {
            const size_t gi = size_t(r) * size_t(K / f.group) + size_t(k / f.group);
            const float d = fp16_to_f32(m.scale[gi]);
            want = f.has_min ? float(code_at(m, r, k)) * d + fp16_to_f32(m.min[gi])
                             : d * (float(code_at(m, r, k)) - center);
          }
          // Padding rows decode to zero of either sign (d = 0 times q - center).
          ok = ok && (r < rows ? float_bits(got[size_t(k)]) == float_bits(want) : got[size_t(k)] == 0.0f);
        }
      }
      INFO("bits=", f.bits, " group=", f.group, " has_min=", f.has_min, " rows=", rows);
      CHECK(ok);
      CHECK(lowbit_code(m.codes.data(), f.bits, 3) == code_at(m, 0, 3));
    }
  }
}

TEST_CASE("lut_tile_to_q4_1x8: the file layout's codes, scales and minimums as Q4_1x8 groups") {
  Rng rng(3307);
  for (const LowBitFormat& f : all_formats()) {
    const int64_t K = 2 * f.group, nb = K / kPackBlock;
    const LowBitMatrix m = random_lowbit(rng, f, K, 13);
    const size_t half_bytes = size_t(nb) * packed_block_bytes(PackedKind::Q4_1x8);
    std::vector<uint8_t> groups(2 * half_bytes);
    lut_tile_to_q4_1x8(f, K, m.tile.data(), groups.data());
    const float center = float((1 << f.bits) - 1) * 0.5f;
    bool ok = true;
    for (int r = 0; r < m.rows; ++r) {
      std::vector<float> got(static_cast<size_t>(K));
      unpack_group_row(PackedKind::Q4_1x8, groups.data() + size_t(r / kPackRows) * half_bytes, nb, r % kPackRows,
                       got.data());
      for (int64_t k = 0; k < K; ++k) {
        const size_t gi = size_t(r) * size_t(K / f.group) + size_t(k / f.group);
        const float d = fp16_to_f32(m.scale[gi]);
        // Q4_1's value q*d + m; symmetric groups carry m = binary16(-d*center).
        const float mn = f.has_min ? fp16_to_f32(m.min[gi]) : fp16_to_f32(f32_to_fp16(-(d * center)));
        const float want = float(code_at(m, r, k)) * d + mn;
        ok = ok && float_bits(got[size_t(k)]) == float_bits(want);
      }
    }
    INFO("bits=", f.bits, " group=", f.group, " has_min=", f.has_min);
    CHECK(ok);
  }
}

TEST_CASE("lut_build: every level gives the scalar tables, scales and sums") {
  Rng rng(3307);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  for (int group : {32, 64, 128}) {
    for (int64_t K : {int64_t(group), int64_t(3 * group)}) {
      std::vector<float> x = random_activation(rng, K);
      for (int64_t i = 0; i < group; ++i) x[size_t(i)] = 0.0f;  // a group of zeros
      std::vector<int8_t> tw(size_t(K / 4) * 16), tg(tw.size());
      std::vector<float> hw(size_t(K / group)), hg(hw.size()), sw(hw.size()), sg(hw.size());
      scalar.lut_build(x.data(), K, group, tw.data(), hw.data(), sw.data());
      for (int64_t i = 0; i < group; ++i) CHECK(tw[size_t(i / 4) * 16] == 0);
      for (Isa isa : levels_to_test()) {
        kernels_for(isa).lut_build(x.data(), K, group, tg.data(), hg.data(), sg.data());
        bool same = tg == tw;
        for (size_t g = 0; g < hw.size(); ++g)
          same = same && float_bits(hg[g]) == float_bits(hw[g]) && float_bits(sg[g]) == float_bits(sw[g]);
        INFO(level_name(isa), " group=", group, " K=", K);
        CHECK(same);
      }
    }
  }
}

TEST_CASE("lut_build: infinite inputs clamp the tables on every level") {
  std::vector<float> x(64, 1.0f);
  x[5] = INFINITY;
  x[40] = -INFINITY;
  std::vector<int8_t> tw(16 * 16), tg(tw.size());
  std::vector<float> h(2), s(2);
  kernels_for(Isa::Scalar).lut_build(x.data(), 64, 32, tw.data(), h.data(), s.data());
  for (int8_t v : tw) CHECK((v >= -127 && v <= 127));
  for (Isa isa : levels_to_test()) {
    kernels_for(isa).lut_build(x.data(), 64, 32, tg.data(), h.data(), s.data());
    INFO(level_name(isa));
    CHECK(tg == tw);
  }
}

TEST_CASE("lut_gemv: the contract's arithmetic, and the same bits on every level") {
  Rng rng(3313);
  const KernelTable& scalar = kernels_for(Isa::Scalar);
  for (const LowBitFormat& f : all_formats()) {
    const int64_t K = f.group == 128 ? 256 : 192;
    const int rows = chance(rng, 0.5) ? 16 : 11;
    const LowBitMatrix m = random_lowbit(rng, f, K, rows);
    const std::vector<float> x = random_activation(rng, K);
    std::vector<int8_t> tables(size_t(K / 4) * 16);
    std::vector<float> hs(size_t(K / f.group)), xs(hs.size());
    scalar.lut_build(x.data(), K, f.group, tables.data(), hs.data(), xs.data());
    float want[kLutTileRows];
    scalar.lut_gemv(f, K, m.tile.data(), tables.data(), hs.data(), xs.data(), want);
    const double center = double((1 << f.bits) - 1) * 0.5;
    for (int r = 0; r < kLutTileRows; ++r) {
      double y = 0.0, mag = 0.0;
      for (int64_t g = 0; g < K / f.group && r < rows; ++g) {
        int64_t S = 0;
        for (int64_t j = g * f.group / 4; j < (g + 1) * f.group / 4; ++j)
          for (int i = 0; i < f.bits; ++i) {
            int pattern = 0;
            for (int c = 0; c < 4; ++c) pattern |= ((code_at(m, r, 4 * j + c) >> i) & 1) << c;
            S += int64_t(1 << i) * tables[size_t(j) * 16 + size_t(pattern)];
          }
        const size_t gi = size_t(r) * size_t(K / f.group) + size_t(g);
        const double d = fp16_to_f32(m.scale[gi]);
        y += double(S) * d * hs[size_t(g)];
        mag += std::fabs(double(S) * d * hs[size_t(g)]);
        if (f.has_min) {
          const double c = d * center + double(fp16_to_f32(m.min[gi]));
          y += c * xs[size_t(g)];
          mag += std::fabs(c * xs[size_t(g)]);
        }
      }
      INFO("bits=", f.bits, " group=", f.group, " has_min=", f.has_min, " row ", r);
      CHECK(std::fabs(want[r] - y) <= 8 * 5.97e-8 * double(K / f.group + 2) * mag + 1e-37);
    }
    for (Isa isa : levels_to_test()) {
      float got[kLutTileRows];
      kernels_for(isa).lut_gemv(f, K, m.tile.data(), tables.data(), hs.data(), xs.data(), got);
      bool same = true;
      for (int r = 0; r < kLutTileRows; ++r) same = same && float_bits(got[r]) == float_bits(want[r]);
      INFO(level_name(isa), " bits=", f.bits, " group=", f.group, " has_min=", f.has_min);
      CHECK(same);
    }
  }
}

}  // namespace
}  // namespace mce::test
