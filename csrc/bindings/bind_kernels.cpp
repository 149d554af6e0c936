// Kernel-level entry points for tests and tools: ISA selection, the reference
// decoders, activation quantizers and single dot products. Inputs are copied
// into aligned buffers (GGUF blocks hold 2-byte scales; a Python buffer may
// start anywhere), validated, and computed without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/kernel_args.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "model/weights.h"
#include "quant/dequantize.h"

namespace py = pybind11;

namespace mce::py_bind {

// Bytes of a bytes-like object or a numpy uint8 array, copied to 64-byte
// aligned storage (std::vector<float> storage is at least 4-byte aligned, and
// the extra padding keeps SIMD tails in bounds).
std::vector<float> copy_bytes(const py::object& data, size_t* nbytes) {
  py::buffer_info info;
  if (py::isinstance<py::bytes>(data) || py::isinstance<py::bytearray>(data) ||
      py::isinstance<py::memoryview>(data)) {
    info = py::buffer(data).request();
  } else if (py::isinstance<py::array>(data)) {
    py::array arr = py::array::ensure(data);
    if (arr.dtype().kind() != 'u' || arr.itemsize() != 1) {
      throw ArgumentError("data must be bytes or a numpy uint8 array, got dtype " +
                          std::string(py::str(arr.dtype())));
    }
    arr = py::array::ensure(arr, py::array::c_style);
    info = arr.request();
  } else {
    throw ArgumentError("data must be bytes or a numpy uint8 array");
  }
  *nbytes = static_cast<size_t>(info.size * info.itemsize);
  std::vector<float> buf((*nbytes + 3) / 4 + 16);
  if (*nbytes) std::memcpy(buf.data(), info.ptr, *nbytes);
  return buf;
}

namespace {

GgmlType checked_type(int64_t type_id) {
  if (type_id < 0 || type_id >= 40 || type_geometry(static_cast<uint32_t>(type_id)).name == nullptr) {
    throw ArgumentError("unknown ggml type id " + std::to_string(type_id));
  }
  return static_cast<GgmlType>(type_id);
}

std::string type_name(GgmlType t) { return type_geometry(static_cast<uint32_t>(t)).name; }

// Row of n elements of type t occupying exactly nbytes.
void check_row(GgmlType t, int64_t n, size_t nbytes) {
  const TypeGeometry g = type_geometry(static_cast<uint32_t>(t));
  if (n < 0 || n % g.block_size != 0) {
    throw ArgumentError("n = " + std::to_string(n) + " is not a multiple of the " + type_name(t) +
                        " block size " + std::to_string(g.block_size));
  }
  const size_t want = row_bytes(t, n);
  if (nbytes != want) {
    throw ArgumentError(std::to_string(n) + " elements of " + type_name(t) + " take " + std::to_string(want) +
                        " bytes, got " + std::to_string(nbytes));
  }
}

const KernelTable& table_arg(const py::object& isa) {
  if (isa.is_none()) return kernels();
  return kernels_for(isa_from_name(py::cast<std::string>(isa).c_str()));
}

// Activation format by type id or name ("q8_0", "Q8_K", ...).
GgmlType act_format(const py::object& fmt) {
  if (py::isinstance<py::str>(fmt)) {
    std::string s = py::cast<std::string>(fmt);
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K}) {
      if (s == type_name(t)) return t;
    }
    throw ArgumentError("unknown activation format '" + py::cast<std::string>(fmt) +
                        "' (expected F32, Q8_0, Q8_1 or Q8_K)");
  }
  return checked_type(py::cast<int64_t>(fmt));
}

// isa None: the reference decoder; otherwise that level's table entry.
py::array_t<float> dequantize(const py::object& data, int64_t type_id, int64_t n, const py::object& isa) {
  const GgmlType t = checked_type(type_id);
  size_t nbytes = 0;
  std::vector<float> src = copy_bytes(data, &nbytes);
  if (!can_dequantize(t)) throw UnsupportedError("dequantize: tensor type " + type_name(t) + " is not supported");
  check_row(t, n, nbytes);
  const DequantizeRowFn fn = isa.is_none() ? nullptr : table_arg(isa).dequantize_row[static_cast<uint32_t>(t)];
  if (!isa.is_none() && fn == nullptr) {
    throw UnsupportedError("dequantize: no " + py::cast<std::string>(isa) + " decoder for " + type_name(t));
  }
  py::array_t<float> out(n);
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (fn) {
      fn(src.data(), dst, n);
    } else {
      dequantize_row(t, src.data(), dst, n);
    }
  }
  return out;
}

