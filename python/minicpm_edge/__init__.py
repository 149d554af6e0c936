"""minicpm-edge: an on-device LLM runtime for GGUF models."""
# Developer builds place the compiled `_core` module in a build directory that
# is also on sys.path; extend_path lets the package span both.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

_CORE_NAMES = ("Error", "GGUFFormatError", "UnsupportedError", "ArgumentError", "ContextOverflowError")
__all__ = ["Model", *_CORE_NAMES, "__version__"]


def __getattr__(name):
    # Imported on first use, so that `minicpm_edge.convert` works without
    # loading the compiled core.
    if name == "Model":
        from .model import Model
        return Model
    if name in _CORE_NAMES:
        from . import _core
        return getattr(_core, name)
    raise AttributeError(f"module 'minicpm_edge' has no attribute {name!r}")
