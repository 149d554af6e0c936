// The NEON + dotprod level (ARMv8.2 FEAT_DotProd: Cortex-A55/A76 and later,
// Apple M1 and later): SDOT for the integer dot products and packed GEMMs;
// float kernels, quantizers and decoders are the baseline NEON ones.
#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/dispatch.h"

namespace mce {
namespace {

constexpr KernelTable kNeonDotprodTable = make_kernel_table(
    Isa::NeonDotprod,
    KernelSet{neon::vec_dot_f32, neon::vec_dot_f16_f32, neon::vec_dot_bf16_f32,
              neon_dotprod::vec_dot_q8_0_q8_0, neon_dotprod::vec_dot_q4_0_q8_0,
              neon_dotprod::vec_dot_q4_1_q8_1, neon_dotprod::vec_dot_q4_K_q8_K,
              neon_dotprod::vec_dot_q6_K_q8_K, neon::quantize_row_q8_0, neon::quantize_row_q8_1,
              neon::quantize_row_q8_K, neon::dot_f32, neon::axpy_f32,
              {nullptr, neon::dequantize_row_f16, neon::dequantize_row_bf16, neon::dequantize_row_q8_0,
               neon::dequantize_row_q4_0, neon::dequantize_row_q4_1, neon::dequantize_row_q4_K,
               neon::dequantize_row_q6_K},
              {neon_dotprod::gemm_q4_0x8, neon_dotprod::gemm_q4_1x8, neon_dotprod::gemm_q8_0x8},
              neon::gemm_f32_panel, neon::gemv_f16_panel, neon::gemv_bf16_panel, neon::lut_build, neon::lut_gemv,
              neon::ternary_quantize, neon_dotprod::ternary_dots, neon::ternary_lut_build,
              neon::ternary_lut_dots, neon_dotprod::w8a8_dots, neon_dotprod::mf8_dots});

}  // namespace

const KernelTable* kernel_table_neon_dotprod() { return &kNeonDotprodTable; }

}  // namespace mce
