#include "kernels/lut_layout.h"

#include <cstring>

#include "quant/fp16.h"

namespace mce {

namespace {

// Bit pattern of plane `plane` over the 4 codes of chunk `chunk` (bit r =
// bit `plane` of code 4*chunk + r).
int plane_pattern(const uint8_t* row, int bits, int64_t chunk, int plane) {
  int t = 0;
  for (int r = 0; r < kLutChunk; ++r) t |= ((lowbit_code(row, bits, kLutChunk * chunk + r) >> plane) & 1) << r;
  return t;
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

void lut_pack_tile(const LowBitFormat& f, int64_t K, const uint8_t* codes, size_t code_row_bytes,
                   const uint16_t* scale, const uint16_t* min, int64_t scale_stride, int n_rows, uint8_t* dst) {
  std::memset(dst, 0, lut_tile_bytes(f, K));
  const int64_t groups = K / f.group;
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
    const LutStepVector* vecs = lut_step_vectors(f.bits);
    for (int64_t s = 0; s < f.group / kLutStep; ++s) {
      const int64_t c = (g * f.group + s * kLutStep) / kLutChunk;  // first chunk of the step
      for (int v = 0; v < f.bits; ++v, out += 32)
        for (int r = 0; r < n_rows; ++r)
          for (int lane = 0; lane < 2; ++lane)
            for (int half = 0; half < 2; ++half) {
              const LutSlot slot = lut_slot(vecs[v], r, lane, half);
              out[slot.byte] |= uint8_t(
                  plane_pattern(codes + size_t(r) * code_row_bytes, f.bits, c + slot.chunk, slot.plane) << slot.shift);
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
