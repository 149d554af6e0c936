// The AVX2 level's row decoders
// (see x86_avx2/dequantize_256.h for the bit-exactness rules).
#include "kernels/x86_avx2/dequantize_256.h"
#include "kernels/x86_avx2/avx2_kernels.h"

namespace mce::avx2 {

void dequantize_row_f32(const void* src, float* dst, int64_t n) { x86_256::dequant_f32(src, dst, n); }
void dequantize_row_f16(const void* src, float* dst, int64_t n) { x86_256::dequant_f16(src, dst, n); }
void dequantize_row_bf16(const void* src, float* dst, int64_t n) { x86_256::dequant_bf16(src, dst, n); }
void dequantize_row_q8_0(const void* src, float* dst, int64_t n) { x86_256::dequant_q8_0(src, dst, n); }
void dequantize_row_q4_0(const void* src, float* dst, int64_t n) { x86_256::dequant_q4_0(src, dst, n); }
void dequantize_row_q4_1(const void* src, float* dst, int64_t n) { x86_256::dequant_q4_1(src, dst, n); }
void dequantize_row_q4_K(const void* src, float* dst, int64_t n) { x86_256::dequant_q4_k(src, dst, n); }
void dequantize_row_q6_K(const void* src, float* dst, int64_t n) { x86_256::dequant_q6_k(src, dst, n); }

}  // namespace mce::avx2
