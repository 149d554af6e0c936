// W8A8 dots (W8A8DotsFn in kernels/dispatch.h; layout in
// kernels/w8a8_layout.h) with SDOT.
//
// A 64-byte step is four 16-byte quarters, quarter j holding rows 4j..4j+3
// with 4 inputs each: exactly what SDOT by element multiplies against one
// 4-byte lane of an activation vector, leaving the quarter's 4 rows' sums in
// its 4 int32 lanes. The codes' top bit is flipped back to the signed weights
// (one EOR per vector, shared by the tile's tokens; SDOT takes signed bytes).
// 16 activation bytes (4 steps) are loaded at once and used lane by lane.
//
// Prefill: 1 group x 4 tokens (16 accumulators, 4 weight vectors, 4
// activation vectors). Decode: 2 groups per pass (8 accumulators).
#include <arm_neon.h>

#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/w8a8_driver.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "arm_neon_dotprod/ must be compiled with -march=armv8.2-a+dotprod"
#endif

namespace mce::neon_dotprod {
namespace {

struct Level {
  static constexpr int kDecodeGroups = 2, kGroups = 1, kTokens = 4;

  template <int R, int T, int L>
  static inline void step(const uint8_t* w, size_t gb, const int8x16_t* a, int32x4_t (&acc)[R][T][4]) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < 4; ++j) {
        const int8x16_t wv = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + r * gb + 64 * L + 16 * j), flip));
        for (int t = 0; t < T; ++t) acc[r][t][j] = vdotq_laneq_s32(acc[r][t][j], wv, a[t], L);
      }
  }

  // steps is a multiple of 4 (inputs padded to 16).
  template <int R, int T>
  static void tile(int64_t steps, const uint8_t* w, size_t gb, const int8_t* act, size_t act_stride,
                   const int32_t* sums, int32_t* out, int64_t out_stride) {
    int32x4_t acc[R][T][4];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < 4; ++j) acc[r][t][j] = vdupq_n_s32(0);
    for (int64_t s = 0; s < steps; s += 4) {
      int8x16_t a[T];
      for (int t = 0; t < T; ++t) a[t] = vld1q_s8(act + t * act_stride + 4 * s);
      const uint8_t* p = w + 64 * s;
      if constexpr (T == 1) {
        for (int r = 0; r < R; ++r) __builtin_prefetch(p + r * gb + 1024);
      }
      step<R, T, 0>(p, gb, a, acc);
      step<R, T, 1>(p, gb, a, acc);
      step<R, T, 2>(p, gb, a, acc);
      step<R, T, 3>(p, gb, a, acc);
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < 4; ++j) vst1q_s32(out + t * out_stride + kW8A8Rows * r + 4 * j, acc[r][t][j]);
  }
};

}  // namespace

void w8a8_dots(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
               const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride) {
  w8a8_dots_tiled<Level>(K, w, n_groups, act, act_stride, sums, n_tok, out, out_stride);
}

}  // namespace mce::neon_dotprod
