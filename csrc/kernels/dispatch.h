// The kernel table: one instance per ISA level, chosen once at start-up from
// the CPU's features (or forced by MINICPM_EDGE_ISA). Call sites never test the
// ISA; they call through the table. The weight type decides its dot product
// and the activation format through data (WeightKernel), not if-ladders.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/lut_layout.h"
#include "kernels/packed_layout.h"
#include "kernels/ref/ref_kernels.h"
#include "kernels/ternary_layout.h"
#include "kernels/ternary_lut_layout.h"
#include "kernels/w8a8_layout.h"
#include "quant/ggml_types.h"

namespace mce {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3, NeonDotprod = 4 };
const char* isa_name(Isa isa);

// Activation rows are converted once per matmul into the format the weight
// type's dot product consumes (as ggml's vec_dot_type):
//   F32, F16, BF16 -> F32 (no conversion);  Q4_0, Q8_0 -> Q8_0;
//   Q4_1 -> Q8_1;  Q4_K, Q6_K -> Q8_K.
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);
// dot(n, weight_row, activation_row_in_vec_dot_format) -> f32. n is a
// multiple of the weight type's block size (any n >= 0 for F32/F16/BF16).
// Integer parts of quantized dots are exact on every level; float parts are
// summed in an order that differs per level, so levels agree within
// 2 * eps_f32 * (L + 8) * sum_i |w_i x_i| (L: blocks per row, or n/8 + 8).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
// Decodes n elements (a multiple of the type's block size, unchecked) of one
// weight row to f32, bit for bit as the reference decoders of
// quant/dequantize.h on every level.
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);

// GEMM over one packed group of 8 weight rows (kernels/packed_layout.h) and
// n_tok activation rows in Q8_0 (act_stride bytes apart), with each block's
// sum of int8 quants in `sums` (sums_stride int32 apart per token; read by
// the Q4 kinds only): y[t * y_stride + r] = row r . token t, r < 8.
// Every level computes, per output and block in order, the exact integer dot
// s of the quants (Q4_0: with its offset of 8 removed), then
//   acc = fma(float(s), d_w * d_x, acc)           and for Q4_1 also
//   acc = fma(m_w, d_x * float(sum_x), acc),
// so all levels agree bit for bit. Against the GGUF-layout vec_dot kernels
// (which round d_w*d_x*s separately, and Q4_1's min term with Q8_1's binary16
// sum) they agree within the tolerance stated for vec_dot above.
using GemmX8Fn = void (*)(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride,
                          const int32_t* sums, int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride);

// f32 GEMM against a panel of 16 weight rows stored k-major (panel[k*16 + i]
// = row i, column k; rows past the matrix zero): for t < n_tok, i < 16,
//   y[t * ldy + i] (=, or += when accumulate) sum_k panel[k*16+i] * x[t*ldx+k]
// with the sum formed by one fma per k in order, so every level gives the
// same bits. Only the first n_rows (<= 16) outputs of a token are written.
using GemmPanelFn = void (*)(int64_t K, const float* panel, const float* x, int64_t ldx, int64_t n_tok, float* y,
                             int64_t ldy, int n_rows, bool accumulate);
constexpr int kPanelRows = 16;
static_assert(kPanelRows == kPanel16Rows, "16-bit packed groups are GEMM panels");

// GEMV against one k-major panel of 16 rows of 16-bit weights (F16x16 or
// BF16x16 in kernels/packed_layout.h; each value widens to f32 exactly) and
// one f32 activation row: y[i] = sum_k w(panel[k*16+i]) * x[k], i < 16.
// Every level forms four partial sums, s_j over the k with k % 4 == j by one
// fma per k in order, and returns (s_0 + s_1) + (s_2 + s_3), so all levels
// agree bit for bit. (Four chains, not one: a single chain would be bound by
// the fma latency, and decode must keep up with memory.)
using GemvPanel16Fn = void (*)(int64_t K, const uint16_t* panel, const float* x, float* y);

