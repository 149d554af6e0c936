// Each binding file registers one concern on the module. Bindings are thin:
// types in, types out, the GIL released around compute.
#pragma once
#include <pybind11/pybind11.h>

namespace mce::py_bind {
void register_errors(pybind11::module_& m);
void register_gguf(pybind11::module_& m);
void register_kernels(pybind11::module_& m);
void register_minifloat(pybind11::module_& m);
void register_model(pybind11::module_& m);
void register_bench(pybind11::module_& m);
}  // namespace mce::py_bind
