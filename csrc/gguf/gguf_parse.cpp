// GGUF v2/v3 parser (layout: ggml/include/gguf.h; checks mirror and tighten
// ggml/src/gguf.cpp gguf_init_from_file_impl). Order of work: header, metadata,
// tensor infos, then the data section. Every count is checked against the bytes
// that remain before anything is allocated for it, so a 40-byte file claiming
// 2^62 entries fails in O(1) memory.
//
// Choices stricter than ggml, each because no real file needs the freedom and
// the runtime relies on the invariant:
//   * keys, string values and tensor names must be valid UTF-8 (they become
//     Python str); keys and tensor names must be non-empty;
//   * BOOL values must be the byte 0 or 1;
//   * n_dims is 1..4 and every dimension is >= 1 (ggml accepts 0, but then
//     divides by it in its own overflow check; an empty weight is never valid);
//   * general.alignment <= kMaxAlignment (1 MiB);
//   * tensors must not overlap (ggml requires them packed in order; gguf-py does
//     not check at all, we require only disjoint, aligned, in-file ranges).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "gguf/byte_reader.h"
#include "gguf/gguf_file.h"
#include "gguf/utf8.h"

namespace mce::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
constexpr uint64_t kMaxNameBytes = 63;      // GGML_MAX_NAME (64) minus the NUL
constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS

// Smallest possible encodings, used to bound counts before allocating:
// a KV is key length (8) + at least one key byte + value type (4) + a 1-byte
// value; a tensor info is name length (8) + one name byte + n_dims (4) + one
// dimension (8) + type (4) + offset (8).
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

// A name fit for an error message (see escape_for_message), in quotes.
std::string quoted(std::string_view s) { return "'" + escape_for_message(s, 80) + "'"; }

[[noreturn]] void fail(const std::string& msg) { throw FormatError("GGUF: " + msg); }

std::string u64s(uint64_t v) { return std::to_string(v); }

// Reads a GGUF string: u64 length, then that many bytes. The length is checked
// against the bytes remaining before any copy is made.
template <class What>
std::string_view read_str(ByteReader& r, const What& what) {
  const uint64_t len = r.u64([&] { return "length of " + what(); });
  if (len > r.remaining()) {
    fail(what() + " claims " + u64s(len) + " bytes at offset " + u64s(r.pos()) + " but only " +
         u64s(r.remaining()) + " remain (file size " + u64s(r.size()) + ")");
  }
  return r.bytes(len, what);
}

template <class What>
void require_utf8(std::string_view s, const What& what) {
  const size_t bad = utf8_invalid_at(s);
  if (bad != std::string_view::npos) {
    fail(what() + " is not valid UTF-8 (bad byte 0x" +
         [&] {
           char b[4];
           std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(s[bad]));
           return std::string(b);
         }() +
         " at byte " + std::to_string(bad) + " of " + quoted(s) + ")");
  }
}

bool is_known_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::F64); }

// Smallest encoding of one element of type t (strings: the length field alone).
uint64_t min_elem_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    default: return 8;  // U64, I64, F64, STRING
  }
}

struct ScalarSlot {
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
};

// Reads one non-string, non-array scalar of type t into the slot its family uses.
template <class What>
void read_scalar(ByteReader& r, ValueType t, ScalarSlot& out, const What& what) {
  switch (t) {
    case ValueType::U8: out.u = r.u8(what); break;
    case ValueType::U16: out.u = r.u16(what); break;
    case ValueType::U32: out.u = r.u32(what); break;
    case ValueType::U64: out.u = r.u64(what); break;
    case ValueType::I8: out.i = static_cast<int8_t>(r.u8(what)); break;
    case ValueType::I16: out.i = static_cast<int16_t>(r.u16(what)); break;
    case ValueType::I32: out.i = static_cast<int32_t>(r.u32(what)); break;
    case ValueType::I64: out.i = r.i64(what); break;
    case ValueType::F32: {
      const uint32_t bits = r.u32(what);
      float v;
      std::memcpy(&v, &bits, sizeof v);
      out.f = v;
      break;
    }
    case ValueType::F64: {
      const uint64_t bits = r.u64(what);
      std::memcpy(&out.f, &bits, sizeof out.f);
      break;
    }
    case ValueType::BOOL: {
      const uint8_t v = r.u8(what);
      if (v > 1) fail(what() + " has byte value " + std::to_string(v) + " (a BOOL must be 0 or 1)");
      out.b = v != 0;
      break;
    }
    default:
      fail("internal: read_scalar on " + std::string(value_type_name(t)));
  }
}

