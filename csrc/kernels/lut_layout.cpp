#include "kernels/lut_layout.h"

#include <cstring>

#include "kernels/packed_layout.h"
#include "quant/fp16.h"

namespace mce {

namespace {

// Plane masks of codes [k0, k0 + n) of a row in the file layout (n <= 128,
// k0 a multiple of 8): bit k of masks[plane] is bit `plane` of code k0 + k.
// Eight codes of b bits are exactly b bytes, read as one little-endian word;
// each code goes to a byte, and a multiply gathers bit `plane` of the eight
// bytes into one byte (the partial products never overlap, so no carries).
void plane_masks(const uint8_t* row, int bits, int64_t k0, int n, uint8_t masks[4][16]) {
  const uint64_t mask = (1u << bits) - 1;
  const uint8_t* p = row + k0 * bits / 8;
  for (int i = 0; i < n / 8; ++i, p += bits) {
    uint64_t w = 0, spread = 0;
    for (int j = 0; j < bits; ++j) w |= uint64_t(p[j]) << (8 * j);
    for (int j = 0; j < 8; ++j) spread |= ((w >> (j * bits)) & mask) << (8 * j);
    for (int plane = 0; plane < bits; ++plane)
      masks[plane][i] = uint8_t((((spread >> plane) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
  }
}

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace

const LutStepVector* lut_step_vectors(int bits) {
  static const LutStepVector kSteps[4][4] = {
      {{0, 0, false}},
      {{0, 0, true}, {0, 2, true}},
      {{0, 0, true}, {0, 2, true}, {2, 0, false}},
      {{0, 0, true}, {2, 0, true}, {0, 2, true}, {2, 2, true}},
  };
  return kSteps[bits - 1];
}

bool lowbit_format_valid(const LowBitFormat& f) {
  return f.bits >= 1 && f.bits <= 4 && (f.group == 32 || f.group == 64 || f.group == 128);
}

size_t lut_tile_bytes(const LowBitFormat& f, int64_t K) {
  const size_t groups = size_t(K / f.group);
  const size_t header = size_t(kLutTileRows) * 2 * (f.has_min ? 2 : 1);
  return groups * (header + size_t(f.group / kLutStep) * size_t(f.bits) * 32);
}

size_t lowbit_code_row_bytes(const LowBitFormat& f, int64_t K) { return size_t(K) * size_t(f.bits) / 8; }

int lowbit_code(const uint8_t* row, int bits, int64_t k) {
  const int64_t bit = k * bits;
  const uint8_t* p = row + bit / 8;
  const int shift = int(bit % 8);
  // A code spans two bytes only when it does not fit in the rest of the first.
  unsigned v = p[0] >> shift;
  if (shift + bits > 8) v |= unsigned(p[1]) << (8 - shift);
  return int(v & ((1u << bits) - 1));
}

void lowbit_dequantize_row(const LowBitFormat& f, int64_t K, const uint8_t* codes, const uint16_t* scale,
                           const uint16_t* min, float* out) {
  const float center = float((1 << f.bits) - 1) * 0.5f;
  for (int64_t g = 0; g < K / f.group; ++g) {
    const float d = fp16_to_f32(scale[g]);
    const float m = min ? fp16_to_f32(min[g]) : 0.0f;
    for (int64_t k = g * f.group; k < (g + 1) * f.group; ++k) {
      const float q = float(lowbit_code(codes, f.bits, k));
      out[k] = min ? q * d + m : d * (q - center);
    }
  }
}

void lut_pack_tile(const LowBitFormat& f, int64_t K, const uint8_t* codes, size_t code_row_bytes,
                   const uint16_t* scale, const uint16_t* min, int64_t scale_stride, int n_rows, uint8_t* dst) {
  std::memset(dst, 0, lut_tile_bytes(f, K));
  const int64_t groups = K / f.group;
  LutSlot slots[4][kLutTileRows][4];
  const LutStepVector* vecs = lut_step_vectors(f.bits);
  for (int v = 0; v < f.bits; ++v)
    for (int r = 0; r < kLutTileRows; ++r)
      for (int e = 0; e < 4; ++e) slots[v][r][e] = lut_slot(vecs[v], r, e / 2, e % 2);
  uint8_t* out = dst;
  for (int64_t g = 0; g < groups; ++g) {
    uint16_t* d = reinterpret_cast<uint16_t*>(out);
    for (int r = 0; r < n_rows; ++r) d[r] = scale[r * scale_stride + g];
    out += 32;
    if (f.has_min) {
      uint16_t* m = reinterpret_cast<uint16_t*>(out);
      for (int r = 0; r < n_rows; ++r) m[r] = min[r * scale_stride + g];
      out += 32;
    }
    // Four-code plane patterns of the group, then one pass over the slots of
    // each vector (lut_slot for every (row, lane, half) of the vector).
    uint8_t masks[kLutTileRows][4][16];
    for (int r = 0; r < n_rows; ++r) plane_masks(codes + size_t(r) * code_row_bytes, f.bits, g * f.group, f.group, masks[r]);
    for (int64_t s = 0; s < f.group / kLutStep; ++s) {
      for (int v = 0; v < f.bits; ++v, out += 32)
        for (int r = 0; r < n_rows; ++r)
          for (int e = 0; e < 4; ++e) {
            const LutSlot& slot = slots[v][r][e];
            const int chunk = int(s) * (kLutStep / kLutChunk) + slot.chunk;
            const int pattern = (masks[r][slot.plane][chunk / 2] >> (4 * (chunk % 2))) & 15;
            out[slot.byte] |= uint8_t(pattern << slot.shift);
          }
    }
  }
}

void lut_tile_to_q4_1x8(const LowBitFormat& f, int64_t K, const uint8_t* tile, uint8_t* dst) {
  // spread[t]: byte i = bit i of the 4-bit pattern t, so one OR places a
  // plane's bits of 4 consecutive codes.
  static const uint32_t* spread = [] {
    static uint32_t s[16];
    for (uint32_t t = 0; t < 16; ++t)
      for (int i = 0; i < 4; ++i) s[t] |= ((t >> i) & 1u) << (8 * i);
    return s;
  }();
  LutSlot slots[4][kLutTileRows][4];
  const LutStepVector* vecs = lut_step_vectors(f.bits);
  for (int v = 0; v < f.bits; ++v)
    for (int r = 0; r < kLutTileRows; ++r)
      for (int e = 0; e < 4; ++e) slots[v][r][e] = lut_slot(vecs[v], r, e / 2, e % 2);
  const size_t group_bytes = lut_tile_bytes(f, f.group);
  const size_t block_bytes = packed_block_bytes(PackedKind::Q4_1x8);
  const int64_t nb = K / 32;
  const float center = float((1 << f.bits) - 1) * 0.5f;
  for (int64_t g = 0; g < K / f.group; ++g) {
    const uint8_t* grp = tile + size_t(g) * group_bytes;
    const uint16_t* d = reinterpret_cast<const uint16_t*>(grp);
    const uint16_t* m = f.has_min ? reinterpret_cast<const uint16_t*>(grp + 32) : nullptr;
    const uint8_t* steps = grp + (f.has_min ? 64 : 32);
    uint8_t codes[kLutTileRows][128] = {};
    for (int64_t s = 0; s < f.group / kLutStep; ++s)
      for (int v = 0; v < f.bits; ++v) {
        const uint8_t* vec = steps + (size_t(s) * size_t(f.bits) + size_t(v)) * 32;
        for (int r = 0; r < kLutTileRows; ++r)
          for (int e = 0; e < 4; ++e) {
            const LutSlot& slot = slots[v][r][e];
            uint8_t* q = codes[r] + s * kLutStep + slot.chunk * kLutChunk;
            uint32_t word;
            std::memcpy(&word, q, 4);
            word |= spread[(vec[slot.byte] >> slot.shift) & 15] << slot.plane;
            std::memcpy(q, &word, 4);
          }
      }
    for (int half = 0; half < 2; ++half) {
      uint16_t dh[8], mh[8];
      for (int r = 0; r < 8; ++r) {
        const int row = 8 * half + r;
        dh[r] = d[row];
        mh[r] = m ? m[row] : f32_to_fp16(-(fp16_to_f32(d[row]) * center));
      }
      for (int64_t j = 0; j < f.group / 32; ++j) {
        uint8_t* blk = dst + (size_t(half) * size_t(nb) + size_t(g * (f.group / 32) + j)) * block_bytes;
        std::memcpy(blk, dh, 16);
        std::memcpy(blk + 16, mh, 16);
        uint8_t* qs = blk + 32;
        for (int vj = 0; vj < 4; ++vj)
          for (int r = 0; r < 8; ++r)
            for (int i = 0; i < 4; ++i) {
              const uint8_t* c = codes[8 * half + r] + 32 * j;
              qs[32 * vj + 4 * r + i] = uint8_t(c[4 * vj + i] | (c[16 + 4 * vj + i] << 4));
            }
      }
    }
  }
}

void lut_decode_row(const LowBitFormat& f, int64_t K, const uint8_t* tile, int r, int64_t k0, int64_t k1, float* out) {
  const size_t group_bytes = lut_tile_bytes(f, f.group);
  const float center = float((1 << f.bits) - 1) * 0.5f;
  for (int64_t g = k0 / f.group; g < k1 / f.group; ++g) {
    const uint8_t* grp = tile + size_t(g) * group_bytes;
    const float d = fp16_to_f32(reinterpret_cast<const uint16_t*>(grp)[r]);
    const float m = f.has_min ? fp16_to_f32(reinterpret_cast<const uint16_t*>(grp + 32)[r]) : 0.0f;
    const uint8_t* steps = grp + (f.has_min ? 64 : 32);
    // Reassemble each code from its planes, reading the layout back.
    int q[128] = {};
    const LutStepVector* vecs = lut_step_vectors(f.bits);
    for (int64_t s = 0; s < f.group / kLutStep; ++s)
      for (int v = 0; v < f.bits; ++v) {
        const uint8_t* vec = steps + (size_t(s) * size_t(f.bits) + size_t(v)) * 32;
        for (int lane = 0; lane < 2; ++lane)
          for (int half = 0; half < 2; ++half) {
            const LutSlot slot = lut_slot(vecs[v], r, lane, half);
            const int pattern = (vec[slot.byte] >> slot.shift) & 15;
            for (int i = 0; i < kLutChunk; ++i)
              q[s * kLutStep + slot.chunk * kLutChunk + i] |= ((pattern >> i) & 1) << slot.plane;
          }
      }
    float* y = out + (g * f.group - k0);
    for (int i = 0; i < f.group; ++i)
      y[i] = f.has_min ? float(q[i]) * d + m : d * (float(q[i]) - center);
  }
}

size_t lut_activation_bytes(const LowBitFormat& f, int64_t K) {
  return align64(size_t(K / kLutChunk) * 16) + 2 * align64(size_t(K / f.group) * sizeof(float));
}

LutActivation lut_activation_view(const LowBitFormat& f, int64_t K, uint8_t* buffer) {
  LutActivation a;
  a.tables = reinterpret_cast<int8_t*>(buffer);
  const size_t t = align64(size_t(K / kLutChunk) * 16), s = align64(size_t(K / f.group) * sizeof(float));
  a.half_sigma = reinterpret_cast<float*>(buffer + t);
  a.xsum = reinterpret_cast<float*>(buffer + t + s);
  return a;
}

}  // namespace mce