py::bytes quantize_activations(const py::object& fmt, FloatArray x, const py::object& isa) {
  const GgmlType t = act_format(fmt);
  const KernelTable& k = table_arg(isa);
  const int64_t n = x.size();
  std::vector<float> out((act_row_bytes(t, n) + 3) / 4 + 16);
  {
    py::gil_scoped_release nogil;
    quantize_activation_row(k, t, x.data(), out.data(), n);
  }
  return py::bytes(reinterpret_cast<const char*>(out.data()), act_row_bytes(t, n));
}

float vec_dot(int64_t type_id, const py::object& weight, FloatArray x, const py::object& isa) {
  const GgmlType t = checked_type(type_id);
  const KernelTable& k = table_arg(isa);
  const WeightKernel& wk = k.weight[static_cast<uint32_t>(t)];
  if (wk.vec_dot == nullptr) throw UnsupportedError("no dot-product kernel for weight type " + type_name(t));
  const int64_t n = x.size();
  size_t nbytes = 0;
  std::vector<float> w = copy_bytes(weight, &nbytes);
  check_row(t, n, nbytes);
  std::vector<float> act((act_row_bytes(wk.act_type, n) + 3) / 4 + 16);
  float r;
  {
    py::gil_scoped_release nogil;
    quantize_activation_row(k, wk.act_type, x.data(), act.data(), n);
    r = wk.vec_dot(n, w.data(), act.data());
  }
  return r;
}

}  // namespace

// y[n_tok, w.rows] = x . W^T through the matmul driver, on the level `isa`
// (the process-wide level is switched for the call and restored).
py::array_t<float> run_matmul(const Weight& w, const FloatArray& x, int64_t n_tok, bool int8, int n_threads,
                              const py::object& isa) {
  py::array_t<float> y({n_tok, w.rows});
  const Isa previous = kernels().isa;
  if (!isa.is_none()) set_isa(isa_from_name(py::cast<std::string>(isa).c_str()));
  try {
    py::gil_scoped_release nogil;
    ThreadPool pool(n_threads);
    std::vector<uint8_t> act;
    matmul(w, x.data(), n_tok, y.mutable_data(), pool, act, int8 ? ActivationPrecision::Int8 : ActivationPrecision::Exact);
  } catch (...) {
    set_isa(previous);
    throw;
  }
  set_isa(previous);
  return y;
}

