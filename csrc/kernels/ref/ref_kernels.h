// Scalar reference kernels: the definition every SIMD variant is tested
// against, and the fallback table for CPUs without a SIMD level. Integer parts
// of the quantized dots are exact; float parts accumulate in f32 in a fixed
// order (8 interleaved partial sums for the float dots, one per block for the
// quantized dots).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/lut_layout.h"
#include "kernels/ternary_layout.h"
#include "kernels/ternary_lut_layout.h"

namespace mce::ref {

float dot_f32(int64_t n, const float* a, const float* b);
void axpy_f32(int64_t n, float a, const float* x, float* y);

// VecDotFn signatures: (n, weight row, activation row in the vec_dot format).
float vec_dot_f32(int64_t n, const void* w, const void* x);
float vec_dot_f16_f32(int64_t n, const void* w, const void* x);
float vec_dot_bf16_f32(int64_t n, const void* w, const void* x);
float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* x);
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* x);
float vec_dot_q4_K_q8_K(int64_t n, const void* w, const void* x);
float vec_dot_q6_K_q8_K(int64_t n, const void* w, const void* x);

// Row decoders (DequantizeRowFn): n elements, a multiple of the block size.
void dequantize_row_f32(const void* src, float* dst, int64_t n);
void dequantize_row_f16(const void* src, float* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* dst, int64_t n);
void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q4_K(const void* src, float* dst, int64_t n);
void dequantize_row_q6_K(const void* src, float* dst, int64_t n);

// Packed-weight GEMMs (GemmX8Fn in kernels/dispatch.h).
void gemm_q4_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride);
void gemm_q4_1x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride);
void gemm_q8_0x8(int64_t nb, const uint8_t* group, const uint8_t* act, size_t act_stride, const int32_t* sums,
                 int64_t sums_stride, int64_t n_tok, float* y, int64_t y_stride);

// f32 GEMM against a k-major panel of 16 rows (GemmPanelFn in kernels/dispatch.h).
void gemm_f32_panel(int64_t K, const float* panel, const float* x, int64_t ldx, int64_t n_tok, float* y,
                    int64_t ldy, int n_rows, bool accumulate);

// Decode GEMV over a k-major panel of 16 rows of F16 / BF16 weights
// (GemvPanel16Fn in kernels/dispatch.h).
void gemv_f16_panel(int64_t K, const uint16_t* panel, const float* x, float* y);
void gemv_bf16_panel(int64_t K, const uint16_t* panel, const float* x, float* y);

// Table-lookup GEMV for low-bit weights (LutBuildFn / LutGemvFn in
// kernels/dispatch.h).
void lut_build(const float* x, int64_t K, int group, int8_t* tables, float* half_sigma, float* xsum);
void lut_gemv(const LowBitFormat& f, int64_t K, const uint8_t* tile, const int8_t* tables, const float* half_sigma,
              const float* xsum, float* y);

// Ternary weights (TernaryQuantizeFn / TernaryDotsFn in kernels/dispatch.h).
TernaryActivation ternary_quantize(const float* x, int64_t K, int8_t* a);
void ternary_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const int8_t* act, size_t act_stride,
                  int n_tok, int32_t* out, int64_t out_stride);
void ternary_lut_build(const int8_t* a, int64_t K, uint8_t* tables);
void ternary_lut_dots(int64_t K, const uint8_t* w, int64_t n_blocks, const int32_t* bias, const uint8_t* tables,
                      size_t table_stride, int n_tok, int32_t* out, int64_t out_stride);

// W8A8 dots (W8A8DotsFn in kernels/dispatch.h).
void w8a8_dots(int64_t K, const uint8_t* w, int64_t n_groups, const int8_t* act, size_t act_stride,
               const int32_t* sums, int n_tok, int32_t* out, int64_t out_stride);
// Int8 minifloat dots (Mf8DotsFn in kernels/dispatch.h), and the block sums
// they are made of (kernels/mf8_driver.h), for the SIMD levels' tails.
void mf8_dots(int64_t K, const uint8_t* w, size_t row_bytes, int n_rows, const uint8_t* act, size_t act_stride,
              int n_tok, float* out, int64_t out_stride);
void mf8_block_sums(const uint8_t* w, const uint8_t* x, int n, int32_t* sums);

}  // namespace mce::ref
