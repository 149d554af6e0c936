// Ternary kernels (TernaryQuantizeFn / TernaryDotsFn in kernels/dispatch.h;
// layout "t2" in kernels/ternary_layout.h) for baseline ARMv8.0 Advanced
// SIMD, which has no byte dot product (arm_neon_dotprod/ternary.cpp has the
// SDOT one).
//
// Dots: a 32-byte chunk is two 16-byte vectors; quarter i of the first (a
// byte shift by 2i and a mask) lines up with activations 128c + 32i + 0..15,
// of the second with 128c + 32i + 16..31. Codes (2-bit fields, so at most 3,
// which never occurs in a valid file but is multiplied as 3, like the
// reference) fit a signed byte, so SMLAL / SMLAL2 multiply them by the int8
// activations into int16 lanes. Those overflow if never widened (bitnet.cpp
// hit exactly that, microsoft/BitNet#411): a chunk adds 16 products of at
// most 3 * 128 to a lane, so after 4 chunks (24576) SADALP folds the int16
// lanes into int32.
//
// Decode (one token): four rows per pass share the eight activation vectors
// of a chunk. Prefill: each row's chunk is unpacked once (eight vectors) and
// used for four tokens; tokens four at a time over 4 KiB blocks of the
// inputs, so their activations stay in L1 while every row passes.
//
// Quantize: the reference's f32 operations (one multiply per element; this
// file is built with -ffp-contract=off) and its rounding, which FCVTNS
// (vcvtnq_s32_f32) does as one instruction: nearest, ties to even.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "kernels/ternary_driver.h"
#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/arm_neon/neon_util.h"
#include "quant/quantize_act.h"

namespace mce::neon {
namespace {

// The eight code vectors of a chunk: q[2 * i + h] is quarter i of half h.
inline void unpack_chunk(const uint8_t* p, int8x16_t* q) {
  const uint8x16_t m = vdupq_n_u8(3);
  for (int h = 0; h < 2; ++h) {
    const uint8x16_t v = vld1q_u8(p + 16 * h);
    q[h] = vreinterpretq_s8_u8(vandq_u8(v, m));
    q[2 + h] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m));
    q[4 + h] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m));
    q[6 + h] = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
  }
}

// acc += the chunk's products (q as from unpack_chunk; x the matching eight
// activation vectors), 16 per lane.
inline int16x8_t chunk_mlal(int16x8_t acc, const int8x16_t* q, const int8x16_t* x) {
  for (int j = 0; j < 8; ++j) {
    acc = vmlal_s8(acc, vget_low_s8(q[j]), vget_low_s8(x[j]));
    acc = vmlal_high_s8(acc, q[j], x[j]);
  }
  return acc;
}

// The eight activation vectors of chunk c, in unpack_chunk's order.
inline void load_act(const int8_t* a, int8x16_t* x) {
  for (int j = 0; j < 8; ++j) x[j] = vld1q_s8(a + 16 * j);  // 32i + 16h = 16 (2i + h)
}

// R rows x T tokens over chunks [c0, c1): out[t * out_stride + r] = (add ?
// out : 0) + dot. Chunks in blocks of 4 (the int16 bound above).
template <int R, int T>
inline void dots_tile(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, const int8_t* act,
                      size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
  int32x4_t acc32[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc32[r][t] = vdupq_n_s32(0);
  for (int64_t b0 = c0; b0 < c1; b0 += 4) {
    const int64_t b1 = std::min(c1, b0 + 4);
    int16x8_t acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_s16(0);
    for (int64_t c = b0; c < b1; ++c) {
      if (T == 1) {
        // Decode: the activations once per chunk, the rows' codes one row at a time.
        int8x16_t x[8];
        load_act(act + 128 * c, x);
        for (int r = 0; r < R; ++r) {
          int8x16_t q[8];
          unpack_chunk(w + r * row_bytes + 32 * c, q);
          acc[r][0] = chunk_mlal(acc[r][0], q, x);
        }
      } else {
        for (int r = 0; r < R; ++r) {
          int8x16_t q[8];
          unpack_chunk(w + r * row_bytes + 32 * c, q);
          for (int t = 0; t < T; ++t) {
            int8x16_t x[8];
            load_act(act + t * act_stride + 128 * c, x);
            acc[r][t] = chunk_mlal(acc[r][t], q, x);
          }
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc32[r][t] = vpadalq_s16(acc32[r][t], acc[r][t]);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      const int32_t s = vaddvq_s32(acc32[r][t]);
      int32_t& o = out[t * out_stride + r];
      o = add ? o + s : s;
    }
}

// The level's tiles for kernels/ternary_driver.h.
struct Level {
  template <int R>
  static void decode(int64_t nc, const uint8_t* w, size_t row_bytes, const int8_t* a, int32_t* out) {
    dots_tile<R, 1>(0, nc, w, row_bytes, a, 0, out, 0, false);
  }
  template <int T>
  static void rows(int64_t c0, int64_t c1, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act,
                   size_t act_stride, int32_t* out, int64_t out_stride, bool add) {
    for (int r = 0; r < n_rows; ++r)
      dots_tile<1, T>(c0, c1, w + r * row_bytes, row_bytes, act, act_stride, out + r, out_stride, add);
  }
};

}  // namespace

TernaryActivation ternary_quantize(const float* x, int64_t K, int8_t* a) {
  const int64_t K16 = K / 16 * 16;
  float32x4_t m = vdupq_n_f32(0.0f);
  // FMAXNM returns the number when one operand is NaN: a NaN |x| is skipped,
  // as the reference's std::max skips it.
  for (int64_t k = 0; k < K16; k += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + k)));
  float amax = vmaxnmvq_f32(m);
  for (int64_t k = K16; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  TernaryActivation res;
  res.inv = 127.0f / std::max(amax, 1e-5f);
  const int32x4_t lo = vdupq_n_s32(-128), hi = vdupq_n_s32(127);
  int32x4_t sum = vdupq_n_s32(0);
  for (int64_t k = 0; k < K16; k += 16) {
    int32x4_t q[4];
    for (int j = 0; j < 4; ++j) {
      // |x * inv| <= 127 up to one rounding, so the clamp is only the
      // reference's guard (and keeps the sum equal to the stored bytes').
      q[j] = vminq_s32(vmaxq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k + 4 * j), res.inv)), lo), hi);
      sum = vaddq_s32(sum, q[j]);
    }
    vst1q_s8(a + k, neon_util::narrow_i32x16(q[0], q[1], q[2], q[3]));
  }
  res.sum = vaddvq_s32(sum);
  ternary_quantize_tail(x, K16, K, res.inv, a, &res.sum);
  return res;
}

void ternary_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act, size_t act_stride,
                  int n_tok, int32_t* out, int64_t out_stride) {
  ternary_dots_tiled<Level>(K, w, row_bytes, n_rows, act, act_stride, n_tok, out, out_stride);
}

}  // namespace mce::neon
