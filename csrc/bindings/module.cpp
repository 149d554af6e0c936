#include "bindings/bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "minicpm-edge C++ core";
  mce::py_bind::register_errors(m);
  mce::py_bind::register_gguf(m);
  mce::py_bind::register_kernels(m);
  mce::py_bind::register_minifloat(m);
  mce::py_bind::register_model(m);
  mce::py_bind::register_bench(m);
}