namespace {

// The whole matmul driver on one weight matrix given as GGUF rows: packing
// (pack=True, for the types that have an interleaved layout), activation
// conversion, the threaded split, and the rows left over past the packed
// groups. isa switches the process-wide level for the call.
py::array_t<float> matmul_rows(int64_t type_id, const py::object& weight, int64_t rows, FloatArray x, bool int8,
                               bool pack, int n_threads, const py::object& isa) {
  const GgmlType t = checked_type(type_id);
  if (x.ndim() != 2) throw ArgumentError("x must be a 2-D float32 array [n_tokens, cols]");
  const int64_t n_tok = x.shape(0), cols = x.shape(1);
  if (rows < 0) throw ArgumentError("rows must be >= 0");
  if (n_threads < 1 || n_threads > 64) throw ArgumentError("n_threads must be between 1 and 64");
  if (kernels().weight[static_cast<uint32_t>(t)].vec_dot == nullptr)
    throw UnsupportedError("no matmul kernel for weight type " + type_name(t));
  size_t nbytes = 0;
  std::vector<float> wbuf = copy_bytes(weight, &nbytes);
  const TypeGeometry g = type_geometry(static_cast<uint32_t>(t));
  if (cols % g.block_size != 0)
    throw ArgumentError("cols = " + std::to_string(cols) + " is not a multiple of the block size");
  if (nbytes != row_bytes(t, cols) * static_cast<size_t>(rows))
    throw ArgumentError("weight bytes do not match rows x cols of " + type_name(t));
  Weight w;
  w.type = t;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = row_bytes(t, cols);
  w.data = reinterpret_cast<const uint8_t*>(wbuf.data());
  ModelWeights owner;
  owner.output = w;
  if (pack) pack_weights(owner, nullptr);
  return run_matmul(owner.output, x, n_tok, int8, n_threads, isa);
}

// The matmul driver on one low-bit matrix given in the file layout of
// docs/FORMAT.md (codes as a little-endian bit string per row, binary16
// scales and minimums per group): packing into lookup tiles, per-token
// tables, the threaded split. int8=False takes the exact path (weights
// decoded to f32).
py::array_t<float> lowbit_matmul(int bits, int group, const py::object& codes, const py::object& scales,
                                 const py::object& mins, int64_t rows, FloatArray x, bool int8, int n_threads,
                                 const py::object& isa) {
  if (x.ndim() != 2) throw ArgumentError("x must be a 2-D float32 array [n_tokens, cols]");
  const int64_t n_tok = x.shape(0), cols = x.shape(1);
  LowBitFormat fmt;
  fmt.bits = bits;
  fmt.group = group;
  fmt.has_min = !mins.is_none();
  if (!lowbit_format_valid(fmt)) throw ArgumentError("bits must be 1..4 and group 32, 64 or 128");
  if (rows < 1 || cols < 1 || cols % group != 0) throw ArgumentError("rows >= 1 and cols a multiple of group required");
  if (n_threads < 1 || n_threads > 64) throw ArgumentError("n_threads must be between 1 and 64");
  size_t n_codes = 0, n_scales = 0, n_mins = 0;
  std::vector<float> cbuf = copy_bytes(codes, &n_codes), sbuf = copy_bytes(scales, &n_scales), mbuf;
  if (fmt.has_min) mbuf = copy_bytes(mins, &n_mins);
  const size_t side = size_t(rows) * size_t(cols / group) * 2;
  if (n_codes != lowbit_code_row_bytes(fmt, cols) * size_t(rows) || n_scales != side || (fmt.has_min && n_mins != side))
    throw ArgumentError("codes/scales/mins sizes do not match rows x cols of the format");
  Weight w;
  w.type = GgmlType::I8;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = lowbit_code_row_bytes(fmt, cols);
  w.data = reinterpret_cast<const uint8_t*>(cbuf.data());
  w.lowbit = fmt;
  w.lowbit_scale = reinterpret_cast<const uint16_t*>(sbuf.data());
  w.lowbit_min = fmt.has_min ? reinterpret_cast<const uint16_t*>(mbuf.data()) : nullptr;
  ModelWeights owner;
  owner.output = w;
  pack_weights(owner, nullptr);
  return run_matmul(owner.output, x, n_tok, int8, n_threads, isa);
}

// y = x W^T for a ternary matrix in the file layout (docs/FORMAT.md "Ternary":
// t2 codes or tl3 blocks), through the model's driver: int8 per-token
// activations (int8=True) or weights decoded to f32.
py::array_t<float> ternary_matmul(const py::object& codes, float scale, int64_t rows, FloatArray x, bool int8,
                                  int n_threads, const py::object& isa, const std::string& layout) {
  if (x.ndim() != 2) throw ArgumentError("x must be a 2-D float32 array [n_tokens, cols]");
  const int64_t n_tok = x.shape(0), cols = x.shape(1);
  const bool lut = layout == "tl3";
  if (!lut && layout != "t2") throw ArgumentError("layout must be 't2' or 'tl3', got '" + layout + "'");
  if (rows < 1 || cols < 1 || (!lut && cols % kTernaryChunk != 0))
    throw ArgumentError(lut ? "rows >= 1 and cols >= 1 required" : "rows >= 1 and cols a multiple of 128 required");
  if (n_threads < 1 || n_threads > 64) throw ArgumentError("n_threads must be between 1 and 64");
  size_t n_codes = 0;
  std::vector<float> cbuf = copy_bytes(codes, &n_codes);
  const size_t want = lut ? tl3_block_bytes(cols) * size_t(tl3_blocks(rows)) : ternary_row_bytes(cols) * size_t(rows);
  if (n_codes != want) throw ArgumentError("codes size does not match rows x cols");
  const uint8_t* data = reinterpret_cast<const uint8_t*>(cbuf.data());
  std::vector<AlignedBuffer> storage;
  const Weight w = lut ? ternary_lut_weight(data, rows, cols, scale, storage) : ternary_weight(data, rows, cols, scale);
  return run_matmul(w, x, n_tok, int8, n_threads, isa);
}

// y = x W^T for a W8A8 matrix (docs/FORMAT.md "W8A8": int8 rows and one f32
// scale per row), packed and multiplied by the model's driver: int8 per-token
// activations (int8=True) or weights decoded to f32.
py::array_t<float> w8a8_matmul(const py::object& weights, FloatArray scales, int64_t rows, FloatArray x, bool int8,
                               int n_threads, const py::object& isa) {
  if (x.ndim() != 2) throw ArgumentError("x must be a 2-D float32 array [n_tokens, cols]");
  const int64_t n_tok = x.shape(0), cols = x.shape(1);
  if (rows < 1 || cols < 1 || cols > kW8A8MaxCols)
    throw ArgumentError("rows >= 1 and 1 <= cols <= " + std::to_string(kW8A8MaxCols) + " required");
  if (n_threads < 1 || n_threads > 64) throw ArgumentError("n_threads must be between 1 and 64");
  if (scales.ndim() != 1 || scales.shape(0) != rows) throw ArgumentError("scales must be 1-D with one value per row");
  size_t n_bytes = 0;
  std::vector<float> wbuf = copy_bytes(weights, &n_bytes);
  if (n_bytes != size_t(rows) * size_t(cols)) throw ArgumentError("weights size does not match rows x cols");
  std::vector<float> sbuf(scales.data(), scales.data() + rows);
  ModelWeights owner;
  owner.output = w8a8_weight(reinterpret_cast<const int8_t*>(wbuf.data()), sbuf.data(), rows, cols, "weights");
  pack_weights(owner, nullptr);
  return run_matmul(owner.output, x, n_tok, int8, n_threads, isa);
}

void check_same_size(const FloatArray& a, const FloatArray& b) {
  if (a.ndim() != 1 || b.ndim() != 1 || a.size() != b.size()) {
    throw ArgumentError("expected two 1-D float32 arrays of equal length, got sizes " +
                        std::to_string(a.size()) + " and " + std::to_string(b.size()));
  }
}

}  // namespace

