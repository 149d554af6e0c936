// Dispatch: the levels offered follow the CPU's features, an unavailable
// level is refused with a clear error, and every table a level offers is
// complete.
#include <doctest/doctest.h>

#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernel_test_util.h"

namespace mce::test {
namespace {

constexpr Isa kAll[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::NeonDotprod};

TEST_CASE("dispatch: the levels offered follow the CPU features") {
  const CpuFeatures& f = cpu_features();
  CHECK(isa_supported(Isa::Scalar));
#if defined(__aarch64__)
  CHECK(f.neon);  // Advanced SIMD is part of every aarch64 CPU
  CHECK(isa_supported(Isa::Neon));
  CHECK(isa_supported(Isa::NeonDotprod) == f.neon_dotprod);
  CHECK_FALSE(isa_supported(Isa::Avx2));
  CHECK_FALSE(isa_supported(Isa::Avx512));
  CHECK(best_supported_isa() == (f.neon_dotprod ? Isa::NeonDotprod : Isa::Neon));
#elif defined(__x86_64__)
  CHECK(isa_supported(Isa::Avx2) == (f.avx2 && f.fma && f.f16c));
  CHECK_FALSE(isa_supported(Isa::Neon));
  CHECK_FALSE(isa_supported(Isa::NeonDotprod));
  if (isa_supported(Isa::Avx512)) CHECK(isa_supported(Isa::Avx2));
#endif
  MESSAGE("CPU levels: ", [] {
    std::string s;
    for (Isa isa : kAll)
      if (isa_supported(isa)) s += std::string(s.empty() ? "" : ", ") + level_name(isa);
    return s;
  }());
}

TEST_CASE("dispatch: an unavailable level is a clear error") {
  for (Isa isa : kAll) {
    if (isa_supported(isa)) continue;
    INFO(level_name(isa));
    try {
      kernels_for(isa);
      FAIL("kernels_for accepted an unavailable level");
    } catch (const ArgumentError& e) {
      const std::string msg = e.what();
      CHECK(msg.find(level_name(isa)) != std::string::npos);
      CHECK(msg.find("not available") != std::string::npos);
    }
    CHECK_THROWS_AS(set_isa(isa), ArgumentError);
  }
  CHECK_THROWS_AS(isa_from_name("sse9"), ArgumentError);
  for (Isa isa : kAll) CHECK(isa_from_name(isa_name(isa)) == isa);
}

TEST_CASE("dispatch: every offered table is complete") {
  for (Isa isa : levels_to_test()) {
    const KernelTable& kt = kernels_for(isa);
    INFO(level_name(isa));
    CHECK(kt.isa == isa);
    for (GgmlType t : kDotTypes) {
      CHECK((kt.weight[uint32_t(t)].vec_dot != nullptr));
      CHECK((kt.dequantize_row[uint32_t(t)] != nullptr));
    }
    CHECK((kt.quantize_q8_0 != nullptr));
    CHECK((kt.quantize_q8_1 != nullptr));
    CHECK((kt.quantize_q8_K != nullptr));
    CHECK((kt.dot_f32 != nullptr));
    CHECK((kt.axpy_f32 != nullptr));
    for (PackedKind k : {PackedKind::Q4_0x8, PackedKind::Q4_1x8, PackedKind::Q8_0x8})
      CHECK((kt.gemm_x8[int(k)] != nullptr));
    CHECK((kt.gemm_f32_panel != nullptr));
    CHECK((kt.gemv_f16_panel != nullptr));
    CHECK((kt.gemv_bf16_panel != nullptr));
    CHECK((kt.lut_build != nullptr));
    CHECK((kt.lut_gemv != nullptr));
  }
}

}  // namespace
}  // namespace mce::test
