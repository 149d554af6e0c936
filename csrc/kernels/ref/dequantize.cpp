// The scalar level's row decoders: the reference decoders of
// quant/dequantize.cpp, one entry per type so the kernel table can index them.
// Callers pass n as a multiple of the block size (as for every table entry);
// the reference still checks it.
#include "kernels/ref/ref_kernels.h"
#include "quant/dequantize.h"

namespace mce::ref {

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::F32, src, dst, n);
}
void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::F16, src, dst, n);
}
void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::BF16, src, dst, n);
}
void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::Q8_0, src, dst, n);
}
void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::Q4_0, src, dst, n);
}
void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::Q4_1, src, dst, n);
}
void dequantize_row_q4_K(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::Q4_K, src, dst, n);
}
void dequantize_row_q6_K(const void* src, float* dst, int64_t n) {
  dequantize_row(GgmlType::Q6_K, src, dst, n);
}

}  // namespace mce::ref
