#include "kernels/ternary_lut_layout.h"

namespace mce {

const int8_t kTl3Digits[16][3] = {{0, 0, 0},  {0, 0, 1},  {0, 1, -1},  {0, 1, 0},  {0, 1, 1},  {1, -1, -1},
                                  {1, -1, 0}, {1, -1, 1}, {1, 0, -1},  {1, 0, 0},  {1, 0, 1},  {1, 1, -1},
                                  {1, 1, 0},  {1, 1, 1},  {0, 0, 0},   {0, 0, 0}};

void tl3_decode_row(const uint8_t* w, int64_t K, int64_t r, int64_t k0, int64_t k1, float scale, float* out) {
  const uint8_t* block = w + size_t(r / kTl3BlockRows) * tl3_block_bytes(K);
  for (int64_t k = k0; k < k1; ++k) {
    int index, negative;
    tl3_entry(block, int(r % kTl3BlockRows), k / 3, &index, &negative);
    const int t = kTl3Digits[index][k % 3];
    out[k - k0] = scale * float(negative ? -t : t);
  }
}

namespace {
// Set bits of a byte (the common sources are built without POPCNT, and the
// builtin's library fallback is slow enough to show at load time).
int bit_count(uint8_t b) {
  b = uint8_t(b - ((b >> 1) & 0x55));
  b = uint8_t((b & 0x33) + ((b >> 2) & 0x33));
  return (b + (b >> 4)) & 0x0F;
}
}  // namespace

void tl3_row_bias(const uint8_t* w, int64_t rows, int64_t K, int32_t* bias) {
  const size_t block_bytes = tl3_block_bytes(K);
  const int64_t octets = tl3_octets(K);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* block = w + size_t(r / kTl3BlockRows) * block_bytes;
    const int j = int(r % 16), half = int(r % kTl3BlockRows) / 16;
    int32_t n = 0;
    for (int64_t o = 0; o < octets; ++o)
      for (int l = 0; l < 2; ++l) n += bit_count(block[size_t(o) * kTl3OctetBytes + 32 * half + 16 * l + j]);
    bias[r] = n;
  }
}

}  // namespace mce
