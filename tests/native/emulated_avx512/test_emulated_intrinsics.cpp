// Built only with MCE_EMULATE_AVX512, like the header it checks
// (simde_avx512.h, force-included here as into the AVX-512 kernels). Every
// intrinsic the header adds to SIMDe, and the SIMDe ones whose saturation and
// signedness rules the integer kernels lean on, against a per-lane oracle
// written from the instruction's definition (Intel SDM vol. 2), on random
// lanes plus the edge values: NaN, infinities, signed zeros, halfway cases,
// out-of-range conversions, saturating sums. Masked loads and stores run
// against a guard page, so touching a masked-off lane crashes the test.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "quant/fp16.h"

namespace {

using Rng = std::mt19937_64;

template <typename T, typename V>
void to_lanes(const V& v, T* out) {
  std::memcpy(out, &v, sizeof(V));
}
template <typename V, typename T>
V from_lanes(const T* in) {
  V v;
  std::memcpy(&v, in, sizeof(V));
  return v;
}
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
uint64_t bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A float lane: mostly ordinary values, often an edge value.
float random_float(Rng& rng) {
  static const float edges[] = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0x1p31f, -0x1p31f, 0x1.fffffep30f,
                                3e9f, -3e9f, 65504.0f, 65520.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 1e-40f,
                                std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(), from_bits(0xFFA00001u)};
  const int r = static_cast<int>(rng() % 8);
  if (r == 0) return edges[rng() % (sizeof edges / sizeof edges[0])];
  if (r == 1) return from_bits(static_cast<uint32_t>(rng()));  // any bits
  const double mag = std::ldexp(std::uniform_real_distribution<double>(1.0, 2.0)(rng), static_cast<int>(rng() % 40) - 20);
  return static_cast<float>((rng() & 1) ? -mag : mag);
}

void random_floats(Rng& rng, float* p, int n) {
  for (int i = 0; i < n; ++i) p[i] = random_float(rng);
}

// VCVTPS2DQ / VCVTTPS2DQ: NaN and results outside int32 give the "integer
// indefinite" 0x80000000.
int32_t cvt_oracle(float x, bool truncate) {
  if (std::isnan(x)) return INT32_MIN;
  const double r = truncate ? std::trunc(double(x)) : std::nearbyint(double(x));  // default mode: ties to even
  if (r < -2147483648.0 || r > 2147483647.0) return INT32_MIN;
  return static_cast<int32_t>(r);
}

bool same_float(float got, float want) {
  if (std::isnan(want)) return std::isnan(got);
  return bits(got) == bits(want);
}

constexpr int kRounds = 2000;

TEST_CASE("emulated AVX-512: conversions") {
  Rng rng(512001);
  for (int round = 0; round < kRounds; ++round) {
    float f[16];
    random_floats(rng, f, 16);
    const __m512 v = from_lanes<__m512>(f);
    int32_t got_i[16];
    to_lanes(_mm512_cvtps_epi32(v), got_i);
    for (int i = 0; i < 16; ++i) CHECK_MESSAGE(got_i[i] == cvt_oracle(f[i], false), "cvtps_epi32 lane ", i, " x=", f[i]);
    to_lanes(_mm512_cvttps_epi32(v), got_i);
    for (int i = 0; i < 16; ++i) CHECK_MESSAGE(got_i[i] == cvt_oracle(f[i], true), "cvttps_epi32 lane ", i, " x=", f[i]);

    int32_t n[16];
    for (int i = 0; i < 16; ++i) n[i] = static_cast<int32_t>(rng());
    float got_f[16];
    to_lanes(_mm512_cvtepi32_ps(from_lanes<__m512i>(n)), got_f);
    for (int i = 0; i < 16; ++i) CHECK(bits(got_f[i]) == bits(static_cast<float>(n[i])));  // ties to even, as C++

    uint16_t h[16];
    for (int i = 0; i < 16; ++i) h[i] = static_cast<uint16_t>(rng());
    int32_t got_w[16];
    to_lanes(_mm512_cvtepu16_epi32(from_lanes<__m256i>(h)), got_w);
    for (int i = 0; i < 16; ++i) CHECK(got_w[i] == int32_t(h[i]));
    to_lanes(_mm512_cvtph_ps(from_lanes<__m256i>(h)), got_f);
    for (int i = 0; i < 16; ++i) CHECK_MESSAGE(same_float(got_f[i], mce::fp16_to_f32(h[i])), "cvtph_ps lane ", i);

    uint16_t got_h[16];
    to_lanes(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT), got_h);
    for (int i = 0; i < 16; ++i) {
      const uint16_t want = mce::f32_to_fp16(f[i]);
      if ((want & 0x7C00) == 0x7C00 && (want & 0x3FF)) {
        CHECK((got_h[i] & 0x7C00) == 0x7C00);  // NaN stays NaN
        CHECK((got_h[i] & 0x3FF) != 0);
      } else {
        CHECK_MESSAGE(got_h[i] == want, "cvtps_ph lane ", i, " x=", f[i]);
      }
    }

    double got_d[8];
    to_lanes(_mm512_cvtps_pd(from_lanes<__m256>(f + 8)), got_d);
    for (int i = 0; i < 8; ++i) {
      if (std::isnan(f[8 + i])) CHECK(std::isnan(got_d[i]));
      else CHECK(bits(got_d[i]) == bits(double(f[8 + i])));
    }
  }
}