// Table-lookup GEMV for low-bit weights (kernels/lut_layout.h; T-MAC).
//
// LutBuildFn: one token's tables from K f32 inputs (K a multiple of group).
// For chunk j (inputs x0..x3 = x[4j..4j+3]) and pattern t (0..15), with
// s_r = +1 when bit r of t is set and -1 otherwise (sign flips are exact),
//   T[t] = (s0 x0 + s1 x1) + (s2 x2 + s3 x3),   A_j = (|x0| + |x1|) + (|x2| + |x3|).
// Per group g of inputs: a = max A_j over its chunks, half_sigma[g] =
// (a / 127) * 0.5, and tables[16j + t] = nearbyint(clamp(T[t] * (127 / a),
// -127, 127)) (all 0 when a is 0; a NaN product, which only infinite inputs
// cause, counts as -127): one int8 scale per group, as T-MAC's
// "int8 table quantization" (|T| <= A_j <= a, so nothing saturates).
// xsum[g] = T_j[15] (= the chunk's sum) added over the group's chunks in
// order, from 0. T[15 - t] = -T[t] exactly, so a level may compute half the
// entries and negate ("mirror consolidation") without changing a bit.
using LutBuildFn = void (*)(const float* x, int64_t K, int group, int8_t* tables, float* half_sigma, float* xsum);
// LutGemvFn: the 16 outputs of one tile against one token's tables. Per row
// and group, S = sum over the group's chunks j and planes i of 2^i *
// tables[16j + pattern_i] is an exact integer; then, from y = 0, group by
// group: y = fma(float(S), d * half_sigma[g], y) and, asymmetric only,
// y = fma(fma(d, (2^b - 1) / 2, m), xsum[g], y). Every level gives these bits.
// (Why it is the dot product: sum_k q_k x_k = (sum_i 2^i sum_j T_j[pattern_i]
// + (2^b - 1) sum_k x_k) / 2, see kernels/lut_layout.h.)
using LutGemvFn = void (*)(const LowBitFormat& f, int64_t K, const uint8_t* tile, const int8_t* tables,
                           const float* half_sigma, const float* xsum, float* y);

// Ternary weights (kernels/ternary_layout.h; BitNet b1.58).
// TernaryQuantizeFn: one token's K inputs to int8 as TernaryActivation
// states (BitLinear's per-token absmax); every level gives the same bytes for
// finite inputs (a NaN input quantizes to 0 or -128 depending on the level).
using TernaryQuantizeFn = TernaryActivation (*)(const float* x, int64_t K, int8_t* a);
// TernaryDotsFn: for n_rows rows of t2 codes (row r at w + r * row_bytes) and
// n_tok activation rows (token t at act + t * act_stride), K a multiple of
// 128: out[t * out_stride + r] = sum_k q_{r,k} a_{t,k}, the codes q in
// {0, 1, 2} unsigned (a code 3, which no valid file holds, counts as 3).
// Exact int32 on every level (|sum| <= 384 K).
using TernaryDotsFn = void (*)(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act,
                               size_t act_stride, int n_tok, int32_t* out, int64_t out_stride);

// Ternary "tl3" matrices (kernels/ternary_lut_layout.h), by table lookup.
// TernaryLutBuildFn: one token's tables from its K int8 activations
// (tl3_table_bytes(K) bytes; the arrangement is the level's own, read only by
// the same level's TernaryLutDotsFn).
using TernaryLutBuildFn = void (*)(const int8_t* a, int64_t K, uint8_t* tables);
// TernaryLutDotsFn: n_blocks blocks of 32 rows (block b at w + b *
// tl3_block_bytes(K)) against n_tok tokens' tables (token t at tables + t *
// table_stride): out[t * out_stride + r] = sum_k t_{r,k} a_{t,k} for every row
// r < 32 n_blocks, padded rows included. bias: tl3_row_bias of those rows (a
// level may use it, the reference does not need it). Exact int32 on every level.
using TernaryLutDotsFn = void (*)(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* bias,
                                  const uint8_t* tables, size_t table_stride, int n_tok, int32_t* out,
                                  int64_t out_stride);

