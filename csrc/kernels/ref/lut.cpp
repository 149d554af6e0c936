// Scalar reference of the table-lookup GEMV (LutBuildFn / LutGemvFn in
// kernels/dispatch.h): tables built entry by entry, each row's integer sums
// gathered from the tile layout of kernels/lut_layout.h, then the float
// sequence of the contract with std::fma.
#include <algorithm>
#include <cmath>

#include "kernels/dispatch.h"
#include "kernels/ref/ref_kernels.h"
#include "quant/fp16.h"

namespace mce::ref {

void lut_build(const float* x, int64_t K, int group, int8_t* tables, float* half_sigma, float* xsum) {
  const int64_t chunks_per_group = group / kLutChunk;
  for (int64_t g = 0; g < K / group; ++g) {
    const float* xg = x + g * group;
    float a = 0.0f;
    for (int64_t j = 0; j < chunks_per_group; ++j) {
      const float* c = xg + kLutChunk * j;
      a = std::max(a, (std::fabs(c[0]) + std::fabs(c[1])) + (std::fabs(c[2]) + std::fabs(c[3])));
    }
    half_sigma[g] = (a / 127.0f) * 0.5f;
    const float inv = a > 0.0f ? 127.0f / a : 0.0f;
    float sum = 0.0f;
    for (int64_t j = 0; j < chunks_per_group; ++j) {
      const float* c = xg + kLutChunk * j;
      int8_t* tab = tables + 16 * (g * chunks_per_group + j);
      for (int t = 0; t < 16; ++t) {
        const float v0 = (t & 1) ? c[0] : -c[0], v1 = (t & 2) ? c[1] : -c[1];
        const float v2 = (t & 4) ? c[2] : -c[2], v3 = (t & 8) ? c[3] : -c[3];
        const float T = (v0 + v1) + (v2 + v3);
        // Clamped before rounding; NaN (from infinite inputs) becomes -127.
        float v = T * inv;
        if (!(v > -127.0f)) v = -127.0f;
        if (v > 127.0f) v = 127.0f;
        tab[t] = int8_t(std::nearbyint(v));
        if (t == 15) sum += T;
      }
    }
    xsum[g] = sum;
  }
}

void lut_gemv(const LowBitFormat& f, int64_t K, const uint8_t* tile, const int8_t* tables, const float* half_sigma,
              const float* xsum, float* y) {
  const int64_t groups = K / f.group;
  const size_t group_bytes = lut_tile_bytes(f, f.group);
  const float center = float((1 << f.bits) - 1) * 0.5f;
  for (int r = 0; r < kLutTileRows; ++r) {
    float acc = 0.0f;
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* grp = tile + size_t(g) * group_bytes;
      const uint8_t* v = grp + (f.has_min ? 64 : 32);
      int32_t S = 0;
      const LutStepVector* vecs = lut_step_vectors(f.bits);
      for (int64_t s = 0; s < f.group / kLutStep; ++s) {
        const int8_t* T = tables + 16 * ((g * f.group + s * kLutStep) / kLutChunk);  // the step's 4 chunks
        for (int vi = 0; vi < f.bits; ++vi, v += 32)
          for (int lane = 0; lane < 2; ++lane)
            for (int half = 0; half < 2; ++half) {
              const LutSlot slot = lut_slot(vecs[vi], r, lane, half);
              S += (1 << slot.plane) * T[16 * slot.chunk + ((v[slot.byte] >> slot.shift) & 15)];
            }
      }
      const float d = fp16_to_f32(reinterpret_cast<const uint16_t*>(grp)[r]);
      acc = std::fma(float(S), d * half_sigma[g], acc);
      if (f.has_min) {
        const float m = fp16_to_f32(reinterpret_cast<const uint16_t*>(grp + 32)[r]);
        acc = std::fma(std::fma(d, center, m), xsum[g], acc);
      }
    }
    y[r] = acc;
  }
}

}  // namespace mce::ref