TEST_CASE("emulated AVX-512: lane moves") {
  Rng rng(512002);
  for (int round = 0; round < 200; ++round) {
    uint32_t a[16], b[16], got[16];
    for (int i = 0; i < 16; ++i) a[i] = static_cast<uint32_t>(rng()), b[i] = static_cast<uint32_t>(rng());
    const __m512 fa = from_lanes<__m512>(a);
    const __m512i ia = from_lanes<__m512i>(a), ib = from_lanes<__m512i>(b);

    uint32_t half[8];
    to_lanes(_mm512_extractf32x8_ps(fa, 0), half);
    CHECK(std::equal(half, half + 8, a));
    to_lanes(_mm512_extractf32x8_ps(fa, 1), half);
    CHECK(std::equal(half, half + 8, a + 8));

    // VPERMILPS: lane i takes a[(i & ~3) + imm8[2*(i&3)+1 : 2*(i&3)]].
#define MCE_CHECK_PERMUTE(imm)                                                      \
  to_lanes(_mm512_permute_ps(fa, imm), got);                                        \
  for (int i = 0; i < 16; ++i) CHECK(got[i] == a[(i & ~3) + (((imm) >> (2 * (i & 3))) & 3)]);
    MCE_CHECK_PERMUTE(0xB1)
    MCE_CHECK_PERMUTE(0x1B)
    MCE_CHECK_PERMUTE(0x00)
    MCE_CHECK_PERMUTE(0xE4)
    MCE_CHECK_PERMUTE(0x9C)
#undef MCE_CHECK_PERMUTE

    // VSHUFI64X2: 128-bit lanes 0,1 from a, 2,3 from b, two selector bits each.
#define MCE_CHECK_SHUFFLE(imm)                                                      \
  to_lanes(_mm512_shuffle_i64x2(ia, ib, imm), got);                                 \
  for (int l = 0; l < 4; ++l)                                                       \
    for (int j = 0; j < 4; ++j)                                                     \
      CHECK(got[4 * l + j] == (l < 2 ? a : b)[4 * (((imm) >> (2 * l)) & 3) + j]);
    MCE_CHECK_SHUFFLE(0xD8)  // _MM_SHUFFLE(3, 1, 2, 0), as the kernels use
    MCE_CHECK_SHUFFLE(0x4E)
    MCE_CHECK_SHUFFLE(0x1B)
    MCE_CHECK_SHUFFLE(0xFF)
#undef MCE_CHECK_SHUFFLE

    to_lanes(_mm512_zextsi256_si512(from_lanes<__m256i>(a)), got);
    for (int i = 0; i < 16; ++i) CHECK(got[i] == (i < 8 ? a[i] : 0u));
  }
}

