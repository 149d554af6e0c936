// Minifloat matrices (docs/FORMAT.md "Minifloats") for tests and tools: the
// runtime's decoding of codes and scales in the file layout, and the matmul
// driver on one such matrix. Inputs are copied and validated as a file's are.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/kernel_args.h"
#include "core/error.h"
#include "model/minifloat_weight.h"

namespace py = pybind11;

namespace mce::py_bind {
namespace {

struct OwnedMatrix {
  std::vector<float> codes, scales;
  Weight w;
  ModelWeights owner;  // keeps the mf8 copy
};

// fmt = [exp_bits, man_bits, block, scaling] as in the file's descriptor.
void make_matrix(OwnedMatrix& m, const std::vector<int>& fmt, const py::object& codes, const py::object& scales,
                 float tensor_scale, int64_t rows, int64_t cols, bool pack) {
  if (fmt.size() != 4) throw ArgumentError("fmt must be [exp_bits, man_bits, block, scaling]");
  MiniFloatFormat f;
  f.exp_bits = fmt[0];
  f.man_bits = fmt[1];
  f.block = fmt[2];
  if (fmt[3] < 0 || fmt[3] > 2) throw ArgumentError("scaling must be 0 (f16), 1 (E8M0) or 2 (NVFP4)");
  f.scaling = MfScaling(fmt[3]);
  f.tensor_scale = tensor_scale;
  if (!f.valid()) throw ArgumentError("not a supported minifloat format");
  if (rows < 1 || cols < 1 || cols % f.block != 0 || cols % 4 != 0)
    throw ArgumentError("rows >= 1 and cols a multiple of the block required");
  size_t n_codes = 0, n_scales = 0;
  m.codes = copy_bytes(codes, &n_codes);
  m.scales = copy_bytes(scales, &n_scales);
  if (n_codes != f.code_row_bytes(cols) * size_t(rows) || n_scales != f.scale_row_bytes(cols) * size_t(rows))
    throw ArgumentError("codes/scales sizes do not match rows x cols of the format");
  m.w = minifloat_weight(f, reinterpret_cast<const uint8_t*>(m.codes.data()),
                         reinterpret_cast<const uint8_t*>(m.scales.data()), rows, cols, "argument");
  if (pack) pack_weight(m.w, nullptr, nullptr, m.owner.packed_storage);
}

py::array_t<float> decode(const std::vector<int>& fmt, const py::object& codes, const py::object& scales,
                          float tensor_scale, int64_t rows, int64_t cols, bool pack) {
  OwnedMatrix m;
  make_matrix(m, fmt, codes, scales, tensor_scale, rows, cols, pack);
  py::array_t<float> out({rows, cols});
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    for (int64_t r = 0; r < rows; ++r) embedding_row(m.w, r, dst + r * cols);
  }
  return out;
}

py::array_t<float> matmul(const std::vector<int>& fmt, const py::object& codes, const py::object& scales,
                          float tensor_scale, int64_t rows, FloatArray x, bool int8, int n_threads,
                          const py::object& isa) {
  if (x.ndim() != 2) throw ArgumentError("x must be a 2-D float32 array [n_tokens, cols]");
  if (n_threads < 1 || n_threads > 64) throw ArgumentError("n_threads must be between 1 and 64");
  OwnedMatrix m;
  make_matrix(m, fmt, codes, scales, tensor_scale, rows, x.shape(1), true);
  return run_matmul(m.w, x, x.shape(0), int8, n_threads, isa);
}

// What the matrix runs as after packing: "q8_0" (exactly a Q8_0 matrix),
// "mf8" (int8 rows with two scales per 32 inputs) or "f32" (decoded by table).
std::string runs_as(const std::vector<int>& fmt, const py::object& codes, const py::object& scales, float tensor_scale,
                    int64_t rows, int64_t cols) {
  OwnedMatrix m;
  make_matrix(m, fmt, codes, scales, tensor_scale, rows, cols, true);
  return m.w.type == GgmlType::Q8_0 ? "q8_0" : m.w.mf8 != nullptr ? "mf8" : "f32";
}

}  // namespace

void register_minifloat(py::module_& m) {
  m.def("minifloat_runs_as", &runs_as, py::arg("fmt"), py::arg("codes"), py::arg("scales"),
        py::arg("tensor_scale") = 1.0f, py::arg("rows"), py::arg("cols"),
        "'q8_0', 'mf8' or 'f32': the layout a minifloat matrix runs from after packing.");
  m.def("minifloat_decode", &decode, py::arg("fmt"), py::arg("codes"), py::arg("scales"),
        py::arg("tensor_scale") = 1.0f, py::arg("rows"), py::arg("cols"), py::arg("pack") = false,
        "Weights [rows, cols] of a minifloat matrix in the file layout (fmt = [exp_bits, man_bits, block, "
        "scaling]); pack=True decodes what the integer-valued formats run from after packing (a Q8_0 "
        "matrix, or mf8 rows).");
  m.def("minifloat_matmul", &matmul, py::arg("fmt"), py::arg("codes"), py::arg("scales"),
        py::arg("tensor_scale") = 1.0f, py::arg("rows"), py::arg("x"), py::arg("int8") = true,
        py::arg("n_threads") = 1, py::arg("isa") = py::none(),
        "y = x W^T for a minifloat matrix in the file layout, through the model's matmul driver.");
}

}  // namespace mce::py_bind