template <class What>
void read_array(ByteReader& r, Value& v, const What& where) {
  const uint32_t et = r.u32([&] { return "array element type of " + where(); });
  if (et == static_cast<uint32_t>(ValueType::ARRAY)) {
    fail(where() + " is a nested array (arrays of arrays are not supported by GGUF readers)");
  }
  if (!is_known_type(et)) {
    fail(where() + " has unknown array element type " + u64s(et) + " (valid: 0..12)");
  }
  v.elem_type = static_cast<ValueType>(et);
  const uint64_t n = r.u64([&] { return "array length of " + where(); });
  const uint64_t min_bytes = min_elem_bytes(v.elem_type);
  if (n > r.remaining() / min_bytes) {
    fail(where() + " claims " + u64s(n) + " elements of " + value_type_name(v.elem_type) +
         " (at least " + u64s(min_bytes) + " bytes each) at offset " + u64s(r.pos()) +
         " but only " + u64s(r.remaining()) + " bytes remain (file size " + u64s(r.size()) + ")");
  }
  const size_t count = static_cast<size_t>(n);
  auto elem = [&](size_t k) {
    return [&where, k] { return "element " + std::to_string(k) + " of " + where(); };
  };
  ScalarSlot slot;
  switch (v.elem_type) {
    case ValueType::STRING:
      v.arr_s.reserve(count);
      for (size_t k = 0; k < count; ++k) {
        std::string_view s = read_str(r, elem(k));
        require_utf8(s, [&] { return "string " + elem(k)(); });
        v.arr_s.emplace_back(s);
      }
      break;
    case ValueType::F32: case ValueType::F64:
      v.arr_f.reserve(count);
      for (size_t k = 0; k < count; ++k) {
        read_scalar(r, v.elem_type, slot, elem(k));
        v.arr_f.push_back(slot.f);
      }
      break;
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64:
      v.arr_i.reserve(count);
      for (size_t k = 0; k < count; ++k) {
        read_scalar(r, v.elem_type, slot, elem(k));
        v.arr_i.push_back(slot.i);
      }
      break;
    default:  // unsigned integers and BOOL
      v.arr_u.reserve(count);
      for (size_t k = 0; k < count; ++k) {
        read_scalar(r, v.elem_type, slot, elem(k));
        v.arr_u.push_back(v.elem_type == ValueType::BOOL ? uint64_t{slot.b} : slot.u);
      }
      break;
  }
}

template <class What>
Value read_value(ByteReader& r, const What& where) {
  Value v;
  const uint32_t t = r.u32([&] { return "value type of " + where(); });
  if (!is_known_type(t)) fail(where() + " has unknown value type " + u64s(t) + " (valid: 0..12)");
  v.type = static_cast<ValueType>(t);
  if (v.type == ValueType::ARRAY) {
    read_array(r, v, where);
  } else if (v.type == ValueType::STRING) {
    auto what = [&] { return "string value of " + where(); };
    std::string_view s = read_str(r, what);
    require_utf8(s, what);
    v.s.assign(s);
  } else {
    ScalarSlot slot;
    read_scalar(r, v.type, slot, [&] { return std::string(value_type_name(v.type)) + " value of " + where(); });
    v.u = slot.u;
    v.i = slot.i;
    v.f = slot.f;
    v.b = slot.b;
  }
  return v;
}

uint64_t alignment_from(const Value* v) {
  if (v == nullptr) return kDefaultAlignment;
  if (v->type != ValueType::U32) {
    fail(std::string("general.alignment must be UINT32, got ") + value_type_name(v->type));
  }
  const uint64_t a = v->u;
  if (a == 0 || (a & (a - 1)) != 0) {
    fail("general.alignment must be a non-zero power of two, got " + u64s(a));
  }
  if (a > kMaxAlignment) {
    fail("general.alignment " + u64s(a) + " exceeds the supported maximum " + u64s(kMaxAlignment));
  }
  return a;
}

