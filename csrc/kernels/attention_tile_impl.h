// SIMD body of the attention tile kernel (kernels/attention.h), compiled once
// per ISA level. The including translation unit defines a vector traits
// struct (see x86_avx2/attention_avx2.cpp for the members) and instantiates
// AttentionTileSimd<Traits>::run. Everything here has internal linkage, so
// copies built with different ISA flags never meet at link time.
//
// Per key block of kAttnBlockKeys positions (FlashAttention-2, Dao 2023):
//   S = scale * Q K^T      rows x keys, from the transposed key tiles: a
//                          broadcast of q_d times 16 keys' d-th components
//   m' = max(m, rowmax S);  P = exp(S - m');  l = l e^(m - m') + rowsum P
//   O = O e^(m - m') + P V
// and at the end out = O / l. All query rows of the tile (tokens x the query
// heads of one KV head) share each block while it is in L1.
//
// Each step runs in the evaluation order kernels/attention.h defines, which
// ref/attention_ref.cpp spells out one row at a time: lanes of the score and
// P V vectors are keys and value components, whose arithmetic does not
// depend on the vector width; the one sum across lanes, rowsum P, goes
// through the traits' eight-lane accumulator (V::Sum8), so levels of 8 and
// 16 lanes add in the same order.
#pragma once
#include <algorithm>
#include <cmath>

#include "kernels/attention.h"

namespace mce {
namespace {

template <class V>
struct AttentionTileSimd {
  using F = typename V::F;
  static constexpr int W = V::W;
  static constexpr int64_t kBlockVecs = kAttnBlockKeys / W;
  static_assert(kBlockVecs % V::kScoreVecs == 0, "score micro-kernel must tile a key block");
  static_assert(kKeyTile % W == 0, "a vector of keys must lie in one key tile");

  // Scores of RB rows against NV vectors of keys starting at key jv (a
  // multiple of W). Lanes at or past a row's key end become -inf. Even and
  // odd dimensions go to separate accumulators: twice the independent FMA
  // chains, so decode's few rows still cover the FMA latency.
  template <int RB, int NV, class T>
  static inline void scores(const float* const* q, const T* K, int64_t D, int64_t jv, float scale,
                            const int64_t* kend, float* const* dst) {
    const T* kp[NV];
    for (int v = 0; v < NV; ++v) kp[v] = K + kv_key_index(jv + v * W, 0, D);
    F acc[2][RB][NV];
    for (int u = 0; u < 2; ++u)
      for (int r = 0; r < RB; ++r)
        for (int v = 0; v < NV; ++v) acc[u][r][v] = V::zero();
    auto step = [&](int u, int64_t d) {
      F kk[NV];
      for (int v = 0; v < NV; ++v) kk[v] = V::load(kp[v] + d * kKeyTile);
      for (int r = 0; r < RB; ++r) {
        const F qb = V::set1(q[r][d]);
        for (int v = 0; v < NV; ++v) acc[u][r][v] = V::fma(qb, kk[v], acc[u][r][v]);
      }
    };
    int64_t d = 0;
    for (; d + 2 <= D; d += 2) {
      step(0, d);
      step(1, d + 1);
    }
    if (d < D) step(0, d);
    const F sc = V::set1(scale);
    for (int r = 0; r < RB; ++r)
      for (int v = 0; v < NV; ++v)
        V::store(dst[r] + v * W,
                 V::mask_keys(V::mul(V::add(acc[0][r][v], acc[1][r][v]), sc), kend[r] - (jv + v * W)));
  }

