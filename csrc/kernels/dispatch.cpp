// Chooses the kernel table once: the best level both this build and this CPU
// support, unless MINICPM_EDGE_ISA names one. A level's table is only touched
// after the CPU check, so no ISA-specific code can run on a CPU without it.
#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"

namespace mce {

// Levels this build does not compile return nullptr.
#if !defined(MCE_HAVE_X86)
const KernelTable* kernel_table_avx2() { return nullptr; }
const KernelTable* kernel_table_avx512() { return nullptr; }
#endif
// The NEON levels have no kernels yet. The translation units that add them
// (arm_neon/) define these two and the build defines MCE_HAVE_NEON_KERNELS.
#if !defined(MCE_HAVE_NEON_KERNELS)
const KernelTable* kernel_table_neon() { return nullptr; }
const KernelTable* kernel_table_neon_dotprod() { return nullptr; }
#endif

namespace {

constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::NeonDotprod};

bool cpu_runs(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::Avx512:
#if defined(MCE_TEST_EMULATED_AVX512)
      // TEST BUILDS ONLY (CMake MCE_EMULATE_AVX512, never a wheel): the
      // AVX-512 translation units are compiled without AVX-512 flags against
      // an emulation of its intrinsics (tests/native/emulated_avx512/), so
      // they need only what the AVX2 level needs.
      return f.avx2 && f.fma && f.f16c;
#else
      return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq &&
             f.avx512vnni;
#endif
    case Isa::Neon: return f.neon;
    case Isa::NeonDotprod: return f.neon && f.neon_dotprod;
  }
  return false;
}

const KernelTable* table_of(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return kernel_table_scalar();
    case Isa::Avx2: return kernel_table_avx2();
    case Isa::Avx512: return kernel_table_avx512();
    case Isa::Neon: return kernel_table_neon();
    case Isa::NeonDotprod: return kernel_table_neon_dotprod();
  }
  return nullptr;
}

std::string supported_list() {
  std::string s;
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    if (!s.empty()) s += ", ";
    s += isa_name(isa);
  }
  return s;
}

const KernelTable& checked_table(Isa isa, const std::string& what) {
  if (!isa_supported(isa)) {
    throw ArgumentError(what + " is not available on this CPU (supported: " + supported_list() + ")");
  }
  return *table_of(isa);
}

const KernelTable* initial_table() {
  const char* env = std::getenv("MINICPM_EDGE_ISA");
  if (env == nullptr || env[0] == '\0') return table_of(best_supported_isa());
  const std::string what = std::string("MINICPM_EDGE_ISA=") + env;
  Isa isa;
  try {
    isa = isa_from_name(env);
  } catch (const ArgumentError&) {
    throw ArgumentError(what + " is not a known ISA level (known: scalar, avx2, avx512, neon, " +
                        "neon_dotprod; supported here: " + supported_list() + ")");
  }
  return &checked_table(isa, what);
}

std::atomic<const KernelTable*> g_current{nullptr};
std::mutex g_init_mutex;

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
    case Isa::NeonDotprod: return "neon_dotprod";
  }
  return "unknown";
}

Isa isa_from_name(const char* name) {
  for (Isa isa : kAllIsas) {
    if (std::strcmp(name, isa_name(isa)) == 0) return isa;
  }
  throw ArgumentError(std::string("unknown ISA level '") + name +
                      "' (known: scalar, avx2, avx512, neon, neon_dotprod)");
}

bool isa_supported(Isa isa) { return cpu_runs(isa) && table_of(isa) != nullptr; }

Isa best_supported_isa() {
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::NeonDotprod, Isa::Neon}) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::Scalar;
}

const KernelTable& kernels() {
  const KernelTable* t = g_current.load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  std::lock_guard<std::mutex> lock(g_init_mutex);
  t = g_current.load(std::memory_order_relaxed);
  if (t == nullptr) {
    t = initial_table();  // throws on a bad MINICPM_EDGE_ISA; the next call tries again
    g_current.store(t, std::memory_order_release);
  }
  return *t;
}

const KernelTable& kernels_for(Isa isa) {
  return checked_table(isa, std::string("ISA level ") + isa_name(isa));
}

void set_isa(Isa isa) {
  const KernelTable& t = kernels_for(isa);
  std::lock_guard<std::mutex> lock(g_init_mutex);
  g_current.store(&t, std::memory_order_release);
}

size_t act_row_bytes(GgmlType t, int64_t n) {
  int64_t block = 0, bytes = 0;
  switch (t) {
    case GgmlType::F32: block = 1; bytes = 4; break;
    case GgmlType::Q8_0: block = 32; bytes = 34; break;
    case GgmlType::Q8_1: block = 32; bytes = 36; break;
    case GgmlType::Q8_K: block = 256; bytes = 292; break;
    default:
      throw ArgumentError("type id " + std::to_string(static_cast<uint32_t>(t)) +
                          " is not an activation format (F32, Q8_0, Q8_1, Q8_K)");
  }
  if (n < 0 || n % block != 0) {
    throw ArgumentError("activation row of " + std::to_string(n) +
                        " elements is not a multiple of the block size " + std::to_string(block));
  }
  return static_cast<size_t>(n / block * bytes);
}

void quantize_activation_row(const KernelTable& k, GgmlType t, const float* x, void* y, int64_t n) {
  act_row_bytes(t, n);  // validates t and n
  switch (t) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
      break;
    case GgmlType::Q8_0: k.quantize_q8_0(x, y, n); break;
    case GgmlType::Q8_1: k.quantize_q8_1(x, y, n); break;
    case GgmlType::Q8_K: k.quantize_q8_K(x, y, n); break;
    default: break;
  }
}

}  // namespace mce
