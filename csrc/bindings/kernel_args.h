// Helpers the kernel-level bindings share (bind_kernels.cpp, bind_minifloat.cpp).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "model/weights.h"

namespace mce::py_bind {

using FloatArray = pybind11::array_t<float, pybind11::array::c_style | pybind11::array::forcecast>;

// Bytes of a bytes-like object or a numpy uint8 array, copied to aligned
// storage; *nbytes receives their count.
std::vector<float> copy_bytes(const pybind11::object& data, size_t* nbytes);

// y[n_tok, w.rows] = x . W^T through the matmul driver, on the level `isa`
// (None: the current one).
pybind11::array_t<float> run_matmul(const Weight& w, const FloatArray& x, int64_t n_tok, bool int8, int n_threads,
                                    const pybind11::object& isa);

}  // namespace mce::py_bind
