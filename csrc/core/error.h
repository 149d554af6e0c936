// Exceptions thrown by the core. The bindings map each to a Python exception
// class, so every failure on bad input reaches the user as a sentence, never an
// abort.
#pragma once
#include <stdexcept>
#include <string>

namespace mce {

// Base of every error the core raises on purpose.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A file that is not a well-formed GGUF (truncated, hostile counts, bad types...).
struct FormatError : Error {
  using Error::Error;
};

// A well-formed file asking for something this build cannot do (architecture, type).
struct UnsupportedError : Error {
  using Error::Error;
};

// A caller passed a value outside the documented range (sampling params, shapes...).
struct ArgumentError : Error {
  using Error::Error;
};

// More tokens than the KV cache was allocated for.
struct ContextOverflowError : Error {
  using Error::Error;
};

}  // namespace mce
