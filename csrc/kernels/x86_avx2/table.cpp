// The AVX2 level (Haswell and later, Zen): AVX2 + FMA + F16C.
#include "kernels/dispatch.h"
#include "kernels/x86_avx2/avx2_kernels.h"

namespace mce {
namespace {

constexpr KernelTable kAvx2Table = make_kernel_table(
    Isa::Avx2,
    KernelSet{avx2::vec_dot_f32, avx2::vec_dot_f16_f32, avx2::vec_dot_bf16_f32, avx2::vec_dot_q8_0_q8_0,
              avx2::vec_dot_q4_0_q8_0, avx2::vec_dot_q4_1_q8_1, avx2::vec_dot_q4_K_q8_K,
              avx2::vec_dot_q6_K_q8_K, avx2::quantize_row_q8_0, avx2::quantize_row_q8_1,
              avx2::quantize_row_q8_K, avx2::dot_f32, avx2::axpy_f32,
              {avx2::dequantize_row_f32, avx2::dequantize_row_f16, avx2::dequantize_row_bf16,
               avx2::dequantize_row_q8_0, avx2::dequantize_row_q4_0, avx2::dequantize_row_q4_1,
               avx2::dequantize_row_q4_K, avx2::dequantize_row_q6_K},
               {avx2::gemm_q4_0x8, avx2::gemm_q4_1x8, avx2::gemm_q8_0x8},
              avx2::gemm_f32_panel, avx2::gemv_f16_panel, avx2::gemv_bf16_panel, avx2::lut_build, avx2::lut_gemv,
              avx2::ternary_quantize, avx2::ternary_dots, avx2::ternary_lut_build,
              avx2::ternary_lut_dots, avx2::w8a8_dots, avx2::mf8_dots});

}  // namespace

const KernelTable* kernel_table_avx2() { return &kAvx2Table; }

}  // namespace mce