void register_kernels(py::module_& m) {
  m.def("isa", [] { return std::string(isa_name(kernels().isa)); },
        "Name of the kernel level in use (scalar, avx2, avx512, neon, neon_dotprod).");
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::NeonDotprod}) {
      if (isa_supported(isa)) out.emplace_back(isa_name(isa));
    }
    return out;
  }, "Kernel levels this build can run on this CPU, lowest first.");
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name.c_str())); }, py::arg("name"),
        "Switch the kernel level for the whole process (tests, benchmarks).");
  m.def("dequantize", &dequantize, py::arg("data"), py::arg("type_id"), py::arg("n"), py::arg("isa") = py::none(),
        "Decode n elements of ggml type type_id from bytes into a float32 array, with the reference "
        "decoder or, given isa, that kernel level's decoder.");
  m.def("quantize_activations", &quantize_activations, py::arg("fmt"), py::arg("x"), py::arg("isa") = py::none(),
        "Quantize a float32 row into an activation format (F32, Q8_0, Q8_1, Q8_K); returns bytes.");
  m.def("vec_dot", &vec_dot, py::arg("type_id"), py::arg("weight"), py::arg("x"), py::arg("isa") = py::none(),
        "Dot product of one weight row (bytes of type type_id) with a float32 vector, which is first "
        "quantized into the weight type's activation format, as a matmul does.");
  m.def("matmul", &matmul_rows, py::arg("type_id"), py::arg("weight"), py::arg("rows"), py::arg("x"),
        py::arg("int8") = true, py::arg("pack") = true, py::arg("n_threads") = 1, py::arg("isa") = py::none(),
        "y[n_tok, rows] = x . W^T through the model's matmul driver (packing, threads, row tails).");
  m.def("lowbit_matmul", &lowbit_matmul, py::arg("bits"), py::arg("group"), py::arg("codes"), py::arg("scales"),
        py::arg("mins"), py::arg("rows"), py::arg("x"), py::arg("int8") = true, py::arg("n_threads") = 1,
        py::arg("isa") = py::none(),
        "y[n_tok, rows] = x . W^T for a low-bit matrix in the file layout (docs/FORMAT.md): table "
        "lookup with int8 tables (int8=True) or weights decoded to f32 (int8=False). mins=None: symmetric.");
  m.def("ternary_matmul", &ternary_matmul, py::arg("codes"), py::arg("scale"), py::arg("rows"), py::arg("x"),
        py::arg("int8") = true, py::arg("n_threads") = 1, py::arg("isa") = py::none(), py::arg("layout") = "t2",
        "y[n_tok, rows] = x . W^T for a ternary matrix (layout 't2' codes or 'tl3' blocks) in the file layout "
        "(docs/FORMAT.md): int8 per-token activations and integer dots (int8=True), or weights decoded to f32.");
  m.def("w8a8_matmul", &w8a8_matmul, py::arg("weights"), py::arg("scales"), py::arg("rows"), py::arg("x"),
        py::arg("int8") = true, py::arg("n_threads") = 1, py::arg("isa") = py::none(),
        "y[n_tok, rows] = x . W^T for a W8A8 matrix (int8 weights as bytes or uint8 [rows * cols], f32 scale per "
        "row; docs/FORMAT.md): int8 per-token activations and integer dots (int8=True), or weights decoded to f32.");
  m.def("set_lowbit_gemm", [](const std::string& path) {
    if (path == "auto") set_lowbit_gemm(LowBitGemm::Auto);
    else if (path == "lut") set_lowbit_gemm(LowBitGemm::Lut);
    else if (path == "int8") set_lowbit_gemm(LowBitGemm::Int8);
    else throw ArgumentError("low-bit GEMM path must be 'auto', 'lut' or 'int8', not '" + path + "'");
  }, py::arg("path"),
     "Process-wide path of low-bit batches (prefill): 'auto' (by bits and batch size), 'lut' (table "
     "lookup) or 'int8' (tiles converted to Q4_1x8 groups, int8 GEMM). Decode always looks up.");
  m.def("lut_tables", [](FloatArray x, int group, const py::object& isa) {
    if (x.ndim() != 1 || x.size() % group != 0 || !(group == 32 || group == 64 || group == 128))
      throw ArgumentError("x must be 1-D with a length that is a multiple of group (32, 64 or 128)");
    const KernelTable& k = table_arg(isa);
    const int64_t K = x.size();
    py::array_t<int8_t> tables({K / 4, int64_t(16)});
    py::array_t<float> half_sigma(K / group), xsum(K / group);
    {
      py::gil_scoped_release nogil;
      k.lut_build(x.data(), K, group, tables.mutable_data(), half_sigma.mutable_data(), xsum.mutable_data());
    }
    return py::make_tuple(tables, half_sigma, xsum);
  }, py::arg("x"), py::arg("group"), py::arg("isa") = py::none(),
     "One token's lookup tables (int8 [K/4, 16]), half table scales and group sums (LutBuildFn).");
  m.def("dot_f32", [](FloatArray a, FloatArray b, const py::object& isa) {
    check_same_size(a, b);
    const KernelTable& k = table_arg(isa);
    py::gil_scoped_release nogil;
    return k.dot_f32(a.size(), a.data(), b.data());
  }, py::arg("a"), py::arg("b"), py::arg("isa") = py::none());
  m.def("axpy_f32", [](float alpha, FloatArray x, FloatArray y, const py::object& isa) {
    check_same_size(x, y);
    const KernelTable& k = table_arg(isa);
    py::array_t<float> out(y.size());
    std::memcpy(out.mutable_data(), y.data(), static_cast<size_t>(y.size()) * sizeof(float));
    float* o = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      k.axpy_f32(x.size(), alpha, x.data(), o);
    }
    return out;
  }, py::arg("a"), py::arg("x"), py::arg("y"), py::arg("isa") = py::none(),
     "Returns y + a * x (y is not modified).");
}

}  // namespace mce::py_bind
