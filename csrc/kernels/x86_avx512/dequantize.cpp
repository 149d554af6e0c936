// The AVX-512 level's row decoders: the 256-bit AVX2 code, compiled with this
// level's flags. Decoding is bound by loads and stores, so wider vectors would
// gain little, and the 256-bit code is the one the tests run on every x86 CPU
// (see x86_avx2/dequantize_256.h for the bit-exactness rules).
#include "kernels/x86_avx2/dequantize_256.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce::avx512 {

void dequantize_row_f32(const void* src, float* dst, int64_t n) { x86_256::dequant_f32(src, dst, n); }
void dequantize_row_f16(const void* src, float* dst, int64_t n) { x86_256::dequant_f16(src, dst, n); }
void dequantize_row_bf16(const void* src, float* dst, int64_t n) { x86_256::dequant_bf16(src, dst, n); }
void dequantize_row_q8_0(const void* src, float* dst, int64_t n) { x86_256::dequant_q8_0(src, dst, n); }
void dequantize_row_q4_0(const void* src, float* dst, int64_t n) { x86_256::dequant_q4_0(src, dst, n); }
void dequantize_row_q4_1(const void* src, float* dst, int64_t n) { x86_256::dequant_q4_1(src, dst, n); }
void dequantize_row_q4_K(const void* src, float* dst, int64_t n) { x86_256::dequant_q4_k(src, dst, n); }
void dequantize_row_q6_K(const void* src, float* dst, int64_t n) { x86_256::dequant_q6_k(src, dst, n); }

}  // namespace mce::avx512
