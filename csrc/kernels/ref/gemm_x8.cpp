// Scalar reference of the packed-weight GEMMs: reads the layout of
// kernels/packed_layout.h element by element and performs, per output and
// block, the float operations dispatch.h prescribes (std::fma, so the result
// is the one every SIMD level must reproduce bit for bit).
#include <cmath>

#include "kernels/packed_layout.h"
#include "kernels/ref/ref_kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::ref {
namespace {

// Integer dot of row r of a 4-bit packed block with one Q8_0 activation block.
int32_t dot_block_q4(const uint8_t* qs, int r, const int8_t* x, bool offset8) {
  int32_t s = 0;
  for (int j = 0; j < 4; ++j) {
    for (int i = 0; i < 4; ++i) {
      const uint8_t byte = qs[32 * j + 4 * r + i];
      const int lo = (byte & 0x0F) - (offset8 ? 8 : 0);
      const int hi = (byte >> 4) - (offset8 ? 8 : 0);
      s += lo * x[4 * j + i] + hi * x[16 + 4 * j + i];
    }
  }
  return s;
}

int32_t dot_block_q8(const int8_t* qs, int r, const int8_t* x) {
  int32_t s = 0;
  for (int k = 0; k < 32; ++k) s += int32_t(qs[32 * (k / 4) + 4 * r + k % 4]) * x[k];
  return s;
}

void gemm_x8(PackedKind kind, int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride,
             const int32_t* sums, int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  const size_t bb = packed_block_bytes(kind);
  for (int64_t t = 0; t < n_tok; ++t) {
    const Q8_0Block* x = reinterpret_cast<const Q8_0Block*>(act + size_t(t) * act_stride);
    for (int r = 0; r < kPackRows; ++r) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = group + size_t(b) * bb;
        const uint16_t* d16 = reinterpret_cast<const uint16_t*>(blk);
        const float dx = fp16_to_f32(x[b].d);
        const float dw = fp16_to_f32(d16[r]);
        int32_t s;
        if (kind == PackedKind::Q8_0x8) s = dot_block_q8(reinterpret_cast<const int8_t*>(blk + 16), r, x[b].qs);
        else if (kind == PackedKind::Q4_0x8) s = dot_block_q4(blk + 16, r, x[b].qs, true);
        else s = dot_block_q4(blk + 32, r, x[b].qs, false);
        acc = std::fma(float(s), dw * dx, acc);
        if (kind == PackedKind::Q4_1x8) {
          const float m = fp16_to_f32(d16[8 + r]);
          acc = std::fma(m, dx * float(sums[t * sums_stride + b]), acc);
        }
      }
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace

void gemm_q4_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  gemm_x8(PackedKind::Q4_0x8, nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

void gemm_q4_1x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  gemm_x8(PackedKind::Q4_1x8, nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

void gemm_q8_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride) {
  gemm_x8(PackedKind::Q8_0x8, nb, group, act, act_stride, sums, sums_stride, n_tok, y, y_stride);
}

}  // namespace mce::ref
