// GgufFile lifetime (mmap / caller buffer) and typed access to metadata. The
// parsing and validation itself lives in gguf_parse.cpp.
#include "gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gguf/utf8.h"

namespace mce::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "UINT8";
    case ValueType::I8: return "INT8";
    case ValueType::U16: return "UINT16";
    case ValueType::I16: return "INT16";
    case ValueType::U32: return "UINT32";
    case ValueType::I32: return "INT32";
    case ValueType::F32: return "FLOAT32";
    case ValueType::BOOL: return "BOOL";
    case ValueType::STRING: return "STRING";
    case ValueType::ARRAY: return "ARRAY";
    case ValueType::U64: return "UINT64";
    case ValueType::I64: return "INT64";
    case ValueType::F64: return "FLOAT64";
  }
  return "unknown";
}

size_t Value::array_size() const {
  if (!is_array()) return 0;
  switch (elem_type) {
    case ValueType::STRING: return arr_s.size();
    case ValueType::F32: case ValueType::F64: return arr_f.size();
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64: return arr_i.size();
    default: return arr_u.size();
  }
}

namespace {

// Closes the descriptor on every path out of open(): the mapping keeps the
// file's pages reachable, the descriptor is not needed once mmap returns.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

[[noreturn]] void throw_os(const std::string& what, const std::string& path, int err) {
  throw OpenError("cannot " + what + ": " + std::strerror(err), err, path);
}

// Paths are bytes; messages must be valid UTF-8 to become Python strings.
std::string in_path(const std::string& path) { return " [in '" + escape_for_message(path, 4096) + "']"; }

}  // namespace

OpenError::OpenError(const std::string& reason, int os_errno, const std::string& path)
    : Error("GGUF: " + reason + in_path(path)), reason(reason), os_errno(os_errno), path(path) {}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  // open(2) would silently stop at an embedded NUL and open another file.
  if (path.find('\0') != std::string::npos) throw ArgumentError("GGUF: path contains a NUL byte");
  FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) {
    const int err = errno;  // before anything else can overwrite it
    throw_os("open", path, err);
  }
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) {
    const int err = errno;
    throw_os("stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) throw_os("read", path, EISDIR);
  if (!S_ISREG(st.st_mode)) throw OpenError("cannot read: not a regular file", EINVAL, path);
  if (st.st_size == 0) throw FormatError("GGUF: empty file (0 bytes): not a GGUF file" + in_path(path));
  if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    throw OpenError("cannot map: file too large for this platform", EFBIG, path);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  // PROT_READ + MAP_PRIVATE: nothing is ever written through the mapping. As
  // for every mmap-based loader (llama.cpp included), the file must not be
  // rewritten or truncated while mapped: such changes show through the
  // mapping after validation, and a truncation turns reads into SIGBUS.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    throw_os("map", path, err);
  }

  std::unique_ptr<GgufFile> f(new GgufFile());
  f->mapping_ = p;  // owned from here on: the destructor unmaps even if parse throws
  f->base_ = static_cast<const uint8_t*>(p);
  f->size_ = size;
  try {
    f->parse();
  } catch (const FormatError& e) {
    throw FormatError(std::string(e.what()) + in_path(path));
  }
  return f;
}

std::unique_ptr<GgufFile> GgufFile::from_buffer(const uint8_t* data, size_t size) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->base_ = data;
  f->size_ = size;
  f->parse();
  return f;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, static_cast<size_t>(size_));
}

const Value* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

bool is_unsigned(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

[[noreturn]] void wrong_type(const std::string& key, const Value& v, const char* wanted) {
  std::string got = value_type_name(v.type);
  if (v.is_array()) got += std::string(" of ") + value_type_name(v.elem_type);
  throw FormatError("GGUF: metadata key '" + key + "' has type " + got + ", expected " + wanted);
}

}  // namespace

int64_t GgufFile::get_int(const std::string& key, int64_t def) const {
  const Value* v = find(key);
  if (v == nullptr) return def;
  if (is_signed(v->type)) return v->i;
  if (is_unsigned(v->type)) {
    if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw FormatError("GGUF: metadata key '" + key + "' = " + std::to_string(v->u) +
                        " does not fit in int64");
    }
    return static_cast<int64_t>(v->u);
  }
  wrong_type(key, *v, "an integer");
}

double GgufFile::get_float(const std::string& key, double def) const {
  const Value* v = find(key);
  if (v == nullptr) return def;
  if (v->type == ValueType::F32 || v->type == ValueType::F64) return v->f;
  if (is_signed(v->type)) return static_cast<double>(v->i);
  if (is_unsigned(v->type)) return static_cast<double>(v->u);
  wrong_type(key, *v, "a number");
}

bool GgufFile::get_bool(const std::string& key, bool def) const {
  const Value* v = find(key);
  if (v == nullptr) return def;
  if (v->type == ValueType::BOOL) return v->b;
  wrong_type(key, *v, "BOOL");
}

std::string GgufFile::get_string(const std::string& key, const std::string& def) const {
  const Value* v = find(key);
  if (v == nullptr) return def;
  if (v->type == ValueType::STRING) return v->s;
  wrong_type(key, *v, "STRING");
}

void GgufFile::drop_pages(const uint8_t* p, size_t n) const {
  if (mapping_ == nullptr || p < base_ || n == 0 || p + n > base_ + size_) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace mce::gguf
