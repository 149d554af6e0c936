// Attention (kernels/attention.h) of every level against exact attention
// computed in double from the cached keys and values, with the bound
// attention.h documents, and every level bit for bit against the scalar
// kernel (the contract: one evaluation order on every level): tile kernels
// over random shapes (ragged head_dim and key counts, GQA groups of 1, 3
// and 4, key ranges that start and end anywhere), and the whole-layer driver
// over prefill, chunked prefill, decode with key splits, and pools of 1, 2
// and 3 threads. Values of keys a row must not see are made large, so a
// causal-mask or range error shows far above the bound.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "quant/fp16.h"
#include "runtime/kv_cache.h"

namespace mce::test {
namespace {

constexpr double kEps = 1.0 / (1 << 23);

// The contract's equality: the same bits, or NaN on both sides.
bool same_bits(float a, float b) { return float_bits(a) == float_bits(b) || (std::isnan(a) && std::isnan(b)); }

// All of a float's digits, so two values that differ in the last bit show it.
std::string hex(float v) {
  std::ostringstream s;
  s << std::hexfloat << v;
  return s.str();
}

struct Failures {
  int count = 0;
  std::ostringstream first;
  void add(const std::string& what) {
    if (count++ < 5) first << "  " << what << "\n";
  }
  std::string text() const { return std::to_string(count) + " failure(s), first ones:\n" + first.str(); }
};

// Keys and values of n_head_kv heads for n positions, as floats and as the
// cache holds them (rounded to binary16 for an F16 cache).
struct KvData {
  int64_t n = 0, n_head_kv = 0, d = 0;
  std::vector<float> k, v;  // [pos][head][d], the values stored
  std::vector<double> kc, vc;  // the values the cache holds
  double key(int64_t pos, int64_t h, int64_t i) const { return kc[size_t((pos * n_head_kv + h) * d + i)]; }
  double value(int64_t pos, int64_t h, int64_t i) const { return vc[size_t((pos * n_head_kv + h) * d + i)]; }
};

KvData random_kv(Rng& rng, int64_t n, int64_t n_head_kv, int64_t d, KvType type) {
  KvData kv{n, n_head_kv, d, {}, {}, {}, {}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t total = size_t(n * n_head_kv * d);
  kv.k.resize(total);
  kv.v.resize(total);
  for (size_t i = 0; i < total; ++i) {
    kv.k[i] = nd(rng);
    kv.v[i] = nd(rng) * (chance(rng, 0.05) ? 30.0f : 1.0f);
  }
  auto held = [type](float x) { return type == KvType::F16 ? double(fp16_to_f32(f32_to_fp16(x))) : double(x); };
  kv.kc.resize(total);
  kv.vc.resize(total);
  for (size_t i = 0; i < total; ++i) {
    kv.kc[i] = held(kv.k[i]);
    kv.vc[i] = held(kv.v[i]);
  }
  return kv;
}

std::unique_ptr<KvCache> make_cache(const KvData& kv, int64_t n_ctx, KvType type) {
  auto cache = std::make_unique<KvCache>(1, int(kv.n_head_kv), int(kv.d), int(n_ctx), type);
  for (int64_t p = 0; p < kv.n; ++p) {
    const size_t off = size_t(p * kv.n_head_kv * kv.d);
    cache->store(0, int(p), kv.k.data() + off, kv.v.data() + off, ops_scalar());
  }
  return cache;
}

// Exact attention of one query row over keys [kb, ke) of KV head h, and the
// scale of its rounding bound (attention.h).
struct ExactRow {
  std::vector<double> out;
  double max = -INFINITY, sum = 0.0;
  double A = 0.0;      // scale * max_j sum_d |q_d k_jd|
  double rel = 0.0;    // eps * (8 (D + 2) A + 3 n_keys + 64)
  double bound = 0.0;  // rel * max |v|: the bound on each output
  int64_t n_keys = 0;
};

ExactRow exact_row(const float* q, const KvData& kv, int64_t h, int64_t kb, int64_t ke, float scale) {
  const int64_t D = kv.d;
  ExactRow r;
  r.out.assign(size_t(D), 0.0);
  r.n_keys = std::max<int64_t>(0, ke - kb);
  if (r.n_keys == 0) return r;
  std::vector<double> s(size_t(r.n_keys));
  double A = 0.0, vmax = 0.0;
  for (int64_t j = kb; j < ke; ++j) {
    double dot = 0.0, mag = 0.0;
    for (int64_t i = 0; i < D; ++i) {
      dot += double(q[i]) * kv.key(j, h, i);
      mag += std::fabs(double(q[i]) * kv.key(j, h, i));
      vmax = std::max(vmax, std::fabs(kv.value(j, h, i)));
    }
    s[size_t(j - kb)] = dot * scale;
    A = std::max(A, mag * scale);
    r.max = std::max(r.max, s[size_t(j - kb)]);
  }
  for (int64_t j = kb; j < ke; ++j) {
    const double p = std::exp(s[size_t(j - kb)] - r.max);
    r.sum += p;
    for (int64_t i = 0; i < D; ++i) r.out[size_t(i)] += p * kv.value(j, h, i);
  }
  for (auto& o : r.out) o /= r.sum;
  r.A = A;
  r.rel = kEps * (8.0 * double(D + 2) * A + 3.0 * double(r.n_keys) + 64.0);
  r.bound = r.rel * vmax;
  return r;
}

std::vector<float> random_queries(Rng& rng, int64_t rows, int64_t stride, double sigma) {
  std::normal_distribution<float> nd(0.0f, float(sigma));
  std::vector<float> q(size_t(rows * stride));
  for (auto& x : q) x = nd(rng);
  return q;
}

// 64-byte aligned scratch of n floats.
struct Scratch {
  explicit Scratch(size_t n) : buf(n + 16) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(buf.data());
    p = buf.data() + ((64 - a % 64) % 64) / sizeof(float);
  }
  std::vector<float> buf;
  float* p;
};

std::vector<Isa> attention_levels() { return levels_to_test(); }

TEST_CASE("attention: tile kernels of every level are the scalar kernel's bits and near exact attention") {
  Rng rng(20250101);
  const int64_t dims[] = {2, 5, 6, 8, 14, 16, 24, 33, 40, 64, 72, 80, 96, 128, 130};
  const int groups[] = {1, 3, 4};
  const double sigmas[] = {0.3, 1.0, 3.0};
  const AttendTileFn scalar = attend_tile_for(Isa::Scalar);
  Failures f;
  for (int rep = 0; rep < 180; ++rep) {
    // Every (head_dim, group, cache type) combination, in a random order of
    // the rest of the parameters.
    const int64_t D = dims[rep % 15];
    const int G = groups[(rep / 15) % 3];
    const KvType type = (rep / 45) % 2 ? KvType::F16 : KvType::F32;
    const int n_tok = randint(rng, 1, 24 / G + 2);
    const int64_t pos0 = randint(rng, 0, 300);
    const int64_t n_keys = pos0 + n_tok;
    const int64_t key_begin = chance(rng, 0.3) ? kAttnBlockKeys * randint(rng, 0, int((n_keys - 1) / kAttnBlockKeys)) : 0;
    const int64_t key_end = chance(rng, 0.5) ? n_keys : randint(rng, int(key_begin) + 1, int(n_keys));
    const int64_t n_ctx = n_keys + randint(rng, 0, 70);
    const KvData kv = random_kv(rng, n_keys, 1, D, type);
    const auto cache = make_cache(kv, n_ctx, type);
    const KvLayerView view = cache->layer(0);
    const int64_t q_stride = G * D + randint(rng, 0, 5), out_stride = G * D + randint(rng, 0, 5);
    const std::vector<float> q = random_queries(rng, n_tok, q_stride, sigmas[randint(rng, 0, 2)]);
    const float scale = 1.0f / std::sqrt(float(D));

    AttentionTask a;
    a.q = q.data();
    a.q_stride = q_stride;
    a.n_tok = n_tok;
    a.n_group = G;
    a.kv_type = type;
    a.k = view.k;
    a.v = view.v;
    a.head_dim = D;
    a.pos0 = pos0;
    a.key_begin = key_begin;
    a.key_end = key_end;
    a.scale = scale;
    a.out_stride = out_stride;
    Scratch scratch(attention_scratch_floats(int64_t(n_tok) * G, D));

    auto run = [&](AttendTileFn fn, std::vector<float>& out, std::vector<float>& mx, std::vector<float>& sm) {
      out.assign(size_t(n_tok * out_stride), std::numeric_limits<float>::quiet_NaN());
      mx.assign(size_t(n_tok * G), 0.0f);
      sm.assign(size_t(n_tok * G), 0.0f);
      AttentionTask t = a;
      t.out = out.data();
      t.row_max = mx.data();
      t.row_sum = sm.data();
      fn(t, scratch.p);
    };
    std::vector<float> ref_out, ref_max, ref_sum;
    run(scalar, ref_out, ref_max, ref_sum);

    for (Isa isa : attention_levels()) {
      std::vector<float> out, mx, sm;
      run(attend_tile_for(isa), out, mx, sm);
      for (int t = 0; t < n_tok; ++t) {
        for (int g = 0; g < G; ++g) {
          const int64_t r = int64_t(t) * G + g;
          const ExactRow e = exact_row(q.data() + t * q_stride + g * D, kv, 0, key_begin,
                                       std::min(key_end, pos0 + t + 1), scale);
          std::ostringstream where;
          where << level_name(isa) << (type == KvType::F16 ? " f16" : " f32") << " D=" << D << " G=" << G
                << " n_tok=" << n_tok << " pos0=" << pos0 << " keys [" << key_begin << "," << key_end << ") t=" << t
                << " g=" << g;
          for (int64_t i = 0; i < D; ++i) {
            const float o = out[size_t(t * out_stride + g * D + i)];
            const float ro = ref_out[size_t(t * out_stride + g * D + i)];
            if (!(std::fabs(o - e.out[size_t(i)]) <= e.bound) || !same_bits(o, ro)) {
              f.add(where.str() + " i=" + std::to_string(i) + ": " + hex(o) + " vs exact " +
                    std::to_string(e.out[size_t(i)]) + " (scalar " + hex(ro) + ", bound " + std::to_string(e.bound) +
                    ")");
              break;
            }
          }
          if (!same_bits(mx[size_t(r)], ref_max[size_t(r)]) || !same_bits(sm[size_t(r)], ref_sum[size_t(r)]))
            f.add(where.str() + ": row max/sum " + hex(mx[size_t(r)]) + "/" + hex(sm[size_t(r)]) +
                  " differ from the scalar kernel's " + hex(ref_max[size_t(r)]) + "/" + hex(ref_sum[size_t(r)]));
          if (e.n_keys == 0) {
            if (!(mx[size_t(r)] == -INFINITY && sm[size_t(r)] == 0.0f)) f.add(where.str() + ": empty row max/sum");
          } else {
            // The max is a computed score: off by the dot product's rounding.
            if (!(std::fabs(mx[size_t(r)] - e.max) <= 2 * kEps * double(D + 2) * e.A + 1e-30) ||
                !(std::fabs(sm[size_t(r)] - e.sum) <= e.rel * e.sum))
              f.add(where.str() + ": row max/sum " + std::to_string(mx[size_t(r)]) + "/" + std::to_string(sm[size_t(r)]) +
                    " vs " + std::to_string(e.max) + "/" + std::to_string(e.sum));
          }
        }
        // Nothing written between one token's rows and the next.
        for (int64_t i = G * D; i < out_stride; ++i)
          if (!std::isnan(out[size_t(t * out_stride + i)])) f.add(level_name(isa) + ": write past the rows");
      }
    }
  }
  INFO(f.text());
  CHECK(f.count == 0);
}

TEST_CASE("attention: zero outputs are +0 on every level, also for rows that share a micro-kernel with longer ones") {
  // Nine tokens at positions 0..8, one head, head_dim 2, f32 cache. Key 0
  // has the top score (p = 1) and value 0; keys 1..6 score 0 (p ~ 8e-4)
  // with the smallest negative value, so every product rounds to -0 and the
  // P V sums of rows 3..6 are zeros of negative sign; keys 7 and 8 hold +1.
  // SIMD kernels run rows 3..6 on past their last key next to rows that see
  // keys 7 and 8 (P = 0 there), which turns such a -0 sum into +0: the
  // contract's final + 0 makes every level's zero +0.
  const int64_t n = 9, D = 2;
  KvData kv{n, 1, D, {}, {}, {}, {}};
  kv.k.assign(size_t(n * D), 0.0f);
  kv.v.assign(size_t(n * D), -std::numeric_limits<float>::denorm_min());
  kv.k[0] = 1.0f;
  kv.v[0] = kv.v[1] = 0.0f;
  for (int64_t j = 7; j < n; ++j) kv.v[size_t(j * D)] = kv.v[size_t(j * D + 1)] = 1.0f;
  for (size_t i = 0; i < kv.k.size(); ++i) {
    kv.kc.push_back(kv.k[i]);
    kv.vc.push_back(kv.v[i]);
  }
  const auto cache = make_cache(kv, n, KvType::F32);
  const KvLayerView view = cache->layer(0);
  const std::vector<float> q = {10.0f, 0.0f, 10.0f, 0.0f, 10.0f, 0.0f, 10.0f, 0.0f, 10.0f,
                                0.0f,  10.0f, 0.0f, 10.0f, 0.0f, 10.0f, 0.0f, 10.0f, 0.0f};
  Scratch scratch(attention_scratch_floats(n, D));
  for (Isa isa : attention_levels()) {
    AttentionTask a;
    a.q = q.data();
    a.q_stride = D;
    a.n_tok = int(n);
    a.n_group = 1;
    a.kv_type = KvType::F32;
    a.k = view.k;
    a.v = view.v;
    a.head_dim = D;
    a.key_end = n;
    a.scale = 1.0f / std::sqrt(float(D));
    std::vector<float> out(size_t(n * D), std::numeric_limits<float>::quiet_NaN());
    a.out = out.data();
    a.out_stride = D;
    attend_tile_for(isa)(a, scratch.p);
    Failures f;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < D; ++i) {
        const float o = out[size_t(t * D + i)];
        const ExactRow e = exact_row(q.data() + t * D, kv, 0, 0, t + 1, a.scale);
        const bool zero_row = t < 7;  // sees no +1 value: a sum of zeros and -0s
        // Products below the subnormal range round to zero: 2^-149 slack.
        if (!(std::fabs(o - e.out[size_t(i)]) <= e.bound + 0x1p-149) ||
            (zero_row && float_bits(o) != float_bits(0.0f)))
          f.add(level_name(isa) + " t=" + std::to_string(t) + " i=" + std::to_string(i) + ": " + std::to_string(o) +
                (std::signbit(o) ? " (negative)" : "") + " vs exact " + std::to_string(e.out[size_t(i)]));
      }
    INFO(f.text());
    CHECK(f.count == 0);
  }
}

struct LayerCase {
  int n_head, n_head_kv;
  int64_t d;
  int64_t pos0;
  int n_tok;
};

TEST_CASE("attention: the layer driver is the scalar level's bits and near exact (prefill, decode splits, odd pools)") {
  Rng rng(777);
  const LayerCase cases[] = {
      {3, 3, 64, 0, 37},     // prefill, no GQA
      {9, 3, 64, 0, 100},    // prefill, group of 3 (SmolLM2's shape)
      {8, 2, 24, 50, 70},    // chunked prefill after a cached prefix, group of 4
      {9, 3, 64, 255, 1},    // decode
      {9, 3, 64, 700, 1},    // decode with key splits
      {8, 2, 80, 1500, 1},   // decode, ragged head_dim, many splits
      {6, 2, 40, 600, 3},    // small batch after a long prefix (splits with several tokens)
      {4, 4, 130, 130, 5},   // head_dim not a multiple of 16
  };
  for (const LayerCase& c : cases) {
    for (KvType type : {KvType::F16, KvType::F32}) {
      const int64_t D = c.d, n_keys = c.pos0 + c.n_tok;
      const KvData kv = random_kv(rng, n_keys, c.n_head_kv, D, type);
      const auto cache = make_cache(kv, n_keys + 17, type);
      const int64_t qd = int64_t(c.n_head) * D;
      const std::vector<float> q = random_queries(rng, c.n_tok, qd, 1.0);
      const float scale = 1.0f / std::sqrt(float(D));
      const int G = c.n_head / c.n_head_kv;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        AttentionWorkspace ws(threads, c.n_head, c.n_head_kv, D);
        std::vector<float> ref_out(size_t(c.n_tok * qd), std::numeric_limits<float>::quiet_NaN());
        attention_causal(attend_tile_for(Isa::Scalar), q.data(), qd, c.n_tok, c.pos0, cache->layer(0), scale,
                         ref_out.data(), qd, pool, ws);
        for (Isa isa : attention_levels()) {
          std::vector<float> out(size_t(c.n_tok * qd), std::numeric_limits<float>::quiet_NaN());
          attention_causal(attend_tile_for(isa), q.data(), qd, c.n_tok, c.pos0, cache->layer(0), scale, out.data(), qd,
                           pool, ws);
          Failures f;
          for (size_t i = 0; i < out.size(); ++i)
            if (!same_bits(out[i], ref_out[i])) {
              std::ostringstream s;
              s << level_name(isa) << " threads=" << threads << " heads " << c.n_head << "/" << c.n_head_kv
                << " D=" << D << " pos0=" << c.pos0 << " n_tok=" << c.n_tok << " element " << i << ": "
                << hex(out[i]) << " vs the scalar level's " << hex(ref_out[i]);
              f.add(s.str());
            }
          for (int t = 0; t < c.n_tok; ++t) {
            for (int h = 0; h < c.n_head; ++h) {
              const ExactRow e = exact_row(q.data() + t * qd + h * D, kv, h / G, 0, c.pos0 + t + 1, scale);
              for (int64_t i = 0; i < D; ++i) {
                const float o = out[size_t(t * qd + h * D + i)];
                if (!(std::fabs(o - e.out[size_t(i)]) <= e.bound)) {
                  std::ostringstream s;
                  s << level_name(isa) << " threads=" << threads << " heads " << c.n_head << "/" << c.n_head_kv
                    << " D=" << D << " pos0=" << c.pos0 << " n_tok=" << c.n_tok << " t=" << t << " h=" << h
                    << " i=" << i << ": " << o << " vs " << e.out[size_t(i)] << " bound " << e.bound;
                  f.add(s.str());
                  break;
                }
              }
            }
          }
          INFO(f.text());
          CHECK(f.count == 0);
        }
      }
    }
  }
}

