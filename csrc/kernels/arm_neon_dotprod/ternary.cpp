// Ternary dots (TernaryDotsFn in kernels/dispatch.h; layout "t2" in
// kernels/ternary_layout.h) with SDOT. A chunk is two 16-byte vectors; quarter
// i of the first lines up with activations 128c + 32i + 0..15, of the second
// with 128c + 32i + 16..31, and SDOT sums four code x activation products per
// int32 lane. Codes are 2-bit fields (3 never occurs in a valid file but is
// multiplied as 3, like the reference); the quantizer is the baseline NEON
// one (arm_neon/ternary.cpp).
//
// Decode (one token) must keep up with memory, so it spends as few
// instructions per code vector as it can: the masks 0x03, 0x0C, 0x30 and a
// shift by 6 give q0, 4 q1, 16 q2 and q3 (all below 128, so still signed
// bytes) with one instruction each instead of a shift and a mask; 4 q1 and
// 16 q2 go to their own accumulators, shifted back (exactly) once per row.
// Lanes stay exact for K < 2^22 (a chunk adds eight products of at most
// 16 * 3 * 128 to a lane of the x16 accumulator).
// Four rows per pass share the eight activation vectors of a chunk.
//
// Prefill: each row's chunk is unpacked once to plain codes (eight vectors,
// shift and mask) and used for four tokens, two rows at a time so the
// activation loads are shared; tokens four at a time over 4 KiB blocks of
// the inputs, so their activations stay in L1 while every row passes.
#include <arm_neon.h>

#include <algorithm>

#include "kernels/ternary_driver.h"
#include "kernels/arm_neon/neon_kernels.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "arm_neon_dotprod/ must be compiled with -march=armv8.2-a+dotprod"
#endif

namespace mce::neon_dotprod {
namespace {

inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// One token, R rows (row r at w + r * row_bytes): out[r].
template <int R>
inline void dots_decode(int64_t nc, const uint8_t* w, size_t row_bytes, const int8_t* a, int32_t* out) {
  const uint8x16_t m03 = vdupq_n_u8(0x03), m0c = vdupq_n_u8(0x0C), m30 = vdupq_n_u8(0x30);
  int32x4_t acc1[R], acc4[R], acc16[R];  // x1 (q0, q3), x4 (q1), x16 (q2)
  for (int r = 0; r < R; ++r) acc1[r] = acc4[r] = acc16[r] = vdupq_n_s32(0);
  for (int64_t c = 0; c < nc; ++c) {
    int8x16_t x[8];  // x[2 * i + h]: quarter i, half h
    for (int j = 0; j < 8; ++j) x[j] = vld1q_s8(a + 128 * c + 16 * j);
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * row_bytes + 32 * c;
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t v = vld1q_u8(p + 16 * h);
        acc1[r] = vdotq_s32(acc1[r], s8(vandq_u8(v, m03)), x[h]);
        acc4[r] = vdotq_s32(acc4[r], s8(vandq_u8(v, m0c)), x[2 + h]);
        acc16[r] = vdotq_s32(acc16[r], s8(vandq_u8(v, m30)), x[4 + h]);
        acc1[r] = vdotq_s32(acc1[r], s8(vshrq_n_u8(v, 6)), x[6 + h]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = vaddvq_s32(vsraq_n_s32(vsraq_n_s32(acc1[r], acc4[r], 2), acc16[r], 4));
}

// R rows x T tokens over chunks [c0, c1): out[t * out_stride + r] = (add ?
// out : 0) + dot.
template <int R, int T>
inline void dots_tile(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, const int8_t* act,
                      size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
  const uint8x16_t m = vdupq_n_u8(3);
  int32x4_t acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_s32(0);
  for (int64_t c = c0; c < c1; ++c) {
    int8x16_t q[R][8];
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t v = vld1q_u8(w + r * row_bytes + 32 * c + 16 * h);
        q[r][h] = s8(vandq_u8(v, m));
        q[r][2 + h] = s8(vandq_u8(vshrq_n_u8(v, 2), m));
        q[r][4 + h] = s8(vandq_u8(vshrq_n_u8(v, 4), m));
        q[r][6 + h] = s8(vshrq_n_u8(v, 6));
      }
    for (int t = 0; t < T; ++t) {
      const int8_t* a = act + t * act_stride + 128 * c;
      for (int j = 0; j < 8; ++j) {
        const int8x16_t x = vld1q_s8(a + 16 * j);
        for (int r = 0; r < R; ++r) acc[r][t] = vdotq_s32(acc[r][t], q[r][j], x);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      const int32_t s = vaddvq_s32(acc[r][t]);
      int32_t& o = out[t * out_stride + r];
      o = add ? o + s : s;
    }
}

// The level's tiles for kernels/ternary_driver.h.
struct Level {
  template <int R>
  static void decode(int64_t nc, const uint8_t* w, size_t row_bytes, const int8_t* a, int32_t* out) {
    dots_decode<R>(nc, w, row_bytes, a, out);
  }
  template <int T>
  static void rows(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act,
                   size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
    int r = 0;
    for (; r + 2 <= n_rows; r += 2)
      dots_tile<2, T>(c0, c1, w + r * row_bytes, row_bytes, act, act_stride, out + r, out_stride, add);
    if (r < n_rows) dots_tile<1, T>(c0, c1, w + r * row_bytes, row_bytes, act, act_stride, out + r, out_stride, add);
  }
};

}  // namespace

void ternary_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act, size_t act_stride,
                  int n_tok, int32_t* out, int64_t out_stride) {
  ternary_dots_tiled<Level>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::neon_dotprod
