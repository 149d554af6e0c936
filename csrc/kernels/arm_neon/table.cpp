// The NEON level: ARMv8.0 Advanced SIMD, present on every aarch64 CPU.
#include "kernels/arm_neon/neon_kernels.h"
#include "kernels/dispatch.h"

namespace mce {
namespace {

constexpr KernelTable kNeonTable = make_kernel_table(
    Isa::Neon,
    KernelSet{neon::vec_dot_f32, neon::vec_dot_f16_f32, neon::vec_dot_bf16_f32, neon::vec_dot_q8_0_q8_0,
              neon::vec_dot_q4_0_q8_0, neon::vec_dot_q4_1_q8_1, neon::vec_dot_q4_K_q8_K,
              neon::vec_dot_q6_K_q8_K, neon::quantize_row_q8_0, neon::quantize_row_q8_1,
              neon::quantize_row_q8_K, neon::dot_f32, neon::axpy_f32,
              // F32 rows: the scalar decoder is a memcpy already.
              {nullptr, neon::dequantize_row_f16, neon::dequantize_row_bf16, neon::dequantize_row_q8_0,
               neon::dequantize_row_q4_0, neon::dequantize_row_q4_1, neon::dequantize_row_q4_K,
               neon::dequantize_row_q6_K},
              // Packed GEMMs: the scalar reference (SDOT-based ones are in the dotprod level).
              {},
              neon::gemm_f32_panel, neon::gemv_f16_panel, neon::gemv_bf16_panel, neon::lut_build, neon::lut_gemv,
              neon::ternary_quantize, neon::ternary_dots, neon::ternary_lut_build,
              neon::ternary_lut_dots, neon::w8a8_dots, neon::mf8_dots});

}  // namespace

const KernelTable* kernel_table_neon() { return &kNeonTable; }

}  // namespace mce
