// _core.GGUFFile: the validated GGUF reader as a Python object. Thin: metadata
// becomes plain Python values (built once, on first access), tensor data is a
// read-only numpy view into the mapping that keeps the file object alive.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "gguf/gguf_file.h"

namespace py = pybind11;

namespace mce::py_bind {

namespace {

using gguf::GgufFile;
using gguf::TensorInfo;
using gguf::Value;
using gguf::ValueType;

struct PyGgufFile {
  // from_bytes keeps its private copy here; a vector's heap block does not move
  // when the vector does, so pointers into it stay valid.
  std::vector<uint8_t> buffer;
  std::unique_ptr<GgufFile> file;
  py::object metadata_cache;
  py::object types_cache;
  py::object tensors_cache;
};

py::str utf8(const std::string& s) {
  // Every string was checked as strict UTF-8 by the parser.
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict"));
}

py::object scalar_to_py(ValueType t, const Value& v) {
  switch (t) {
    case ValueType::U8: case ValueType::U16: case ValueType::U32: case ValueType::U64:
      return py::int_(v.u);
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64:
      return py::int_(v.i);
    case ValueType::F32: case ValueType::F64:
      return py::float_(v.f);
    case ValueType::BOOL:
      return py::bool_(v.b);
    case ValueType::STRING:
      return utf8(v.s);
    default:
      throw mce::Error("GGUF binding: unexpected scalar type");
  }
}

py::object array_to_py(const Value& v) {
  const size_t n = v.array_size();
  py::list out(n);
  for (size_t k = 0; k < n; ++k) {
    switch (v.elem_type) {
      case ValueType::STRING: out[k] = utf8(v.arr_s[k]); break;
      case ValueType::F32: case ValueType::F64: out[k] = py::float_(v.arr_f[k]); break;
      case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64:
        out[k] = py::int_(v.arr_i[k]);
        break;
      case ValueType::BOOL: out[k] = py::bool_(v.arr_u[k] != 0); break;
      default: out[k] = py::int_(v.arr_u[k]); break;
    }
  }
  return std::move(out);
}

py::object value_to_py(const Value& v) { return v.is_array() ? array_to_py(v) : scalar_to_py(v.type, v); }

py::dict build_metadata(const GgufFile& f) {
  py::dict d;
  for (const auto& [key, value] : f.metadata()) d[utf8(key)] = value_to_py(value);
  return d;
}

py::dict build_types(const GgufFile& f) {
  py::dict d;
  for (const auto& [key, value] : f.metadata()) {
    py::object elem = value.is_array() ? py::object(py::str(gguf::value_type_name(value.elem_type))) : py::none();
    d[utf8(key)] = py::make_tuple(py::str(gguf::value_type_name(value.type)), elem);
  }
  return d;
}

py::list build_tensors(const GgufFile& f) {
  py::list out;
  for (const TensorInfo& t : f.tensors()) {
    py::list shape;
    for (uint32_t d = 0; d < t.n_dims; ++d) shape.append(py::int_(t.ne[d]));
    const uint32_t id = static_cast<uint32_t>(t.type);
    py::dict info;
    info["name"] = utf8(t.name);
    info["shape"] = shape;
    info["type"] = py::int_(id);
    info["type_name"] = py::str(type_geometry(id).name);
    info["offset"] = py::int_(t.offset);
    info["nbytes"] = py::int_(t.nbytes);
    out.append(info);
  }
  return out;
}

// Paths arrive as str, bytes or os.PathLike; os.fsencode gives the bytes the
// OS expects, including undecodable names round-tripped via surrogateescape.
std::string fs_path(const py::object& path) {
  return py::module_::import("os").attr("fsencode")(path).cast<std::string>();
}

std::unique_ptr<PyGgufFile> open_path(const py::object& path) {
  auto self = std::make_unique<PyGgufFile>();
  const std::string p = fs_path(path);
  py::gil_scoped_release nogil;
  self->file = GgufFile::open(p);
  return self;
}

std::unique_ptr<PyGgufFile> open_bytes(const py::object& obj) {
  auto self = std::make_unique<PyGgufFile>();
  Py_buffer view;
  if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  const auto* src = static_cast<const uint8_t*>(view.buf);
  self->buffer.assign(src, src + view.len);
  PyBuffer_Release(&view);
  py::gil_scoped_release nogil;
  self->file = GgufFile::from_buffer(self->buffer.data(), self->buffer.size());
  return self;
}

template <class Get>
py::object typed_get(const PyGgufFile& self, const std::string& key, const py::object& def, Get get) {
  if (self.file->find(key) == nullptr) return def;
  return py::cast(get(*self.file, key));
}

// OpenError carries errno: raise the OSError subclass Python users expect
// (FileNotFoundError, PermissionError, IsADirectoryError, ...), built like
// Python's own: OSError(errno, message, filename) picks the subclass and
// prints "[Errno 2] GGUF: cannot open: No such file or directory: 'x.gguf'".
void translate_open_error(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const gguf::OpenError& e) {
    const std::string text = "GGUF: " + e.reason;
    py::object msg = py::reinterpret_steal<py::object>(
        PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "backslashreplace"));
    py::object fname = py::reinterpret_steal<py::object>(
        PyUnicode_DecodeFSDefaultAndSize(e.path.data(), static_cast<Py_ssize_t>(e.path.size())));
    if (!msg || !fname) return;  // the decoding error stays set
    PyObject* exc = PyObject_CallFunction(PyExc_OSError, "iOO", e.os_errno, msg.ptr(), fname.ptr());
    if (exc == nullptr) return;
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    Py_DECREF(exc);
  }
}

}  // namespace

