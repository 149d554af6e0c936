// Memory layout of one KV head's cache: the contract between the cache that
// writes it (runtime/kv_cache.h) and the attention kernels that read it.
//
// Keys are stored transposed in tiles of kKeyTile positions: within a tile,
// the kKeyTile keys' components of dimension d are contiguous. Scores of a
// query against 16 keys are then head_dim broadcast-FMAs into vectors of 16
// scores, the "K^T" operand of S = Q K^T in GEMM form (FlashAttention-2,
// Dao 2023, §3.1), with no horizontal sums and no transposition at run time.
//
// Values stay row-major (P V reads them by position), each row padded with
// zeros to a multiple of kKeyTile elements so 4-, 8- and 16-wide vectors cover
// a row without tails.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mce {

// Element type of the cache. F16 (IEEE binary16, llama.cpp's default cache
// type) halves the bytes attention streams per token; F32 keeps keys and
// values exact.
enum class KvType : uint8_t { F16 = 0, F32 = 1 };

inline size_t kv_type_size(KvType t) { return t == KvType::F16 ? 2 : 4; }

constexpr int64_t kKeyTile = 16;
// Keys are read in blocks of this many positions (the online-softmax step of
// the kernels). Allocations round positions up to it, so a block read never
// leaves the buffer even when its tail is past the last cached key.
constexpr int64_t kAttnBlockKeys = 64;

inline int64_t kv_padded_positions(int64_t n_ctx) {
  return (n_ctx + kAttnBlockKeys - 1) / kAttnBlockKeys * kAttnBlockKeys;
}
inline int64_t kv_value_stride(int64_t head_dim) { return (head_dim + kKeyTile - 1) / kKeyTile * kKeyTile; }

// Elements of one head's keys / values for a cache of n_ctx positions.
inline int64_t kv_key_head_elems(int64_t n_ctx, int64_t head_dim) { return kv_padded_positions(n_ctx) * head_dim; }
inline int64_t kv_value_head_elems(int64_t n_ctx, int64_t head_dim) {
  return kv_padded_positions(n_ctx) * kv_value_stride(head_dim);
}

// Index of key component d of position pos within its head.
inline int64_t kv_key_index(int64_t pos, int64_t d, int64_t head_dim) {
  return ((pos / kKeyTile) * head_dim + d) * kKeyTile + pos % kKeyTile;
}
// Index of value component d of position pos within its head.
inline int64_t kv_value_index(int64_t pos, int64_t d, int64_t head_dim) {
  return pos * kv_value_stride(head_dim) + d;
}

}  // namespace mce
