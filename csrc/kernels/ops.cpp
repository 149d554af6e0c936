// Per-level choice of the element-wise ops table (kernels/ops.h).
#include "kernels/ops.h"

#include <string>

#include "core/error.h"

namespace mce {

namespace {
constexpr OpsTable kScalarOps{ref::rmsnorm, ref::add_rmsnorm, ref::silu_mul,   ref::add_scaled,
                              ref::scale,   ref::rope_interleaved, ref::softmax, ref::exp,
                              ref::f32_to_f16, ref::f16_to_f32};
}  // namespace

const OpsTable& ops_scalar() { return kScalarOps; }

#if !defined(MCE_HAVE_X86)
const OpsTable* ops_avx2() { return nullptr; }
const OpsTable* ops_avx512() { return nullptr; }
#endif
#if !defined(MCE_NEON_OPS)
const OpsTable* ops_neon() { return nullptr; }
#endif

const OpsTable& ops_for(Isa isa) {
  if (!isa_supported(isa)) throw ArgumentError(std::string("ISA level ") + isa_name(isa) + " is not available on this CPU");
  const OpsTable* t = nullptr;
  switch (isa) {
    case Isa::Avx512: t = ops_avx512(); break;
    case Isa::Avx2: t = ops_avx2(); break;
    case Isa::Neon:
    case Isa::NeonDotprod: t = ops_neon(); break;
    case Isa::Scalar: break;
  }
  return t ? *t : kScalarOps;
}

const OpsTable& ops() { return ops_for(kernels().isa); }

}  // namespace mce
