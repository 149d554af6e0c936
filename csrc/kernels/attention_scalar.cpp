// Scalar reference of the attention row kernel.
#include <cstdint>

static inline float attn_dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
static inline void attn_axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

#include "kernels/attention.h"
#include "kernels/attention_impl.h"
#include "kernels/dispatch.h"

namespace mce {

AttendRowFn attend_row_scalar() { return attend_row_impl; }

#if !defined(MCE_HAVE_X86)
AttendRowFn attend_row_avx2() { return nullptr; }
AttendRowFn attend_row_avx512() { return nullptr; }
#endif

AttendRowFn attend_row() {
  switch (kernels().isa) {
    case Isa::Avx512: return attend_row_avx512();
    case Isa::Avx2: return attend_row_avx2();
    default: return attend_row_scalar();
  }
}

}  // namespace mce
