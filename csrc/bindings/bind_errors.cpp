// Core exceptions -> Python exception classes. Each subclasses the builtin a
// Python user would expect (bad file or argument -> ValueError, unsupported ->
// NotImplementedError), so callers can catch either.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"
#include "core/error.h"

namespace py = pybind11;

namespace mce::py_bind {

void register_errors(py::module_& m) {
  // Order matters: pybind11 tries translators most-recent first, so the base
  // class is registered first and the subclasses after it.
  static py::exception<mce::Error> base(m, "Error", PyExc_RuntimeError);
  static py::exception<mce::FormatError> fmt(m, "GGUFFormatError", PyExc_ValueError);
  static py::exception<mce::UnsupportedError> unsup(m, "UnsupportedError", PyExc_NotImplementedError);
  static py::exception<mce::ArgumentError> arg(m, "ArgumentError", PyExc_ValueError);
  static py::exception<mce::ContextOverflowError> ovf(m, "ContextOverflowError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mce::FormatError& e) {
      PyErr_SetString(fmt.ptr(), e.what());
    } catch (const mce::UnsupportedError& e) {
      PyErr_SetString(unsup.ptr(), e.what());
    } catch (const mce::ArgumentError& e) {
      PyErr_SetString(arg.ptr(), e.what());
    } catch (const mce::ContextOverflowError& e) {
      PyErr_SetString(ovf.ptr(), e.what());
    } catch (const mce::Error& e) {
      PyErr_SetString(base.ptr(), e.what());
    }
  });
}

}  // namespace mce::py_bind