  // O[r][DB vectors] += sum_{j < nk} P[r][j] * V[j][DB vectors] for RB rows;
  // even and odd keys in separate accumulators, as above. Rows whose keys end
  // before nk run on with P = 0, which leaves each sum's value alone but may
  // flip the sign of a zero sum; adding +0 at the end makes every zero +0, as
  // the reference does, which stops at the row's own last key.
  template <int RB, int DB, class T>
  static inline void pv(float* const* o, const float* const* p, const T* vrow, int64_t vstride, int64_t nk) {
    F acc[2][RB][DB];
    for (int r = 0; r < RB; ++r)
      for (int b = 0; b < DB; ++b) {
        acc[0][r][b] = V::loadf(o[r] + b * W);
        acc[1][r][b] = V::zero();
      }
    auto step = [&](int u, int64_t j) {
      F vv[DB];
      for (int b = 0; b < DB; ++b) vv[b] = V::load(vrow + j * vstride + b * W);
      for (int r = 0; r < RB; ++r) {
        const F pb = V::set1(p[r][j]);
        for (int b = 0; b < DB; ++b) acc[u][r][b] = V::fma(pb, vv[b], acc[u][r][b]);
      }
    };
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
      step(0, j);
      step(1, j + 1);
    }
    if (j < nk) step(0, j);
    for (int r = 0; r < RB; ++r)
      for (int b = 0; b < DB; ++b) V::store(o[r] + b * W, V::add(V::add(acc[0][r][b], acc[1][r][b]), V::zero()));
  }

  // Runtime row count -> the micro-kernel instantiated for it.
  template <int RB, class T>
  static void scores_rows(int rb, const float* const* q, const T* K, int64_t D, int64_t jv, float scale,
                          const int64_t* kend, float* const* dst) {
    if constexpr (RB > 1) {
      if (rb < RB) return scores_rows<RB - 1, T>(rb, q, K, D, jv, scale, kend, dst);
    }
    scores<RB, V::kScoreVecs, T>(q, K, D, jv, scale, kend, dst);
  }

  template <int RB, int DB, class T>
  static void pv_rows(int rb, int db, float* const* o, const float* const* p, const T* vrow, int64_t vstride,
                      int64_t nk) {
    if constexpr (RB > 1) {
      if (rb < RB) return pv_rows<RB - 1, DB, T>(rb, db, o, p, vrow, vstride, nk);
    }
    if constexpr (DB > 1) {
      if (db < DB) return pv_rows<RB, DB - 1, T>(rb, db, o, p, vrow, vstride, nk);
    }
    pv<RB, DB, T>(o, p, vrow, vstride, nk);
  }

