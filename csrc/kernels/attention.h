// Scaled dot-product attention of one query row of one head over the cached
// keys/values of its KV head (GQA maps several query heads onto one KV head).
// Each ISA compiles attention_impl.h with its own inline dot/axpy; the variant
// used follows the kernel table's level.
#pragma once
#include <cstdint>

namespace mce {

// out[0:d] = softmax(scale * q.K^T) V over keys 0..n_keys-1.
// k, v: n_keys rows of d floats, consecutive. scores: scratch of n_keys floats.
using AttendRowFn = void (*)(const float* q, const float* k, const float* v, int64_t n_keys, int64_t d,
                             float scale, float* scores, float* out);

AttendRowFn attend_row_scalar();
AttendRowFn attend_row_avx2();    // nullptr when not built for x86
AttendRowFn attend_row_avx512();

// The variant for the current kernel level.
AttendRowFn attend_row();

}  // namespace mce