TEST_CASE("attention: the KV cache stores binary16 or f32 in the kernels' layout") {
  Rng rng(31337);
  for (KvType type : {KvType::F16, KvType::F32}) {
    for (int64_t D : {6, 64, 72}) {
      const int64_t n = 41, Hkv = 2;
      const KvData kv = random_kv(rng, n, Hkv, D, type);
      for (Isa isa : levels_to_test()) {
        auto cache = std::make_unique<KvCache>(3, int(Hkv), int(D), int(n), type);
        for (int64_t p = 0; p < n; ++p) {
          const size_t off = size_t(p * Hkv * D);
          cache->store(1, int(p), kv.k.data() + off, kv.v.data() + off, ops_for(isa));
        }
        const KvLayerView view = cache->layer(1);
        CHECK(view.type == type);
        Failures f;
        for (int64_t h = 0; h < Hkv; ++h) {
          const uint8_t* kh = view.k + size_t(h) * view.k_head_bytes;
          const uint8_t* vh = view.v + size_t(h) * view.v_head_bytes;
          for (int64_t p = 0; p < n; ++p) {
            for (int64_t i = 0; i < kv_value_stride(D); ++i) {
              const int64_t vi = kv_value_index(p, i, D);
              const double v = type == KvType::F16 ? fp16_to_f32(reinterpret_cast<const uint16_t*>(vh)[vi])
                                                   : reinterpret_cast<const float*>(vh)[vi];
              const double want = i < D ? kv.value(p, h, i) : 0.0;  // row padding is zero
              if (v != want) f.add(level_name(isa) + " value p=" + std::to_string(p) + " i=" + std::to_string(i));
              if (i >= D) continue;
              const int64_t ki = kv_key_index(p, i, D);
              const double k = type == KvType::F16 ? fp16_to_f32(reinterpret_cast<const uint16_t*>(kh)[ki])
                                                   : reinterpret_cast<const float*>(kh)[ki];
              if (k != kv.key(p, h, i)) f.add(level_name(isa) + " key p=" + std::to_string(p) + " i=" + std::to_string(i));
            }
          }
        }
        // Layers 0 and 2 untouched.
        const KvLayerView l0 = cache->layer(0), l2 = cache->layer(2);
        for (size_t b = 0; b < Hkv * l0.k_head_bytes; ++b)
          if (l0.k[b] != 0 || l2.k[b] != 0) { f.add("store wrote into another layer"); break; }
        INFO(f.text());
        CHECK(f.count == 0);
      }
    }
  }
}

}  // namespace
}  // namespace mce::test