// W8A8 (kernels/w8a8_layout.h; SmoothQuant): n_groups groups of 16 rows
// (group g at w + g * w8a8_group_bytes(K)) against n_tok int8 activation
// rows (token t at act + t * act_stride: w8a8_padded_cols(K) bytes, zero past
// K; sums[t] the sum of its bytes):
//   out[t * out_stride + 16 g + i] = sum_k w_{16g+i,k} a_{t,k}  (w = q - 128),
// rows past the matrix included. Exact int32 on every level for K <=
// kW8A8MaxCols and weights in [-127, 127] (the loader's checks).
using W8A8DotsFn = void (*)(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
                            const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride);
// Minifloat weights repacked to int8 (kernels/minifloat_layout.h: E2M1 and
// E2M3 elements, 40 bytes per 32 inputs) against Q8_0 activation rows: for
// r < n_rows, t < n_tok, out[t * out_stride + r] = row r (at w + r *
// row_bytes) . token t (at act + t * act_stride), formed as
// kernels/mf8_driver.h states (exact int32 per 16 inputs, then a fixed
// sequence of f32 fmas), so every level gives the reference's bits.
using Mf8DotsFn = void (*)(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act,
                           size_t act_stride, int n_tok, float* out, int64_t out_stride);

struct WeightKernel {
  GgmlType act_type = GgmlType::F32;   // F32, Q8_0, Q8_1 or Q8_K
  VecDotFn vec_dot = nullptr;          // nullptr: type not supported for matmul
};

struct KernelTable {
  Isa isa = Isa::Scalar;
  WeightKernel weight[40];             // indexed by GgmlType id
  QuantizeRowFn quantize_q8_0 = nullptr;
  QuantizeRowFn quantize_q8_1 = nullptr;
  QuantizeRowFn quantize_q8_K = nullptr;
  float (*dot_f32)(int64_t n, const float* a, const float* b) = nullptr;
  // y[i] += a * x[i]
  void (*axpy_f32)(int64_t n, float a, const float* x, float* y) = nullptr;
  // Indexed by GgmlType id; nullptr: no decoder for the type.
  DequantizeRowFn dequantize_row[40] = {};
  // Indexed by PackedKind; every kind is set (scalar fallback).
  GemmX8Fn gemm_x8[kPackedKinds] = {};
  GemmPanelFn gemm_f32_panel = nullptr;
  // Decode GEMV over F16x16 / BF16x16 panels; always set (scalar fallback).
  GemvPanel16Fn gemv_f16_panel = nullptr;
  GemvPanel16Fn gemv_bf16_panel = nullptr;
  // Low-bit table lookup; always set (scalar fallback).
  LutBuildFn lut_build = nullptr;
  LutGemvFn lut_gemv = nullptr;
  // Ternary; always set (scalar fallback).
  TernaryQuantizeFn ternary_quantize = nullptr;
  TernaryDotsFn ternary_dots = nullptr;
  TernaryLutBuildFn ternary_lut_build = nullptr;
  TernaryLutDotsFn ternary_lut_dots = nullptr;
  // W8A8; always set (scalar fallback). Its activations are ternary_quantize's.
  W8A8DotsFn w8a8_dots = nullptr;
  // Int8 minifloat dots; always set (scalar fallback).
  Mf8DotsFn mf8_dots = nullptr;
};

