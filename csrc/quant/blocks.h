// Byte layouts of the ggml block formats this runtime computes with, exactly as
// they sit in a GGUF file (ggml/src/ggml-common.h; gguf-py GGML_QUANT_SIZES).
// Scales are IEEE binary16 stored as raw uint16_t bits unless noted; convert
// with quant/fp16.h. Decoding rules live in quant/dequantize.cpp.
#pragma once
#include <cstdint>

namespace mce {

constexpr int kQK4_0 = 32;   // elements per Q4_0 / Q4_1 block
constexpr int kQK8_0 = 32;   // elements per Q8_0 / Q8_1 block
constexpr int kQK_K = 256;   // elements per K-quant super-block

// x = (q - 8) * d.  Byte j holds element j (low nibble) and j + 16 (high).
struct Q4_0Block {
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(Q4_0Block) == 18, "Q4_0 block is 18 bytes");

// x = q * d + m, nibble order as Q4_0.
struct Q4_1Block {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(Q4_1Block) == 20, "Q4_1 block is 20 bytes");

// x = q * d.
struct Q8_0Block {
  uint16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(Q8_0Block) == 34, "Q8_0 block is 34 bytes");

// Activation format for Q4_1: as Q8_0 plus s = d * sum(q) (binary16), which
// carries the weight-minimum term of the dot product.
struct Q8_1Block {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(Q8_1Block) == 36, "Q8_1 block is 36 bytes");

// Super-block of 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j] with 6-bit
// sc/m packed in `scales` (see q4_k_scale_min). qs: for each 64-element chunk c,
// 32 bytes whose low nibbles are sub-block 2c and high nibbles sub-block 2c+1.
struct Q4_KBlock {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(Q4_KBlock) == 144, "Q4_K block is 144 bytes");

// Super-block of 16 groups of 16: x = d * scales[g] * (q - 32), q 6-bit from
// 4 low bits in ql and 2 high bits in qh (layout in dequantize.cpp).
struct Q6_KBlock {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(Q6_KBlock) == 210, "Q6_K block is 210 bytes");

// Activation format for K-quants: f32 scale, and the sums of each group of 16
// quants so a kernel can apply per-group offsets (mins, the -32 of Q6_K) once
// per group instead of per element.
struct Q8_KBlock {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(Q8_KBlock) == 292, "Q8_K block is 292 bytes");

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block:
// j < 4 take the low 6 bits of bytes j and j+4; j >= 4 combine 4 bits of byte
// j+4 with the top 2 bits of bytes j-4 and j.
static inline void q4_k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// All eight scales and mins of a Q4_K super-block at once, 32 bits at a time
// (same rule as q4_k_scale_min; little-endian host): out bytes 0..7 = sc[0..7], 8..15 = m[0..7].
static inline void q4_k_unpack_scales(const uint8_t* s, uint8_t out[16]) {
  uint32_t a, b, c;
  __builtin_memcpy(&a, s, 4);
  __builtin_memcpy(&b, s + 4, 4);
  __builtin_memcpy(&c, s + 8, 4);
  const uint32_t w[4] = {
      a & 0x3f3f3f3fu,                                                // sc 0..3
      (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4),            // sc 4..7
      b & 0x3f3f3f3fu,                                                // m 0..3
      ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4),     // m 4..7
  };
  __builtin_memcpy(out, w, 16);
}

}  // namespace mce
