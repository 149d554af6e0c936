// Int8 minifloat dots (kernels/minifloat_layout.h, kernels/mf8_driver.h;
// Mf8DotsFn in kernels/dispatch.h):
//   - the scalar reference follows the contract recomputed here from the
//     layout's description (int32 sums of each 16-input half, then the fixed
//     sequence of f32 fmas), and
//   - every level gives the reference's bits, for row lengths with every
//     remainder of the four-block step, strided rows, activations and
//     outputs, the weights' extremes (+-60, E2M3 x 8) and activations at +-127,
//     and NVFP4-like blocks whose two halves have different scales.
// The repacking: mf8_pack_row of every E2M1 / E2M3 code gives the code's
// value times the multiplier, and s[h] * q the decoded weight.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/minifloat_layout.h"

namespace mce::test {
namespace {

struct Mf8Matrix {
  int64_t K;
  size_t row_bytes;
  std::vector<uint8_t> bytes;
};

Mf8Matrix random_mf8(Rng& rng, int64_t K, int rows, bool extreme) {
  Mf8Matrix m{K, mf8_row_bytes(K) + 8, {}};  // 8 bytes of padding between rows
  m.bytes.resize(m.row_bytes * size_t(rows));
  fill_random(rng, m.bytes.data(), m.bytes.size());
  for (int r = 0; r < rows; ++r)
    for (int64_t b = 0; b < K / kMf8Block; ++b) {
      uint8_t* blk = m.bytes.data() + size_t(r) * m.row_bytes + size_t(b) * kMf8BlockBytes;
      const float s[2] = {float(uniform(rng, 1e-4, 1e-1)), float(uniform(rng, 1e-4, 1e-1))};
      std::memcpy(blk, s, sizeof s);
      int8_t* q = reinterpret_cast<int8_t*>(blk + sizeof s);
      for (int i = 0; i < kMf8Block; ++i) q[i] = int8_t(extreme ? (chance(rng, 0.5) ? 60 : -60) : randint(rng, -60, 60));
    }
  return m;
}

std::vector<uint8_t> random_q8_0(Rng& rng, int64_t K, int n_tok, size_t stride, bool extreme) {
  std::vector<uint8_t> act(stride * size_t(n_tok));
  fill_random(rng, act.data(), act.size());
  for (int t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < K / 32; ++b) {
      Q8_0Block blk;
      blk.d = f32_to_fp16(float(uniform(rng, 1e-3, 1.0)));
      for (int i = 0; i < 32; ++i) blk.qs[i] = int8_t(extreme ? (chance(rng, 0.5) ? 127 : -127) : randint(rng, -127, 127));
      std::memcpy(act.data() + size_t(t) * stride + size_t(b) * sizeof(Q8_0Block), &blk, sizeof blk);
    }
  return act;
}

// The contract, from the layout's description.
float contract_dot(const uint8_t* w, const uint8_t* x, int64_t K) {
  float acc = 0.0f;
  for (int64_t b = 0; b < K / 32; ++b) {
    float s[2];
    std::memcpy(s, w + size_t(b) * 40, sizeof s);
    Q8_0Block blk;
    std::memcpy(&blk, x + size_t(b) * sizeof(Q8_0Block), sizeof blk);
    const float d = fp16_to_f32(blk.d);
    for (int h = 0; h < 2; ++h) {
      int32_t sum = 0;
      for (int i = 16 * h; i < 16 * h + 16; ++i) sum += int32_t(int8_t(w[size_t(b) * 40 + 8 + size_t(i)])) * blk.qs[i];
      acc = std::fma(float(sum), s[h] * d, acc);
    }
  }
  return acc;
}

void check_shape(Rng& rng, int64_t K, int rows, int n_tok, bool extreme) {
  const Mf8Matrix m = random_mf8(rng, K, rows, extreme);
  const size_t stride = size_t(K / 32) * sizeof(Q8_0Block) + 6;
  const std::vector<uint8_t> act = random_q8_0(rng, K, n_tok, stride, extreme);
  const int64_t out_stride = rows + 3;
  std::vector<float> want(size_t(n_tok) * size_t(out_stride), -7.0f);
  for (int t = 0; t < n_tok; ++t)
    for (int r = 0; r < rows; ++r)
      want[size_t(t * out_stride + r)] = contract_dot(m.bytes.data() + size_t(r) * m.row_bytes,
                                                      act.data() + size_t(t) * stride, K);
  for (Isa isa : levels_to_test()) {
    std::vector<float> got(want.size(), -7.0f);  // gaps must stay untouched
    kernels_for(isa).mf8_dots(K, m.bytes.data(), m.row_bytes, rows, act.data(), stride, n_tok, got.data(), out_stride);
    INFO(level_name(isa), " K=", K, " rows=", rows, " n_tok=", n_tok, " extreme=", extreme);
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("out[", i, "]");
      CHECK(float_bits(got[i]) == float_bits(want[i]));
    }
  }
}

TEST_CASE("mf8_dots: every level gives the contract's bits, every block tail") {
  Rng rng(1234);
  for (int64_t nb : {1, 2, 3, 4, 5, 7, 8, 9, 24, 27})
    for (int rows : {1, 5})
      for (int n_tok : {1, 3}) check_shape(rng, nb * 32, rows, n_tok, false);
  check_shape(rng, 576, 16, 2, false);
}

TEST_CASE("mf8_dots: extreme weights and activations") {
  Rng rng(99);
  for (int64_t nb : {4, 5, 18}) check_shape(rng, nb * 32, 3, 2, true);
}

TEST_CASE("mf8_pack_row: codes become value x multiplier, s[h] x q the decoded weight") {
  struct Element {
    int E, M, mult;
  };
  for (const Element& el : {Element{2, 1, 2}, Element{2, 3, 8}}) {
    const int E = el.E, M = el.M, mult = el.mult;
    MiniFloatFormat f;
    f.exp_bits = E;
    f.man_bits = M;
    f.block = 16;
    f.scaling = MfScaling::NvFp4;
    f.tensor_scale = 0.0123f;
    if (E == 2 && M == 3) f.scaling = MfScaling::F16, f.block = 32;
    const int bits = f.bits(), n_codes = 1 << bits;
    const int64_t K = 64;
    std::vector<uint8_t> codes(size_t(K) * bits / 8), scales(f.scale_row_bytes(K));
    std::vector<float> decoded(static_cast<size_t>(K)), repacked(static_cast<size_t>(K));
    std::vector<uint8_t> row(mf8_row_bytes(K));
    for (int first = 0; first < n_codes; first += int(K)) {
      std::fill(codes.begin(), codes.end(), 0);
      for (int64_t k = 0; k < K; ++k) {
        const uint32_t c = uint32_t((first + k) % n_codes);
        for (int i = 0; i < bits; ++i)
          if ((c >> i) & 1u) codes[size_t((k * bits + i) / 8)] |= uint8_t(1u << ((k * bits + i) % 8));
      }
      for (size_t j = 0; j < scales.size(); ++j) scales[j] = uint8_t(0x30 + 3 * j);  // E4M3 / binary16 bytes
      mf8_pack_row(f, K, codes.data(), scales.data(), row.data());
      minifloat_decode_row(f, codes.data(), scales.data(), 0, K, decoded.data());
      mf8_decode_row(row.data(), 0, K, repacked.data());
      const float* table = minifloat_table(E, M);
      for (int64_t k = 0; k < K; ++k) {
        const uint32_t c = uint32_t((first + k) % n_codes);
        INFO("E", E, "M", M, " code ", c);
        const int8_t q = int8_t(row[size_t(k / 32) * kMf8BlockBytes + 8 + size_t(k % 32)]);
        CHECK(double(q) == double(table[c]) * mult);
        CHECK(repacked[size_t(k)] == decoded[size_t(k)]);
      }
    }
  }
}

}  // namespace
}  // namespace mce::test
