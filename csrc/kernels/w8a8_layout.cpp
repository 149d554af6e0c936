#include "kernels/w8a8_layout.h"

#include <cstring>

namespace mce {

bool w8a8_pack_group(const int8_t* rows, size_t row_bytes, int n_rows, int64_t K, uint8_t* dst) {
  const int64_t Kp = w8a8_padded_cols(K);
  std::memset(dst, 128, size_t(Kp) * kW8A8Rows);
  for (int i = 0; i < n_rows; ++i) {
    const int8_t* row = rows + size_t(i) * row_bytes;
    for (int64_t k = 0; k < K; ++k) {
      if (row[k] == -128) return false;
      dst[(k / 4) * 64 + 4 * i + (k % 4)] = uint8_t(row[k] + 128);
    }
  }
  return true;
}

void w8a8_decode_row(const uint8_t* group, int i, int64_t k0, int64_t k1, float scale, float* out) {
  for (int64_t k = k0; k < k1; ++k) out[k - k0] = float(int(w8a8_code(group, i, k)) - 128) * scale;
}

}  // namespace mce
