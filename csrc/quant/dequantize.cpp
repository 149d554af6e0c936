// Reference decoders. Each follows the order of operations of ggml's
// dequantize_row_* / gguf-py's dequantize_blocks (e.g. Q4_K: (d*sc)*q - dmin*m
// with every product rounded to f32 separately), because the tests demand the
// same bits as gguf-py.
#include "quant/dequantize.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

// A fused multiply-add would round once where the format's reference rounds
// twice. GCC contracts a*b+c by default wherever FMA is part of the baseline
// ISA (aarch64), so switch contraction off for this file.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace mce {
namespace {

void dequant_f16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

void dequant_bf16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

void dequant_q8_0(const Q8_0Block* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK8_0) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequant_q4_0(const Q4_0Block* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK4_0) {
    const float d = fp16_to_f32(x[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0xF) - 8) * d;
      y[j + kQK4_0 / 2] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const Q4_1Block* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK4_0) {
    const float d = fp16_to_f32(x[i].d);
    const float m = fp16_to_f32(x[i].m);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0xF) * d + m;
      y[j + kQK4_0 / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q4_k(const Q4_KBlock* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const float dmin = fp16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int c = 0; c < 4; ++c, q += 32) {
      uint8_t sc, m;
      q4_k_scale_min(2 * c, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      q4_k_scale_min(2 * c + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q6_K: each 128-element half uses 64 ql bytes and 32 qh bytes; lane l of the
// half yields elements l, l+32, l+64, l+96 from the low/high nibbles of ql[l]
// and ql[l+32] and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[l].
void dequant_q6_k(const Q6_KBlock* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int g = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = (d * sc[g + 0]) * static_cast<float>(q1);
        y[l + 32] = (d * sc[g + 2]) * static_cast<float>(q2);
        y[l + 64] = (d * sc[g + 4]) * static_cast<float>(q3);
        y[l + 96] = (d * sc[g + 6]) * static_cast<float>(q4);
      }
    }
  }
}

std::string type_label(GgmlType t) {
  const TypeGeometry g = type_geometry(static_cast<uint32_t>(t));
  return g.name ? std::string(g.name) : "type id " + std::to_string(static_cast<uint32_t>(t));
}

}  // namespace

bool can_dequantize(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q4_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  if (!can_dequantize(t)) {
    throw UnsupportedError("dequantize: tensor type " + type_label(t) + " is not supported");
  }
  const int64_t bs = type_geometry(static_cast<uint32_t>(t)).block_size;
  if (n < 0 || n % bs != 0) {
    throw ArgumentError("dequantize: " + std::to_string(n) + " elements is not a multiple of the " +
                        type_label(t) + " block size " + std::to_string(bs));
  }
  const int64_t nb = n / bs;
  switch (t) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case GgmlType::F16: dequant_f16(static_cast<const uint16_t*>(src), dst, n); break;
    case GgmlType::BF16: dequant_bf16(static_cast<const uint16_t*>(src), dst, n); break;
    case GgmlType::Q8_0: dequant_q8_0(static_cast<const Q8_0Block*>(src), dst, nb); break;
    case GgmlType::Q4_0: dequant_q4_0(static_cast<const Q4_0Block*>(src), dst, nb); break;
    case GgmlType::Q4_1: dequant_q4_1(static_cast<const Q4_1Block*>(src), dst, nb); break;
    case GgmlType::Q4_K: dequant_q4_k(static_cast<const Q4_KBlock*>(src), dst, nb); break;
    case GgmlType::Q6_K: dequant_q6_k(static_cast<const Q6_KBlock*>(src), dst, nb); break;
    default: break;
  }
}

}  // namespace mce
