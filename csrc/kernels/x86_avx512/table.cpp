// The AVX-512 level: F + BW + VL + DQ + VNNI (Ice Lake, Sapphire Rapids,
// Zen 4 and later), on top of AVX2/FMA/F16C.
#include "kernels/dispatch.h"
#include "kernels/x86_avx512/avx512_kernels.h"

namespace mce {
namespace {

constexpr KernelTable kAvx512Table = make_kernel_table(
    Isa::Avx512,
    KernelSet{avx512::vec_dot_f32, avx512::vec_dot_f16_f32, avx512::vec_dot_bf16_f32,
              avx512::vec_dot_q8_0_q8_0, avx512::vec_dot_q4_0_q8_0, avx512::vec_dot_q4_1_q8_1,
              avx512::vec_dot_q4_K_q8_K, avx512::vec_dot_q6_K_q8_K, avx512::quantize_row_q8_0,
              avx512::quantize_row_q8_1, avx512::quantize_row_q8_K, avx512::dot_f32, avx512::axpy_f32,
              {avx512::dequantize_row_f32, avx512::dequantize_row_f16, avx512::dequantize_row_bf16,
               avx512::dequantize_row_q8_0, avx512::dequantize_row_q4_0, avx512::dequantize_row_q4_1,
               avx512::dequantize_row_q4_K, avx512::dequantize_row_q6_K},
               {avx512::gemm_q4_0x8, avx512::gemm_q4_1x8, avx512::gemm_q8_0x8},
              avx512::gemm_f32_panel, avx512::gemv_f16_panel, avx512::gemv_bf16_panel, avx512::lut_build, avx512::lut_gemv,
              avx512::ternary_quantize, avx512::ternary_dots, avx512::ternary_lut_build,
              avx512::ternary_lut_dots, avx512::w8a8_dots, avx512::mf8_dots});

}  // namespace

const KernelTable* kernel_table_avx512() { return &kAvx512Table; }

}  // namespace mce