// The kernels one ISA level provides. make_kernel_table() turns a set into a
// table, so the weight type -> activation format mapping above is written
// once, and every table is built at compile time (constant initialisation: no
// ISA-specific instruction runs before the CPU check).
struct KernelSet {
  VecDotFn f32_f32, f16_f32, bf16_f32, q8_0_q8_0, q4_0_q8_0, q4_1_q8_1, q4_K_q8_K, q6_K_q8_K;
  QuantizeRowFn quantize_q8_0, quantize_q8_1, quantize_q8_K;
  float (*dot_f32)(int64_t n, const float* a, const float* b);
  void (*axpy_f32)(int64_t n, float a, const float* x, float* y);
  // Row decoders; a level may leave any of them nullptr to use the scalar one.
  struct Dequantize {
    DequantizeRowFn f32, f16, bf16, q8_0, q4_0, q4_1, q4_K, q6_K;
  } dequantize{};
  // Packed-weight GEMMs; a level may leave any of them nullptr (scalar).
  struct Packed {
    GemmX8Fn q4_0, q4_1, q8_0;
  } packed{};
  GemmPanelFn gemm_f32_panel = nullptr;  // nullptr: scalar
  GemvPanel16Fn gemv_f16_panel = nullptr, gemv_bf16_panel = nullptr;  // nullptr: scalar
  LutBuildFn lut_build = nullptr;  // nullptr: scalar
  LutGemvFn lut_gemv = nullptr;    // nullptr: scalar
  TernaryQuantizeFn ternary_quantize = nullptr;  // nullptr: scalar
  TernaryDotsFn ternary_dots = nullptr;          // nullptr: scalar
  TernaryLutBuildFn ternary_lut_build = nullptr;  // nullptr: scalar
  TernaryLutDotsFn ternary_lut_dots = nullptr;    // nullptr: scalar
  W8A8DotsFn w8a8_dots = nullptr;                 // nullptr: scalar
  Mf8DotsFn mf8_dots = nullptr;                   // nullptr: scalar
};

