#include "kernels/lut_layout.h"

#include <cstring>

#include "kernels/packed_layout.h"
#include "quant/blocks.h"
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

// Every slot of a step's vectors: slots[v][r][2 * lane + half] = lut_slot(...).
using SlotTable = LutSlot[4][kLutTileRows][4];
void slot_table(int bits, SlotTable& slots) {
  const LutStepVector* vecs = lut_step_vectors(bits);
  for (int v = 0; v < bits; ++v)
    for (int r = 0; r < kLutTileRows; ++r)
      for (int e = 0; e < 4; ++e) slots[v][r][e] = lut_slot(vecs[v], r, e / 2, e % 2);
}

// The G codes of row r of one tile group (`steps`: its step vectors), read
// back from their planes. spread[t] has bit i of the pattern t in byte i, so
// one OR places a plane's bits of a chunk's 4 codes.
void group_row_codes(const LowBitFormat& f, const uint8_t* steps, const SlotTable& slots, int r, uint8_t* q) {
  static const uint32_t* spread = [] {
    static uint32_t t[16];
    for (uint32_t p = 0; p < 16; ++p)
      for (int i = 0; i < 4; ++i) t[p] |= ((p >> i) & 1u) << (8 * i);
    return t;
  }();
  std::memset(q, 0, size_t(f.group));
  for (int64_t s = 0; s < f.group / kLutStep; ++s)
    for (int v = 0; v < f.bits; ++v) {
      const uint8_t* vec = steps + (size_t(s) * size_t(f.bits) + size_t(v)) * 32;
      for (const LutSlot& slot : slots[v][r]) {
        uint8_t* c = q + s * kLutStep + slot.chunk * kLutChunk;
        uint32_t word;
        std::memcpy(&word, c, 4);
        word |= spread[(vec[slot.byte] >> slot.shift) & 15] << slot.plane;
        std::memcpy(c, &word, 4);
      }
    }
}

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
  for (int64_t g = 0; g < K / f.group; ++g) {
    const float d = fp16_to_f32(scale[g]);
    const float m = min ? fp16_to_f32(min[g]) : 0.0f;
    for (int64_t k = g * f.group; k < (g + 1) * f.group; ++k) out[k] = lowbit_weight(f, lowbit_code(codes, f.bits, k), d, m);
  }
}

void lut_pack_tile(const LowBitFormat& f, int64_t K, const uint8_t* codes, size_t code_row_bytes,
                   const uint16_t* scale, const uint16_t* min, int64_t scale_stride, int n_rows, uint8_t* dst) {
  std::memset(dst, 0, lut_tile_bytes(f, K));
  const int64_t groups = K / f.group;
  SlotTable slots;
  slot_table(f.bits, slots);
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
  SlotTable slots;
  slot_table(f.bits, slots);
  const size_t group_bytes = lut_tile_bytes(f, f.group);
  const size_t block_bytes = packed_block_bytes(PackedKind::Q4_1x8);
  const int64_t nb = K / kPackBlock;
  const float center = float((1 << f.bits) - 1) * 0.5f;
  for (int64_t g = 0; g < K / f.group; ++g) {
    const uint8_t* grp = tile + size_t(g) * group_bytes;
    const uint16_t* d = reinterpret_cast<const uint16_t*>(grp);
    const uint16_t* m = f.has_min ? reinterpret_cast<const uint16_t*>(grp + 32) : nullptr;
    uint8_t codes[kLutTileRows][128];
    for (int r = 0; r < kLutTileRows; ++r) group_row_codes(f, grp + (f.has_min ? 64 : 32), slots, r, codes[r]);
    // Each 32-block of the group as eight GGUF Q4_1 blocks (rows 8*half..),
    // interleaved into its Q4_1x8 block by pack_group.
    for (int64_t j = 0; j < f.group / kPackBlock; ++j)
      for (int half = 0; half < 2; ++half) {
        Q4_1Block rows[kPackRows];
        for (int r = 0; r < kPackRows; ++r) {
          const int row = kPackRows * half + r;
          const uint8_t* c = codes[row] + kPackBlock * j;
          rows[r].d = d[row];
          rows[r].m = m ? m[row] : f32_to_fp16(-(fp16_to_f32(d[row]) * center));
          for (int i = 0; i < kPackBlock / 2; ++i) rows[r].qs[i] = uint8_t(c[i] | (c[kPackBlock / 2 + i] << 4));
        }
        const int64_t b = g * (f.group / kPackBlock) + j;
        pack_group(PackedKind::Q4_1x8, reinterpret_cast<const uint8_t*>(rows), sizeof(Q4_1Block), 1,
                   dst + (size_t(half) * size_t(nb) + size_t(b)) * block_bytes);
      }
  }
}

void lut_decode_row(const LowBitFormat& f, int64_t K, const uint8_t* tile, int r, int64_t k0, int64_t k1, float* out) {
  const size_t group_bytes = lut_tile_bytes(f, f.group);
  SlotTable slots;
  slot_table(f.bits, slots);
  for (int64_t g = k0 / f.group; g < k1 / f.group; ++g) {
    const uint8_t* grp = tile + size_t(g) * group_bytes;
    const float d = fp16_to_f32(reinterpret_cast<const uint16_t*>(grp)[r]);
    const float m = f.has_min ? fp16_to_f32(reinterpret_cast<const uint16_t*>(grp + 32)[r]) : 0.0f;
    uint8_t q[128];
    group_row_codes(f, grp + (f.has_min ? 64 : 32), slots, r, q);
    float* y = out + (g * f.group - k0);
    for (int i = 0; i < f.group; ++i) y[i] = lowbit_weight(f, q[i], d, m);
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