TEST_CASE("emulated AVX-512: fmaddsub and srai") {
  Rng rng(512003);
  for (int round = 0; round < kRounds; ++round) {
    float a[16], b[16], c[16], got[16];
    random_floats(rng, a, 16);
    random_floats(rng, b, 16);
    random_floats(rng, c, 16);
    to_lanes(_mm512_fmaddsub_ps(from_lanes<__m512>(a), from_lanes<__m512>(b), from_lanes<__m512>(c)), got);
    for (int i = 0; i < 16; ++i) {
      const float want = std::fma(a[i], b[i], (i % 2 == 0) ? -c[i] : c[i]);  // even lanes subtract
      CHECK_MESSAGE(same_float(got[i], want), "fmaddsub lane ", i);
    }

    int32_t x[16], r[16];
    for (int i = 0; i < 16; ++i) x[i] = static_cast<int32_t>(rng());
    const unsigned count = static_cast<unsigned>(rng() % 40);  // counts above 31 fill with the sign
    to_lanes(_mm512_srai_epi32(from_lanes<__m512i>(x), count), r);
    for (int i = 0; i < 16; ++i) CHECK(r[i] == (count > 31 ? (x[i] < 0 ? -1 : 0) : (x[i] >> count)));
  }
}

// 16 lanes of `Lane` ending exactly at a PROT_NONE page: a read or write of a
// lane past `valid` faults.
template <typename Lane>
struct GuardedLanes {
  long page = sysconf(_SC_PAGESIZE);
  char* base = nullptr;
  explicit GuardedLanes() {
    base = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base != MAP_FAILED);
    REQUIRE(mprotect(base + page, page, PROT_NONE) == 0);
  }
  ~GuardedLanes() { munmap(base, 2 * page); }
  Lane* lanes_with_valid(int valid) { return reinterpret_cast<Lane*>(base + page) - valid; }
};

TEST_CASE("emulated AVX-512: masked loads and stores touch only the masked lanes") {
  Rng rng(512004);
  GuardedLanes<float> gf;
  GuardedLanes<uint16_t> gh;
  for (int valid = 0; valid <= 16; ++valid) {
    for (int round = 0; round < 20; ++round) {
      // Any mask within the valid lanes; the rest would fault.
      const __mmask16 k = static_cast<__mmask16>(rng() & ((1u << valid) - 1u));
      float* p = gf.lanes_with_valid(valid);
      float src[16], mem[16], got[16];
      random_floats(rng, src, 16);
      random_floats(rng, mem, valid);
      std::memcpy(p, mem, sizeof(float) * size_t(valid));
      to_lanes(_mm512_mask_loadu_ps(from_lanes<__m512>(src), k, p), got);
      for (int i = 0; i < 16; ++i) CHECK(bits(got[i]) == bits(((k >> i) & 1) ? mem[i] : src[i]));
      to_lanes(_mm512_maskz_loadu_ps(k, p), got);
      for (int i = 0; i < 16; ++i) CHECK(bits(got[i]) == bits(((k >> i) & 1) ? mem[i] : 0.0f));
      _mm512_mask_storeu_ps(p, k, from_lanes<__m512>(src));
      for (int i = 0; i < valid; ++i) CHECK(bits(p[i]) == bits(((k >> i) & 1) ? src[i] : mem[i]));

      uint16_t* q = gh.lanes_with_valid(valid);
      uint16_t hsrc[16], hmem[16], hgot[16];
      for (int i = 0; i < 16; ++i) hsrc[i] = static_cast<uint16_t>(rng()), hmem[i] = static_cast<uint16_t>(rng());
      std::memcpy(q, hmem, 2 * size_t(valid));
      to_lanes(_mm256_maskz_loadu_epi16(k, q), hgot);
      for (int i = 0; i < 16; ++i) CHECK(hgot[i] == (((k >> i) & 1) ? hmem[i] : 0));
      _mm256_mask_storeu_epi16(q, k, from_lanes<__m256i>(hsrc));
      for (int i = 0; i < valid; ++i) CHECK(q[i] == (((k >> i) & 1) ? hsrc[i] : hmem[i]));
    }
  }
}

