// "tl3" ternary kernels (kernels/ternary_lut_layout.h; TernaryLutBuildFn /
// TernaryLutDotsFn in kernels/dispatch.h). The oracle is written here from the
// layout's description: ternary matrices are encoded by this file's own
// encoder and the products are sum_k t_k a_k of the ternary values themselves.
//   - valid matrices: every level's build + dots equals the products exactly,
//     for K that are and are not multiples of the octet (48) and of the
//     accumulators' widening period, padded rows (M not a multiple of 32),
//     several tokens with strided tables and outputs (gaps left untouched),
//     and the extreme activations (-128, 127 everywhere: the int16 partial
//     sums at their bound);
//   - arbitrary bytes (indices 14 and 15, signs on index 0, which no valid
//     file holds): every level equals the scalar reference;
//   - tl3_decode_row and tl3_row_bias against the encoder's input.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/ternary_lut_layout.h"

namespace mce::test {
namespace {

// Encodes rows x K ternary values (row-major) as tl3 blocks: groups of three
// inputs (w0, w1, w2) -> v = 9 w0 + 3 w1 + w2, index |v|, sign [v < 0].
std::vector<uint8_t> encode(const std::vector<int8_t>& t, int rows, int64_t K) {
  const int64_t octets = (K + 47) / 48, blocks = (rows + 31) / 32;
  std::vector<uint8_t> out(size_t(blocks * octets * 320), 0);
  for (int r = 0; r < rows; ++r) {
    uint8_t* block = out.data() + size_t(r / 32) * size_t(octets * 320);
    const int j = r % 16, half = (r % 32) / 16;
    for (int64_t g = 0; g < octets * 16; ++g) {
      int w[3];
      for (int i = 0; i < 3; ++i) w[i] = 3 * g + i < K ? t[size_t(r) * size_t(K) + size_t(3 * g + i)] : 0;
      const int v = 9 * w[0] + 3 * w[1] + w[2];
      uint8_t* octet = block + size_t(g / 16) * 320;
      const int gi = int(g % 16), p = gi / 2, l = gi % 2;
      octet[64 + 32 * p + 16 * l + j] |= uint8_t(half ? std::abs(v) << 4 : std::abs(v));
      if (v < 0) octet[32 * half + 16 * l + j] |= uint8_t(1 << p);
    }
  }
  return out;
}

std::vector<int8_t> random_ternary(Rng& rng, int rows, int64_t K) {
  std::vector<int8_t> t(size_t(rows) * size_t(K));
  for (int8_t& v : t) v = int8_t(randint(rng, -1, 1));
  return t;
}

constexpr int32_t kSentinel = int32_t(0x5EA5EA5E);

struct Case {
  int64_t K;
  int rows, toks;
  int fixed_act;     // 0: random activations
  int fixed_weight;  // 0: random ternary
  bool any_bytes;    // arbitrary matrix bytes, compared with the reference
};

std::string describe(const Case& c) {
  return "K=" + std::to_string(c.K) + " rows=" + std::to_string(c.rows) + " toks=" + std::to_string(c.toks) +
         (c.fixed_act ? " act=" + std::to_string(c.fixed_act) : "") +
         (c.fixed_weight ? " w=" + std::to_string(c.fixed_weight) : "") + (c.any_bytes ? " any bytes" : "");
}

void check(Rng& rng, const Case& c) {
  std::vector<int8_t> t = random_ternary(rng, c.rows, c.K);
  if (c.fixed_weight) std::fill(t.begin(), t.end(), int8_t(c.fixed_weight));
  std::vector<uint8_t> w = encode(t, c.rows, c.K);
  if (c.any_bytes) fill_random(rng, w.data(), w.size());
  const int64_t blocks = tl3_blocks(c.rows), padded_rows = blocks * 32;
  std::vector<int32_t> bias(static_cast<size_t>(padded_rows));
  tl3_row_bias(w.data(), padded_rows, c.K, bias.data());

  std::vector<int8_t> act(size_t(c.K) * size_t(c.toks));
  for (int8_t& v : act) {
    const int r = randint(rng, 0, 9);
    v = c.fixed_act ? int8_t(c.fixed_act) : r == 0 ? int8_t(-128) : r == 1 ? int8_t(127) : int8_t(randint(rng, -128, 127));
  }
  const int64_t out_stride = padded_rows + 5;
  const size_t out_size = size_t(out_stride) * size_t(c.toks) + 7;
  std::vector<int32_t> want(out_size, kSentinel);
  if (c.any_bytes) {
    const KernelTable& ref = kernels_for(Isa::Scalar);
    std::vector<uint8_t> tables(tl3_table_bytes(c.K) * size_t(c.toks));
    for (int tok = 0; tok < c.toks; ++tok)
      ref.ternary_lut_build(act.data() + size_t(tok) * size_t(c.K), c.K, tables.data() + tok * tl3_table_bytes(c.K));
    ref.ternary_lut_dots(c.K, w.data(), blocks, bias.data(), tables.data(), tl3_table_bytes(c.K), c.toks,
                         want.data(), out_stride);
  } else {
    for (int tok = 0; tok < c.toks; ++tok)
      for (int64_t r = 0; r < padded_rows; ++r) {
        int64_t s = 0;
        if (r < c.rows)
          for (int64_t k = 0; k < c.K; ++k)
            s += int64_t(t[size_t(r) * size_t(c.K) + size_t(k)]) * act[size_t(tok) * size_t(c.K) + size_t(k)];
        want[size_t(tok) * size_t(out_stride) + size_t(r)] = int32_t(s);
      }
  }
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    const size_t table_stride = tl3_table_bytes(c.K) + 64 + 16;  // not the minimum, and not 64-aligned
    std::vector<uint8_t> tables(table_stride * size_t(c.toks));
    for (int tok = 0; tok < c.toks; ++tok)
      kt.ternary_lut_build(act.data() + size_t(tok) * size_t(c.K), c.K, tables.data() + tok * table_stride);
    std::vector<int32_t> got(out_size, kSentinel);
    kt.ternary_lut_dots(c.K, w.data(), blocks, bias.data(), tables.data(), table_stride, c.toks, got.data(),
                        out_stride);
    size_t first_diff = 0;
    while (first_diff < got.size() && got[first_diff] == want[first_diff]) ++first_diff;
    INFO(level_name(isa), " ", describe(c), " first difference at out[", first_diff, "]");
    CHECK(got == want);
  }
}

TEST_CASE("tl3: every level gives the exact products of valid matrices") {
  Rng rng(5101);
  for (int64_t K : {3, 47, 48, 128, 256, 400, 768, 2560})
    for (int rows : {1, 31, 32, 33, 64})
      for (int toks : {1, 2, 3}) check(rng, Case{K, rows, toks, 0, 0, false});
  for (int toks : {1, 4}) check(rng, Case{6912, 40, toks, 0, 0, false});
}

TEST_CASE("tl3: extreme sums (int16 partial sums at their bound)") {
  Rng rng(5107);
  for (int w : {-1, 1})
    for (int a : {-128, 127})
      for (int64_t K : {384, 1152, 6912}) check(rng, Case{K, 32, 2, a, w, false});
}

TEST_CASE("tl3: arbitrary bytes, every level equals the reference") {
  Rng rng(5113);
  for (int64_t K : {48, 128, 1000, 2560})
    for (int toks : {1, 3}) check(rng, Case{K, 64, toks, 0, 0, true});
}

TEST_CASE("tl3: decode_row and row_bias read the layout") {
  Rng rng(5119);
  const int rows = 45;
  for (int64_t K : {5, 48, 130}) {
    const std::vector<int8_t> t = random_ternary(rng, rows, K);
    const std::vector<uint8_t> w = encode(t, rows, K);
    std::vector<float> row(static_cast<size_t>(K));
    std::vector<int32_t> bias(64);
    tl3_row_bias(w.data(), 64, K, bias.data());
    for (int r = 0; r < rows; ++r) {
      tl3_decode_row(w.data(), K, r, 0, K, 0.5f, row.data());
      int negative = 0;
      bool same = true;
      for (int64_t k = 0; k < K; ++k) same = same && row[size_t(k)] == 0.5f * t[size_t(r) * size_t(K) + size_t(k)];
      for (int64_t g = 0; 3 * g < K; ++g) {
        int v = 0;
        for (int i = 0; i < 3; ++i) v = 3 * v + (3 * g + i < K ? t[size_t(r) * size_t(K) + size_t(3 * g + i)] : 0);
        negative += v < 0;
      }
      INFO("K=", K, " row ", r);
      CHECK(same);
      CHECK(bias[size_t(r)] == negative);
    }
    for (int r = rows; r < 64; ++r) CHECK(bias[size_t(r)] == 0);
    // A slice, as the exact-precision panels decode it.
    if (K > 7) {
      tl3_decode_row(w.data(), K, 39, 4, K - 1, 1.0f, row.data());
      bool same = true;
      for (int64_t k = 4; k < K - 1; ++k) same = same && row[size_t(k - 4)] == float(t[size_t(39 * K + k)]);
      CHECK(same);
    }
  }
}

}  // namespace
}  // namespace mce::test
