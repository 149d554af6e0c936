#include "kernels/packed_layout.h"

#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce {

PackedKind packed_kind_for(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return PackedKind::Q4_0x8;
    case GgmlType::Q4_1: return PackedKind::Q4_1x8;
    case GgmlType::Q8_0: return PackedKind::Q8_0x8;
    case GgmlType::F16: return PackedKind::F16x16;
    case GgmlType::BF16: return PackedKind::BF16x16;
    default: return PackedKind::None;
  }
}

size_t packed_block_bytes(PackedKind k) {
  switch (k) {
    case PackedKind::Q4_0x8: return 16 + 128;
    case PackedKind::Q4_1x8: return 32 + 128;
    case PackedKind::Q8_0x8: return 16 + 256;
    case PackedKind::F16x16:
    case PackedKind::BF16x16:
    case PackedKind::LutTile:
    case PackedKind::None: break;
  }
  return 0;
}

int packed_group_rows(PackedKind k) { return is_panel16(k) || k == PackedKind::LutTile ? kPanel16Rows : kPackRows; }

size_t packed_group_bytes(PackedKind k, int64_t cols) {
  if (k == PackedKind::None || cols <= 0) return 0;
  if (is_panel16(k)) return size_t(cols) * kPanel16Rows * sizeof(uint16_t);
  if (cols % kPackBlock != 0) return 0;
  return size_t(cols / kPackBlock) * packed_block_bytes(k);
}

void pack_panel16(const uint8_t* rows, size_t row_bytes, int64_t cols, uint16_t* dst) {
  for (int r = 0; r < kPanel16Rows; ++r) {
    const uint8_t* row = rows + size_t(r) * row_bytes;
    for (int64_t k = 0; k < cols; ++k) std::memcpy(dst + size_t(k) * kPanel16Rows + r, row + 2 * k, 2);
  }
}

void unpack_panel16_row(const uint16_t* panel, int64_t cols, int r, uint16_t* dst) {
  for (int64_t k = 0; k < cols; ++k) dst[k] = panel[size_t(k) * kPanel16Rows + r];
}

void pack_group(PackedKind k, const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* dst) {
  const size_t bb = packed_block_bytes(k);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = dst + size_t(b) * bb;
    uint16_t* d = reinterpret_cast<uint16_t*>(out);
    for (int r = 0; r < kPackRows; ++r) {
      const uint8_t* row = rows + size_t(r) * row_bytes;
      if (k == PackedKind::Q8_0x8) {
        const Q8_0Block& blk = reinterpret_cast<const Q8_0Block*>(row)[b];
        d[r] = blk.d;
        for (int s = 0; s < 8; ++s) std::memcpy(out + 16 + 32 * s + 4 * r, blk.qs + 4 * s, 4);
      } else if (k == PackedKind::Q4_0x8) {
        const Q4_0Block& blk = reinterpret_cast<const Q4_0Block*>(row)[b];
        d[r] = blk.d;
        for (int j = 0; j < 4; ++j) std::memcpy(out + 16 + 32 * j + 4 * r, blk.qs + 4 * j, 4);
      } else {
        const Q4_1Block& blk = reinterpret_cast<const Q4_1Block*>(row)[b];
        d[r] = blk.d;
        d[8 + r] = blk.m;
        for (int j = 0; j < 4; ++j) std::memcpy(out + 32 + 32 * j + 4 * r, blk.qs + 4 * j, 4);
      }
    }
  }
}

// Same arithmetic as quant/dequantize.cpp's decoders: q * d (Q8_0), (q - 8) * d
// (Q4_0), q * d + m (Q4_1), each in f32.
void unpack_group_row(PackedKind k, const uint8_t* group, int64_t nb, int r, float* dst) {
  const size_t bb = packed_block_bytes(k);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + size_t(b) * bb;
    const uint16_t* d16 = reinterpret_cast<const uint16_t*>(blk);
    const float d = fp16_to_f32(d16[r]);
    float* y = dst + b * kPackBlock;
    if (k == PackedKind::Q8_0x8) {
      const int8_t* qs = reinterpret_cast<const int8_t*>(blk + 16);
      for (int s = 0; s < 8; ++s)
        for (int i = 0; i < 4; ++i) y[4 * s + i] = float(qs[32 * s + 4 * r + i]) * d;
      continue;
    }
    const bool has_min = k == PackedKind::Q4_1x8;
    const uint8_t* qs = blk + (has_min ? 32 : 16);
    const float m = has_min ? fp16_to_f32(d16[8 + r]) : 0.0f;
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 4; ++i) {
        const uint8_t byte = qs[32 * j + 4 * r + i];
        const int lo = byte & 0x0F, hi = byte >> 4;
        if (has_min) {
          y[4 * j + i] = float(lo) * d + m;
          y[16 + 4 * j + i] = float(hi) * d + m;
        } else {
          y[4 * j + i] = float(lo - 8) * d;
          y[16 + 4 * j + i] = float(hi - 8) * d;
        }
      }
    }
  }
}

}  // namespace mce