// The reduction tree of the Intel Intrinsics Guide's pseudo-code and GCC's
// expansion: lanes j and j + len/2 are combined, len = 16, 8, 4, 2. Operand
// order matters for max only (MAXPS returns its second operand unless the
// first is greater): GCC passes the upper half first while halving the
// 512-bit and 256-bit vectors, and the lower lanes first within 128 bits.
template <typename T, typename Op>
T reduce_oracle(T* v, int len, Op op) {
  for (; len > 1; len /= 2)
    for (int j = 0; j < len / 2; ++j) v[j] = len > 4 ? op(v[j + len / 2], v[j]) : op(v[j], v[j + len / 2]);
  return v[0];
}

TEST_CASE("emulated AVX-512: reductions sum in the documented order") {
  Rng rng(512005);
  for (int round = 0; round < kRounds; ++round) {
    float f[16], w[16];
    for (int i = 0; i < 16; ++i) {
      // Magnitudes far apart, so a different order gives different bits.
      f[i] = static_cast<float>(std::ldexp(std::uniform_real_distribution<double>(-1.0, 1.0)(rng), int(rng() % 60) - 30));
      if (rng() % 16 == 0) f[i] = (rng() & 1) ? 0.0f : -0.0f;
      if (rng() % 64 == 0) f[i] = std::numeric_limits<float>::quiet_NaN();
    }
    const __m512 v = from_lanes<__m512>(f);
    std::copy(f, f + 16, w);
    const float sum = reduce_oracle(w, 16, [](float a, float b) { return a + b; });
    CHECK(same_float(_mm512_reduce_add_ps(v), sum));
    std::copy(f, f + 16, w);
    const float mx = reduce_oracle(w, 16, [](float a, float b) { return a > b ? a : b; });
    CHECK(bits(_mm512_reduce_max_ps(v)) == bits(mx));  // NaN and signed zeros too

    double d[8], e[8];
    for (int i = 0; i < 8; ++i) d[i] = std::ldexp(std::uniform_real_distribution<double>(-1.0, 1.0)(rng), int(rng() % 120) - 60);
    std::copy(d, d + 8, e);
    CHECK(bits(_mm512_reduce_add_pd(from_lanes<__m512d>(d))) == bits(reduce_oracle(e, 8, [](double a, double b) { return a + b; })));
  }
}

