// Entry point of the native tests (doctest). Besides doctest's own options:
//   --isa-report   print the CPU features, the levels this build and CPU
//                  support and the level chosen at start-up (honouring
//                  MINICPM_EDGE_ISA), then exit: 0, or 2 with the error
//                  message when MINICPM_EDGE_ISA names a level that is
//                  unknown or unavailable. A build with MCE_EMULATE_AVX512
//                  also says which levels run emulated.
// After a test run it prints the ISA levels the kernel tests exercised.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/dispatch.h"

namespace {

int isa_report() {
  const mce::CpuFeatures& f = mce::cpu_features();
  std::printf("cpu features: avx2=%d fma=%d f16c=%d avx512f=%d avx512bw=%d avx512vl=%d avx512dq=%d "
              "avx512vnni=%d neon=%d neon_dotprod=%d\n",
              f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512dq, f.avx512vnni, f.neon,
              f.neon_dotprod);
  std::string supported;
  for (mce::Isa isa : {mce::Isa::Scalar, mce::Isa::Avx2, mce::Isa::Avx512, mce::Isa::Neon, mce::Isa::NeonDotprod}) {
    if (!mce::isa_supported(isa)) continue;
    if (!supported.empty()) supported += ", ";
    supported += mce::isa_name(isa);
  }
  std::printf("supported ISA levels: %s\n", supported.c_str());
#if defined(MCE_TEST_EMULATED_AVX512)
  // Test build with the AVX-512 kernels emulated (CMake MCE_EMULATE_AVX512).
  std::printf("emulated ISA levels: avx512\n");
#endif
  try {
    std::printf("chosen ISA level: %s\n", mce::isa_name(mce::kernels().isa));
  } catch (const mce::Error& e) {
    std::printf("error: %s\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--isa-report") == 0) return isa_report();
  }
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  const int rc = context.run();
  if (!context.shouldExit()) std::printf("ISA levels tested: %s\n", mce::test::tested_levels_summary().c_str());
  return rc;
}
