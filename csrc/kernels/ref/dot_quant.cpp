// Quantized dot products (weight block format x activation block format), as
// ggml's generic vec_dot_*: exact integer dot per block (or sub-block), then
// one f32 multiply-add with the product of the two scales.
#include "kernels/ref/ref_kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace mce::ref {

float vec_dot_q8_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q8_0Block* w = static_cast<const Q8_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK8_0; ++j) isum += w[i].qs[j] * x[i].qs[j];
    sum += static_cast<float>(isum) * (fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d));
  }
  return sum;
}

float vec_dot_q4_0_q8_0(int64_t n, const void* vw, const void* vx) {
  const Q4_0Block* w = static_cast<const Q4_0Block*>(vw);
  const Q8_0Block* x = static_cast<const Q8_0Block*>(vx);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    int lo = 0, hi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      lo += ((w[i].qs[j] & 0xF) - 8) * x[i].qs[j];
      hi += ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + kQK4_0 / 2];
    }
    sum += static_cast<float>(lo + hi) * (fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d));
  }
  return sum;
}

// sum_j (d_w q_j + m_w)(d_x r_j) = d_w d_x sum q_j r_j + m_w (d_x sum r_j), the
// last factor being the activation block's precomputed s.
float vec_dot_q4_1_q8_1(int64_t n, const void* vw, const void* vx) {
  const Q4_1Block* w = static_cast<const Q4_1Block*>(vw);
  const Q8_1Block* x = static_cast<const Q8_1Block*>(vx);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    int lo = 0, hi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      lo += (w[i].qs[j] & 0xF) * x[i].qs[j];
      hi += (w[i].qs[j] >> 4) * x[i].qs[j + kQK4_0 / 2];
    }
    sum += static_cast<float>(lo + hi) * (fp16_to_f32(w[i].d) * fp16_to_f32(x[i].d)) +
           fp16_to_f32(w[i].m) * fp16_to_f32(x[i].s);
  }
  return sum;
}

// x = d*sc_j*q - dmin*m_j per sub-block j; the min term only needs the sum of
// the activation quants of the sub-block, which Q8_K's bsums provide.
float vec_dot_q4_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q4_KBlock* w = static_cast<const Q4_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int sumi = 0, summ = 0;
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    for (int c = 0; c < 4; ++c, q4 += 32, q8 += 64) {
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += (q4[l] & 0xF) * q8[l];
        hi += (q4[l] >> 4) * q8[l + 32];
      }
      uint8_t sc, m;
      q4_k_scale_min(2 * c, w[i].scales, &sc, &m);
      sumi += sc * lo;
      summ += m * (x[i].bsums[4 * c] + x[i].bsums[4 * c + 1]);
      q4_k_scale_min(2 * c + 1, w[i].scales, &sc, &m);
      sumi += sc * hi;
      summ += m * (x[i].bsums[4 * c + 2] + x[i].bsums[4 * c + 3]);
    }
    const float d = fp16_to_f32(w[i].d) * x[i].d;
    const float dmin = fp16_to_f32(w[i].dmin) * x[i].d;
    sum += d * static_cast<float>(sumi) - dmin * static_cast<float>(summ);
  }
  return sum;
}

float vec_dot_q6_K_q8_K(int64_t n, const void* vw, const void* vx) {
  const Q6_KBlock* w = static_cast<const Q6_KBlock*>(vw);
  const Q8_KBlock* x = static_cast<const Q8_KBlock*>(vx);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];  // the 256 six-bit quants minus 32, in element order
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[i].ql + 64 * h;
      const uint8_t* qh = w[i].qh + 32 * h;
      int8_t* o = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        o[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int sumi = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      int isum = 0;
      for (int l = 0; l < 16; ++l) isum += q[16 * g + l] * x[i].qs[16 * g + l];
      sumi += w[i].scales[g] * isum;
    }
    sum += fp16_to_f32(w[i].d) * x[i].d * static_cast<float>(sumi);
  }
  return sum;
}

}  // namespace mce::ref