// SIMDe's own intrinsics with saturation or mixed signedness, which the
// quantized dots and quantizers depend on.
TEST_CASE("emulated AVX-512: SIMDe's integer dot and narrowing intrinsics") {
  Rng rng(512006);
  auto sat16 = [](int32_t x) { return static_cast<int16_t>(std::clamp(x, -32768, 32767)); };
  for (int round = 0; round < kRounds; ++round) {
    uint8_t u[64];
    int8_t s[64];
    for (int i = 0; i < 64; ++i) {
      u[i] = (rng() % 4 == 0) ? 255 : static_cast<uint8_t>(rng());
      s[i] = (rng() % 4 == 0) ? ((rng() & 1) ? 127 : -128) : static_cast<int8_t>(rng());
    }
    int32_t acc[16], got[16];
    for (int i = 0; i < 16; ++i) acc[i] = static_cast<int32_t>(rng() % 2000001) - 1000000;
    const __m512i vu = from_lanes<__m512i>(u), vs = from_lanes<__m512i>(s), vacc = from_lanes<__m512i>(acc);

    // VPDPBUSD: unsigned bytes of the first source times signed bytes of the
    // second, groups of four summed into each int32 lane (no saturation).
    to_lanes(_mm512_dpbusd_epi32(vacc, vu, vs), got);
    for (int i = 0; i < 16; ++i) {
      int64_t want = acc[i];
      for (int j = 0; j < 4; ++j) want += int32_t(u[4 * i + j]) * int32_t(s[4 * i + j]);
      CHECK(got[i] == static_cast<int32_t>(static_cast<uint32_t>(want)));
    }
    int32_t got8[8];
    to_lanes(_mm256_dpbusd_epi32(from_lanes<__m256i>(acc), from_lanes<__m256i>(u), from_lanes<__m256i>(s)), got8);
    for (int i = 0; i < 8; ++i) {
      int64_t want = acc[i];
      for (int j = 0; j < 4; ++j) want += int32_t(u[4 * i + j]) * int32_t(s[4 * i + j]);
      CHECK(got8[i] == static_cast<int32_t>(static_cast<uint32_t>(want)));
    }

    // VPMADDUBSW: unsigned x signed byte pairs, summed with int16 saturation.
    int16_t p[32];
    to_lanes(_mm512_maddubs_epi16(vu, vs), p);
    for (int i = 0; i < 32; ++i)
      CHECK(p[i] == sat16(int32_t(u[2 * i]) * s[2 * i] + int32_t(u[2 * i + 1]) * s[2 * i + 1]));

    // VPDPWSSD: signed int16 pairs, products summed into int32 (wrapping).
    int16_t a16[32], b16[32];
    for (int i = 0; i < 32; ++i) {
      a16[i] = (rng() % 8 == 0) ? -32768 : static_cast<int16_t>(rng());
      b16[i] = (rng() % 8 == 0) ? -32768 : static_cast<int16_t>(rng());
    }
    to_lanes(_mm512_dpwssd_epi32(vacc, from_lanes<__m512i>(a16), from_lanes<__m512i>(b16)), got);
    for (int i = 0; i < 16; ++i) {
      const int64_t want = int64_t(acc[i]) + int32_t(a16[2 * i]) * b16[2 * i] + int32_t(a16[2 * i + 1]) * b16[2 * i + 1];
      CHECK(got[i] == static_cast<int32_t>(static_cast<uint32_t>(want)));
    }

    // VPMOVSDB: int32 -> int8 with signed saturation, in lane order.
    int32_t wide[16];
    for (int i = 0; i < 16; ++i) wide[i] = static_cast<int32_t>(rng() % 601) - 300;
    int8_t narrow[16];
    to_lanes(_mm512_cvtsepi32_epi8(from_lanes<__m512i>(wide)), narrow);
    for (int i = 0; i < 16; ++i) CHECK(narrow[i] == std::clamp(wide[i], -128, 127));

    // VPABSB (|-128| stays 0x80) and the sign mask VPMOVB2M.
    uint8_t ab[64];
    to_lanes(_mm512_abs_epi8(vs), ab);
    for (int i = 0; i < 64; ++i) CHECK(ab[i] == static_cast<uint8_t>(s[i] < 0 ? -int(s[i]) : s[i]));
    const uint64_t m = _mm512_movepi8_mask(vs);
    for (int i = 0; i < 64; ++i) CHECK(((m >> i) & 1) == (s[i] < 0 ? 1u : 0u));
  }
}

// Rounding and comparisons the float kernels use (exp's range reduction,
// the quantizers' half-away rounding).
TEST_CASE("emulated AVX-512: SIMDe's roundscale and compare predicates") {
  Rng rng(512007);
  for (int round = 0; round < kRounds; ++round) {
    float a[16], b[16];
    random_floats(rng, a, 16);
    random_floats(rng, b, 16);
    for (int i = 0; i < 16; ++i)
      if (rng() % 4 == 0) b[i] = a[i];
    const __m512 va = from_lanes<__m512>(a), vb = from_lanes<__m512>(b);
    float r[16];
    to_lanes(_mm512_roundscale_ps(va, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), r);
    for (int i = 0; i < 16; ++i) CHECK_MESSAGE(same_float(r[i], std::nearbyint(a[i])), "roundscale x=", a[i]);
    const unsigned ge = _mm512_cmp_ps_mask(va, vb, _CMP_GE_OQ), eq = _mm512_cmp_ps_mask(va, vb, _CMP_EQ_OQ);
    const unsigned gt = _mm512_cmp_ps_mask(va, vb, _CMP_GT_OQ), un = _mm512_cmp_ps_mask(va, vb, _CMP_UNORD_Q);
    for (int i = 0; i < 16; ++i) {
      const bool unordered = std::isnan(a[i]) || std::isnan(b[i]);
      CHECK(((ge >> i) & 1) == (!unordered && a[i] >= b[i]));
      CHECK(((eq >> i) & 1) == (!unordered && a[i] == b[i]));
      CHECK(((gt >> i) & 1) == (!unordered && a[i] > b[i]));
      CHECK(((un >> i) & 1) == unordered);
    }
  }
}

}  // namespace
