// Reader for GGUF v2/v3 files (ggml/include/gguf.h is the format's spec).
// This is the one place untrusted bytes are parsed: every count, length, type,
// dimension and offset is checked against the bytes actually present before it
// is used, and any violation throws mce::FormatError naming what was wrong and
// where. The file is memory-mapped; tensor data is never copied.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "quant/ggml_types.h"

namespace mce::gguf {

// gguf_type: the type tag of a metadata value.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

// One metadata value. Scalars fill exactly one of the scalar fields (by type:
// unsigned -> u, signed -> i, float -> f, bool -> b, string -> s). Arrays set
// elem_type and fill exactly one of the vectors, with the same rule.
struct Value {
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // meaningful when type == ARRAY
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  std::string s;
  std::vector<uint64_t> arr_u;
  std::vector<int64_t> arr_i;
  std::vector<double> arr_f;
  std::vector<std::string> arr_s;   // STRING arrays; BOOL arrays go to arr_u

  bool is_array() const { return type == ValueType::ARRAY; }
  size_t array_size() const;
};

// Printable name of a value type as gguf-py spells it (GGUFValueType): "UINT8",
// "FLOAT32", "STRING", ... ; "unknown" for ids outside the enum.
const char* value_type_name(ValueType t);

// The file could not be opened or mapped. Carries errno so the binding can
// raise the matching OSError subclass (FileNotFoundError, PermissionError...).
// what() is "GGUF: <reason> [in '<path>']".
struct OpenError : Error {
  OpenError(const std::string& reason, int os_errno, const std::string& path);
  std::string reason;  // e.g. "cannot open: No such file or directory"
  int os_errno;
  std::string path;
};

// Largest general.alignment accepted (1 MiB). The format allows any power of
// two that fits a u32, but writers use 32 to a few KiB; a larger value is a
// broken or hostile file, and the cap keeps padding arithmetic trivially safe.
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;           // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr; // points into the mapping (or the caller's buffer)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Maps and validates the file at path. Throws FormatError / Error.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Validates a buffer the caller keeps alive for the object's lifetime
  // (used by the fuzzer and by tests).
  static std::unique_ptr<GgufFile> from_buffer(const uint8_t* data, size_t size);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  // Typed getters: throw FormatError when the key is present with another type
  // family; return the default when absent.
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key, double def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // Tells the kernel that the pages wholly inside [p, p + n) of the mapping
  // will not be read soon (a copy of them was made), so they leave this
  // process's resident set; a later read maps them in again from the file.
  // No-op for caller buffers.
  void drop_pages(const uint8_t* p, size_t n) const;
  const TensorInfo* find_tensor(const std::string& name) const;

 private:
  GgufFile() = default;
  void parse();

  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;   // non-null when we own an mmap
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace mce::gguf
