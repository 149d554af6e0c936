// W8A8 dots (W8A8DotsFn in kernels/dispatch.h; layout in
// kernels/w8a8_layout.h) for baseline ARMv8.0 Advanced SIMD, which has no
// byte dot product (arm_neon_dotprod/w8a8.cpp has the SDOT one).
//
// A 64-byte step is four 16-byte quarters, quarter j holding rows 4j..4j+3
// (4 inputs each); the codes' top bit is flipped back to the signed weights
// (one EOR per vector, shared by the tile's tokens). The token's 4 activation
// bytes are broadcast to every 32-bit lane, so SMULL multiplies the low 8
// bytes (rows 4j, 4j+1) and SMULL2 the high ones (4j+2, 4j+3), lane by lane.
// Two steps go into one int16 lane (SMLAL: |a w| <= 128 * 127, two of them
// 32512 < 2^15), then SADALP folds adjacent lanes into int32: the low
// accumulator holds (4j, 4j, 4j+1, 4j+1), the high one (4j+2, 4j+2, 4j+3,
// 4j+3), and one pairwise add at the end gives the quarter's 4 rows in order.
//
// Prefill: 1 group x 2 tokens (16 accumulators, 8 weight vectors, 4
// broadcasts: 28 of 32 registers). Decode: 1 group per pass (8 accumulators).
#include <arm_neon.h>

#include <cstring>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/w8a8_driver.h"

namespace mce::neon {
namespace {

inline int8x16_t bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

struct Level {
  static constexpr int kDecodeGroups = 1, kGroups = 1, kTokens = 2;

  // steps is a multiple of 4 (inputs padded to 16), so steps go in pairs.
  template <int R, int T>
  static void tile(int64_t steps, const uint8_t* w, size_t gb, const int8_t* act, size_t act_stride,
                   const int32_t* sums, int32_t* out, int64_t out_stride) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    int32x4_t lo[R][T][4], hi[R][T][4];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < 4; ++j) lo[r][t][j] = hi[r][t][j] = vdupq_n_s32(0);
    for (int64_t s = 0; s < steps; s += 2) {
      int8x16_t w0[R][4], w1[R][4];
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < 4; ++j) {
          const uint8_t* p = w + r * gb + 64 * s + 16 * j;
          w0[r][j] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), flip));
          w1[r][j] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 64), flip));
        }
      for (int t = 0; t < T; ++t) {
        const int8x16_t a0 = bcast4(act + t * act_stride + 4 * s), a1 = bcast4(act + t * act_stride + 4 * s + 4);
        for (int r = 0; r < R; ++r)
          for (int j = 0; j < 4; ++j) {
            int16x8_t pl = vmull_s8(vget_low_s8(w0[r][j]), vget_low_s8(a0));
            pl = vmlal_s8(pl, vget_low_s8(w1[r][j]), vget_low_s8(a1));
            int16x8_t ph = vmull_high_s8(w0[r][j], a0);
            ph = vmlal_high_s8(ph, w1[r][j], a1);
            lo[r][t][j] = vpadalq_s16(lo[r][t][j], pl);
            hi[r][t][j] = vpadalq_s16(hi[r][t][j], ph);
          }
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < 4; ++j)
          vst1q_s32(out + t * out_stride + kW8A8Rows * r + 4 * j, vpaddq_s32(lo[r][t][j], hi[r][t][j]));
  }
};

}  // namespace

void w8a8_dots(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
               const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  w8a8_dots_tiled<Level>(K, w, n_groups, act, act_stride, sums, n_tok, out, out_stride);
}

}  // namespace mce::neon
