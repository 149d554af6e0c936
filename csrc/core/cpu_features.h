// What the CPU *and the operating system* let this process execute. A feature
// counts only when the OS also saves the registers it uses across context
// switches (x86: XCR0 via xgetbv), otherwise the instructions fault although
// cpuid lists them.
#pragma once

namespace mce {

struct CpuFeatures {
  // x86-64
  bool avx2 = false;     // AVX2 with OS-enabled YMM state
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;  // the AVX-512 bits require OS-enabled ZMM/opmask state
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  // aarch64
  bool neon = false;
  bool neon_dotprod = false;  // SDOT/UDOT (ARMv8.2 dotprod)
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

}  // namespace mce
