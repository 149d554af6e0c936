// The scalar level: portable C++, runs on any CPU, and defines the results the
// SIMD levels are tested against.
#include "kernels/dispatch.h"
#include "kernels/ref/ref_kernels.h"
#include "quant/quantize_act.h"

namespace mce {
namespace {

constexpr KernelTable kScalarTable = make_kernel_table(
    Isa::Scalar,
    KernelSet{ref::vec_dot_f32, ref::vec_dot_f16_f32, ref::vec_dot_bf16_f32, ref::vec_dot_q8_0_q8_0,
              ref::vec_dot_q4_0_q8_0, ref::vec_dot_q4_1_q8_1, ref::vec_dot_q4_K_q8_K,
              ref::vec_dot_q6_K_q8_K, quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_K,
              ref::dot_f32, ref::axpy_f32,
              {ref::dequantize_row_f32, ref::dequantize_row_f16, ref::dequantize_row_bf16,
               ref::dequantize_row_q8_0, ref::dequantize_row_q4_0, ref::dequantize_row_q4_1,
               ref::dequantize_row_q4_K, ref::dequantize_row_q6_K}});

}  // namespace

const KernelTable* kernel_table_scalar() { return &kScalarTable; }

}  // namespace mce
