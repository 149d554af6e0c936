#include "kernels/ternary_layout.h"

namespace mce {

void ternary_decode_row(const uint8_t* row, int64_t K, float scale, float* out) {
  for (int64_t k = 0; k < K; ++k) out[k] = scale * float(ternary_code(row, k) - 1);
}

}  // namespace mce