void register_gguf(py::module_& m) {
  py::register_exception_translator(translate_open_error);

  m.def(
      "ggml_type_info",
      [](uint32_t type_id) -> py::object {
        const TypeGeometry g = type_geometry(type_id);
        if (g.name == nullptr) return py::none();
        return py::make_tuple(py::str(g.name), g.block_size, g.type_size);
      },
      py::arg("type_id"),
      "(name, block_size, type_size) of a ggml type id, or None if the id is unknown.");

  py::class_<PyGgufFile>(m, "GGUFFile",
                         "A validated, memory-mapped GGUF v2/v3 file. Raises GGUFFormatError for any\n"
                         "malformed content and OSError (FileNotFoundError, ...) when the file cannot be opened.")
      .def(py::init(&open_path), py::arg("path"))
      .def_static("from_bytes", &open_bytes, py::arg("data"),
                  "Parse GGUF content from a bytes-like object (copied and kept inside the object).")
      .def_property_readonly("version", [](const PyGgufFile& s) { return s.file->version(); })
      .def_property_readonly("alignment", [](const PyGgufFile& s) { return s.file->alignment(); })
      .def_property_readonly("data_offset", [](const PyGgufFile& s) { return s.file->data_offset(); })
      .def_property_readonly("file_size", [](const PyGgufFile& s) { return s.file->file_size(); })
      .def_property_readonly(
          "metadata",
          [](PyGgufFile& s) {
            if (!s.metadata_cache) s.metadata_cache = build_metadata(*s.file);
            return s.metadata_cache;
          },
          "dict key -> int | float | bool | str | list, in file order (built once).")
      .def_property_readonly(
          "metadata_types",
          [](PyGgufFile& s) {
            if (!s.types_cache) s.types_cache = build_types(*s.file);
            return s.types_cache;
          },
          "dict key -> (type name, element type name or None), names as in gguf.GGUFValueType.")
      .def_property_readonly(
          "tensors",
          [](PyGgufFile& s) {
            if (!s.tensors_cache) s.tensors_cache = build_tensors(*s.file);
            return s.tensors_cache;
          },
          "list of dicts: name, shape (ggml order), type (id), type_name, offset (relative to the data\n"
          "section), nbytes.")
      .def(
          "tensor_data",
          [](py::object self_obj, const std::string& name) {
            const PyGgufFile& s = self_obj.cast<const PyGgufFile&>();
            const TensorInfo* t = s.file->find_tensor(name);
            if (t == nullptr) throw py::key_error("GGUF: no tensor named '" + name + "'");
            // Zero-copy view; `base` keeps this object (and so the mapping) alive.
            py::array_t<uint8_t> a({static_cast<py::ssize_t>(t->nbytes)}, {py::ssize_t{1}}, t->data, self_obj);
            a.attr("setflags")(py::arg("write") = false);  // the mapping is PROT_READ
            return a;
          },
          py::arg("name"), "Raw bytes of a tensor as a read-only uint8 numpy view (no copy).")
      .def(
          "get_int",
          [](const PyGgufFile& s, const std::string& key, const py::object& def) {
            return typed_get(s, key, def, [](const GgufFile& f, const std::string& k) { return f.get_int(k, 0); });
          },
          py::arg("key"), py::arg("default") = py::none())
      .def(
          "get_float",
          [](const PyGgufFile& s, const std::string& key, const py::object& def) {
            return typed_get(s, key, def, [](const GgufFile& f, const std::string& k) { return f.get_float(k, 0); });
          },
          py::arg("key"), py::arg("default") = py::none())
      .def(
          "get_bool",
          [](const PyGgufFile& s, const std::string& key, const py::object& def) {
            return typed_get(s, key, def,
                             [](const GgufFile& f, const std::string& k) { return f.get_bool(k, false); });
          },
          py::arg("key"), py::arg("default") = py::none())
      .def(
          "get_string",
          [](const PyGgufFile& s, const std::string& key, const py::object& def) {
            return typed_get(s, key, def,
                             [](const GgufFile& f, const std::string& k) { return f.get_string(k, ""); });
          },
          py::arg("key"), py::arg("default") = py::none())
      .def("__repr__", [](const PyGgufFile& s) {
        return "<GGUFFile v" + std::to_string(s.file->version()) + ", " + std::to_string(s.file->metadata().size()) +
               " keys, " + std::to_string(s.file->tensors().size()) + " tensors, " +
               std::to_string(s.file->file_size()) + " bytes>";
      });
}

}  // namespace mce::py_bind