std::string tensor_label(const TensorInfo& t, size_t idx) {
  return "tensor " + quoted(t.name) + " (#" + std::to_string(idx) + ")";
}

// Reads one tensor info and checks everything that does not depend on the
// data section: name, rank, dimensions, element count, type, byte size.
TensorInfo read_tensor_info(ByteReader& r, size_t idx) {
  TensorInfo t;
  const std::string idx_s = "#" + std::to_string(idx);
  std::string_view name = read_str(r, [&] { return "name of tensor " + idx_s; });
  if (name.empty()) fail("tensor " + idx_s + " has an empty name");
  if (name.size() > kMaxNameBytes) {
    fail("name of tensor " + idx_s + " " + quoted(name) + " is " + u64s(name.size()) +
         " bytes; ggml allows at most " + u64s(kMaxNameBytes) + " (GGML_MAX_NAME 64 including the terminator)");
  }
  require_utf8(name, [&] { return "name of tensor " + idx_s; });
  t.name.assign(name);
  auto label = [&] { return tensor_label(t, idx); };

  t.n_dims = r.u32([&] { return "n_dims of " + label(); });
  if (t.n_dims < 1 || t.n_dims > kMaxDims) {
    fail(label() + " has n_dims " + u64s(t.n_dims) + " (must be 1.." + u64s(kMaxDims) + ")");
  }
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    t.ne[d] = r.i64([&] { return "dimension " + std::to_string(d) + " of " + label(); });
    if (t.ne[d] < 1) {
      fail(label() + " has dimension ne[" + std::to_string(d) + "] = " + std::to_string(t.ne[d]) +
           " (must be >= 1)");
    }
    if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements)) {
      fail(label() + " has dimensions whose product overflows int64 (ne[" + std::to_string(d) +
           "] = " + std::to_string(t.ne[d]) + ")");
    }
  }
  const uint32_t type_id = r.u32([&] { return "type of " + label(); });
  const TypeGeometry g = type_geometry(type_id);
  if (g.name == nullptr) fail(label() + " has unknown ggml type id " + u64s(type_id));
  t.type = static_cast<GgmlType>(type_id);
  if (t.ne[0] % g.block_size != 0) {
    fail(label() + " of type " + g.name + " has row length ne[0] = " + std::to_string(t.ne[0]) +
         ", not a multiple of the block size " + u64s(g.block_size));
  }
  // n_elements is a multiple of block_size because ne[0] is.
  const uint64_t blocks = static_cast<uint64_t>(n_elements) / g.block_size;
  if (__builtin_mul_overflow(blocks, uint64_t{g.type_size}, &t.nbytes)) {
    fail(label() + " byte size overflows (" + u64s(blocks) + " blocks of " + u64s(g.type_size) + " bytes)");
  }
  t.offset = r.u64([&] { return "data offset of " + label(); });
  return t;
}

}  // namespace