  template <class T>
  static void run_typed(const AttentionTask& a, float* scratch) {
    const int64_t D = a.head_dim, Dv = kv_value_stride(D), G = a.n_group, R = int64_t(a.n_tok) * G;
    const T* K = static_cast<const T*>(a.k);
    const T* Vc = static_cast<const T*>(a.v);
    float* P = scratch;  // [R][kAttnBlockKeys] scores, then probabilities
    float* O = P + R * kAttnBlockKeys;  // [R][Dv] unnormalised outputs
    float* M = O + R * Dv;              // running max per row
    float* L = M + R;                   // running sum per row
    std::fill(O, O + R * Dv, 0.0f);
    std::fill(M, M + R, -INFINITY);
    std::fill(L, L + R, 0.0f);
    // Rows are token-major, so a row's key end never decreases with r.
    auto kend_of = [&](int64_t r) { return std::min(a.key_end, a.pos0 + r / G + 1); };
    const int64_t tile_end = std::min(a.key_end, a.pos0 + a.n_tok);

    constexpr int kSR = V::kScoreRows, kSV = V::kScoreVecs, kPR = V::kPvRows, kPV = V::kPvVecs;
    const float* qrow[kSR];
    float* prow[kSR];
    float* orow[kPR];
    const float* pcrow[kPR];
    int64_t kend[kSR];

    int64_t r_first = 0;
    for (int64_t j0 = a.key_begin; j0 < tile_end; j0 += kAttnBlockKeys) {
      const int64_t nk = std::min(kAttnBlockKeys, tile_end - j0);
      while (kend_of(r_first) <= j0) ++r_first;  // rows that see no key of this block
      const int64_t nvec = ((nk + W - 1) / W + kSV - 1) / kSV * kSV;

      for (int64_t r0 = r_first; r0 < R; r0 += kSR) {
        const int rb = int(std::min<int64_t>(kSR, R - r0));
        for (int i = 0; i < rb; ++i) {
          const int64_t r = r0 + i;
          qrow[i] = a.q + (r / G) * a.q_stride + (r % G) * D;
          prow[i] = P + r * kAttnBlockKeys;
          kend[i] = kend_of(r);
        }
        for (int64_t v = 0; v < nvec; v += kSV) {
          float* dst[kSR];
          for (int i = 0; i < rb; ++i) dst[i] = prow[i] + v * W;
          scores_rows<kSR, T>(rb, qrow, K, D, j0 + v * W, a.scale, kend, dst);
        }
      }

      for (int64_t r = r_first; r < R; ++r) {
        float* pr = P + r * kAttnBlockKeys;
        F mv = V::loadf(pr);
        for (int64_t v = 1; v < nvec; ++v) mv = V::max(mv, V::loadf(pr + v * W));
        const float m_new = std::max(M[r], V::hmax(mv));
        if (m_new == -INFINITY) {  // no finite score yet: nothing to weigh
          std::fill(pr, pr + nvec * W, 0.0f);
          continue;
        }
        const F mn = V::set1(m_new);
        typename V::Sum8 sum = V::sum8_zero();
        for (int64_t v = 0; v < nvec; ++v) {
          const F e = V::exp(V::sub(V::loadf(pr + v * W), mn));
          V::store(pr + v * W, e);
          sum = V::sum8_add(sum, e);  // lanes past the row's keys add +0
        }
        // exp_poly(0) = 1 and exp_poly(-inf) = 0 exactly: the usual cases
        // (max unchanged, first block) skip the exp.
        const float corr = M[r] == m_new ? 1.0f : M[r] == -INFINITY ? 0.0f : V::exp1(M[r] - m_new);
        L[r] = std::fma(L[r], corr, V::sum8_total(sum));
        if (corr != 1.0f) {
          const F c = V::set1(corr);
          for (int64_t d = 0; d < Dv; d += W) V::store(O + r * Dv + d, V::mul(V::loadf(O + r * Dv + d), c));
        }
        M[r] = m_new;
      }

      const T* vblock = Vc + kv_value_index(j0, 0, D);
      for (int64_t r0 = r_first; r0 < R; r0 += kPR) {
        const int rb = int(std::min<int64_t>(kPR, R - r0));
        // Keys the chunk's last (longest-seeing) row uses; the others have
        // P = 0 past their own end.
        const int64_t nkc = std::min(kend_of(r0 + rb - 1), j0 + nk) - j0;
        for (int i = 0; i < rb; ++i) pcrow[i] = P + (r0 + i) * kAttnBlockKeys;
        for (int64_t d = 0; d < Dv; d += int64_t(kPV) * W) {
          const int db = int(std::min<int64_t>(kPV, (Dv - d) / W));
          for (int i = 0; i < rb; ++i) orow[i] = O + (r0 + i) * Dv + d;
          pv_rows<kPR, kPV, T>(rb, db, orow, pcrow, vblock + d, Dv, nkc);
        }
      }
    }

    for (int64_t r = 0; r < R; ++r) {
      const float inv = L[r] > 0.0f ? 1.0f / L[r] : 0.0f;
      float* out = a.out + (r / G) * a.out_stride + (r % G) * D;
      const float* o = O + r * Dv;
      const F vi = V::set1(inv);
      int64_t d = 0;
      for (; d + W <= D; d += W) V::store(out + d, V::mul(V::loadf(o + d), vi));
      for (; d < D; ++d) out[d] = o[d] * inv;
      if (a.row_max) a.row_max[r] = M[r];
      if (a.row_sum) a.row_sum[r] = L[r];
    }
  }

  static void run(const AttentionTask& a, float* scratch) {
    if (a.kv_type == KvType::F16) run_typed<uint16_t>(a, scratch);
    else run_typed<float>(a, scratch);
  }
};

}  // namespace
}  // namespace mce