constexpr KernelTable make_kernel_table(Isa isa, const KernelSet& k) {
  KernelTable t{};
  t.isa = isa;
  auto set = [&t](GgmlType w, GgmlType act, VecDotFn fn) {
    t.weight[static_cast<uint32_t>(w)] = WeightKernel{act, fn};
  };
  set(GgmlType::F32, GgmlType::F32, k.f32_f32);
  set(GgmlType::F16, GgmlType::F32, k.f16_f32);
  set(GgmlType::BF16, GgmlType::F32, k.bf16_f32);
  set(GgmlType::Q8_0, GgmlType::Q8_0, k.q8_0_q8_0);
  set(GgmlType::Q4_0, GgmlType::Q8_0, k.q4_0_q8_0);
  set(GgmlType::Q4_1, GgmlType::Q8_1, k.q4_1_q8_1);
  set(GgmlType::Q4_K, GgmlType::Q8_K, k.q4_K_q8_K);
  set(GgmlType::Q6_K, GgmlType::Q8_K, k.q6_K_q8_K);
  t.quantize_q8_0 = k.quantize_q8_0;
  t.quantize_q8_1 = k.quantize_q8_1;
  t.quantize_q8_K = k.quantize_q8_K;
  t.dot_f32 = k.dot_f32;
  t.axpy_f32 = k.axpy_f32;
  auto dq = [&t](GgmlType w, DequantizeRowFn fn, DequantizeRowFn scalar) {
    t.dequantize_row[static_cast<uint32_t>(w)] = fn ? fn : scalar;
  };
  dq(GgmlType::F32, k.dequantize.f32, ref::dequantize_row_f32);
  dq(GgmlType::F16, k.dequantize.f16, ref::dequantize_row_f16);
  dq(GgmlType::BF16, k.dequantize.bf16, ref::dequantize_row_bf16);
  dq(GgmlType::Q8_0, k.dequantize.q8_0, ref::dequantize_row_q8_0);
  dq(GgmlType::Q4_0, k.dequantize.q4_0, ref::dequantize_row_q4_0);
  dq(GgmlType::Q4_1, k.dequantize.q4_1, ref::dequantize_row_q4_1);
  dq(GgmlType::Q4_K, k.dequantize.q4_K, ref::dequantize_row_q4_K);
  dq(GgmlType::Q6_K, k.dequantize.q6_K, ref::dequantize_row_q6_K);
  t.gemm_x8[static_cast<int>(PackedKind::Q4_0x8)] = k.packed.q4_0 ? k.packed.q4_0 : ref::gemm_q4_0x8;
  t.gemm_x8[static_cast<int>(PackedKind::Q4_1x8)] = k.packed.q4_1 ? k.packed.q4_1 : ref::gemm_q4_1x8;
  t.gemm_x8[static_cast<int>(PackedKind::Q8_0x8)] = k.packed.q8_0 ? k.packed.q8_0 : ref::gemm_q8_0x8;
  t.gemm_f32_panel = k.gemm_f32_panel ? k.gemm_f32_panel : ref::gemm_f32_panel;
  t.gemv_f16_panel = k.gemv_f16_panel ? k.gemv_f16_panel : ref::gemv_f16_panel;
  t.gemv_bf16_panel = k.gemv_bf16_panel ? k.gemv_bf16_panel : ref::gemv_bf16_panel;
  t.lut_build = k.lut_build ? k.lut_build : ref::lut_build;
  t.lut_gemv = k.lut_gemv ? k.lut_gemv : ref::lut_gemv;
  t.ternary_quantize = k.ternary_quantize ? k.ternary_quantize : ref::ternary_quantize;
  t.ternary_dots = k.ternary_dots ? k.ternary_dots : ref::ternary_dots;
  t.ternary_lut_build = k.ternary_lut_build ? k.ternary_lut_build : ref::ternary_lut_build;
  t.ternary_lut_dots = k.ternary_lut_dots ? k.ternary_lut_dots : ref::ternary_lut_dots;
  t.w8a8_dots = k.w8a8_dots ? k.w8a8_dots : ref::w8a8_dots;
  t.mf8_dots = k.mf8_dots ? k.mf8_dots : ref::mf8_dots;
  return t;
}

// Tables per ISA; each is filled by its translation unit. A level absent from
// this build returns nullptr.
const KernelTable* kernel_table_scalar();
const KernelTable* kernel_table_avx2();
const KernelTable* kernel_table_avx512();
const KernelTable* kernel_table_neon();
const KernelTable* kernel_table_neon_dotprod();

// The table in use: the best level the CPU supports, or MINICPM_EDGE_ISA.
// Throws mce::ArgumentError if MINICPM_EDGE_ISA names an unknown or
// unavailable level.
const KernelTable& kernels();
// Switch level at run time (tests); throws like kernels().
void set_isa(Isa isa);
// Best level this CPU supports in this build.
Isa best_supported_isa();
bool isa_supported(Isa isa);

// The table of one level; throws mce::ArgumentError like set_isa() when the
// level is not available. Lets tests compare levels without switching.
const KernelTable& kernels_for(Isa isa);
// Level by name as MINICPM_EDGE_ISA spells it ("scalar", "avx2", "avx512",
// "neon", "neon_dotprod"); throws mce::ArgumentError for an unknown name.
Isa isa_from_name(const char* name);

// Bytes needed for an activation row of n elements in format t (F32, Q8_0,
// Q8_1 or Q8_K; n a multiple of its block size). Throws mce::ArgumentError
// otherwise. Activation buffers must be 4-byte aligned (Q8_K holds an f32);
// 64 bytes is best.
size_t act_row_bytes(GgmlType t, int64_t n);
// Converts an f32 row into activation format t with the given table's
// quantizer (F32: a copy). y must hold act_row_bytes(t, n).
void quantize_activation_row(const KernelTable& k, GgmlType t, const float* x, void* y, int64_t n);

}  // namespace mce