void GgufFile::parse() {
  ByteReader r(base_, size_);
  if (size_ == 0) fail("empty input (0 bytes): not a GGUF file");

  // Header: magic, version, counts.
  const uint32_t magic = r.u32([] { return std::string("magic"); });
  if (magic != kMagic) {
    fail("bad magic " + quoted(std::string_view(reinterpret_cast<const char*>(base_), 4)) +
         " at offset 0, expected 'GGUF': not a GGUF file");
  }
  version_ = r.u32([] { return std::string("version"); });
  if (version_ != 0 && (version_ & 0xFFFF) == 0) {
    // gguf-py writes big-endian files with the magic in little-endian order and
    // every other field swapped, so the version's low 16 bits read as zero.
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", version_);
    fail("version field reads " + std::string(hex) +
         ": this is a big-endian GGUF file; only little-endian files are supported");
  }
  if (version_ == 1) fail("version 1 is obsolete and not supported (supported: 2, 3); re-convert the model");
  if (version_ == 0 || version_ > 3) fail("unsupported version " + u64s(version_) + " (supported: 2, 3)");

  const int64_t n_tensors = r.i64([] { return std::string("tensor count"); });
  const int64_t n_kv = r.i64([] { return std::string("metadata count"); });
  if (n_tensors < 0) fail("negative tensor count " + std::to_string(n_tensors) + " at offset 8");
  if (n_kv < 0) fail("negative metadata count " + std::to_string(n_kv) + " at offset 16");
  const uint64_t rest = r.remaining();
  if (static_cast<uint64_t>(n_kv) > rest / kMinKvBytes) {
    fail("header claims " + std::to_string(n_kv) + " metadata entries but only " + u64s(rest) +
         " bytes follow the header (each entry needs at least " + u64s(kMinKvBytes) + "; file size " +
         u64s(size_) + ")");
  }
  const uint64_t rest_after_kv = rest - static_cast<uint64_t>(n_kv) * kMinKvBytes;
  if (static_cast<uint64_t>(n_tensors) > rest_after_kv / kMinTensorInfoBytes) {
    fail("header claims " + std::to_string(n_tensors) + " tensors and " + std::to_string(n_kv) +
         " metadata entries but only " + u64s(rest) + " bytes follow the header (each tensor info needs at least " +
         u64s(kMinTensorInfoBytes) + "; file size " + u64s(size_) + ")");
  }

  // Metadata. Counts are bounded by the file size above, so reserving is safe.
  kv_.reserve(static_cast<size_t>(n_kv));
  for (int64_t k = 0; k < n_kv; ++k) {
    const std::string idx_s = "#" + std::to_string(k);
    std::string_view key = read_str(r, [&] { return "metadata key " + idx_s; });
    if (key.empty()) fail("metadata key " + idx_s + " at offset " + u64s(r.pos() - 8) + " is empty");
    require_utf8(key, [&] { return "metadata key " + idx_s; });
    std::string key_s(key);
    auto where = [&] { return "metadata key " + idx_s + " " + quoted(key_s); };
    if (kv_index_.count(key_s) != 0) {
      fail(where() + " is a duplicate of key #" + std::to_string(kv_index_[key_s]));
    }
    Value v = read_value(r, where);
    kv_index_.emplace(key_s, kv_.size());
    kv_.emplace_back(std::move(key_s), std::move(v));
  }
  alignment_ = alignment_from(find("general.alignment"));

  // Tensor infos.
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (int64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t = read_tensor_info(r, static_cast<size_t>(k));
    auto it = tensor_index_.find(t.name);
    if (it != tensor_index_.end()) {
      fail(tensor_label(t, static_cast<size_t>(k)) + " duplicates the name of tensor #" + std::to_string(it->second));
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // Data section: starts at the first multiple of the alignment after the
  // infos. pos <= size < 2^63 and alignment <= 2^20, so this cannot overflow.
  data_offset_ = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (tensors_.empty()) return;  // metadata-only files (e.g. llama.cpp vocab files) may end unpadded
  if (data_offset_ > size_) {
    fail("data section starts at offset " + u64s(data_offset_) + " (tensor infos end at " + u64s(r.pos()) +
         ", aligned to " + u64s(alignment_) + "), past the end of the file (file size " + u64s(size_) + ")");
  }
  const uint64_t data_size = size_ - data_offset_;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    TensorInfo& t = tensors_[k];
    if (t.offset % alignment_ != 0) {
      fail(tensor_label(t, k) + " has data offset " + u64s(t.offset) + ", not a multiple of the alignment " +
           u64s(alignment_));
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail(tensor_label(t, k) + " extends past end of file (data offset " + u64s(data_offset_) + " + offset " +
           u64s(t.offset) + " + " + u64s(t.nbytes) + " bytes > file size " + u64s(size_) + ")");
    }
    t.data = base_ + data_offset_ + t.offset;
  }
  std::vector<size_t> order(tensors_.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = tensors_[order[k - 1]];
    const TensorInfo& cur = tensors_[order[k]];
    if (cur.offset < prev.offset + prev.nbytes) {  // both in-file, so no overflow
      fail(tensor_label(cur, order[k]) + " at offset " + u64s(cur.offset) + " overlaps " +
           tensor_label(prev, order[k - 1]) + " which spans [" + u64s(prev.offset) + ", " +
           u64s(prev.offset + prev.nbytes) + ")");
    }
  }
}

}  // namespace mce::gguf
