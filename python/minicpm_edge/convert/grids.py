"""Weight value grids compared by perplexity: integers with group scales and the
minifloat / MX / NVFP4 formats (minifloat.py), as "fake quantization" -- each
decoder-layer matrix rounded to the grid (RTN, or GPTQ onto it) and written back as
F32, so every grid runs the same exact arithmetic and only the values differ. The
minifloat grids other than E2M0 are also file types of the runtime, with the same
values (minifloat_type.py), and so are the integer ones at 1-4 bits (w{b}g{G}[s]).

Names: int{b}g{G} (asymmetric: scale and zero point) and int{b}g{G}s (symmetric), b up
to 8; {e4m3,e5m2,e3m2,e2m3,e2m1,e2m0}g{G} (f16 scale per group, amax to the largest
value); mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4 (OCP MX: blocks of 32,
E8M0 scale); nvfp4 (blocks of 16, E4M3 scale, f32 tensor scale). Bits per weight count
the scales: b + 16/G (+16/G for a zero point), MX b + 8/32, NVFP4 4 + 8/16.
"""
from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import minifloat as mf
from .errors import ConvertError
from .gptq import gptq_quantize
from .lowbit import LowBitType, dequantize, quantize_rtn
from .quantize import is_layer_matrix


@dataclass(frozen=True)
class Grid:
    name: str
    family: str          # "integer", "minifloat", "MX", "NVFP4"
    element_bits: int
    bpw: float
    group: int
    quantize: object     # (w [M, K], Hessian [K, K] or None) -> values [M, K]: GPTQ, or RTN without one


_INT = re.compile(r"int(\d)g(\d+)(s?)$")
_FLOAT = re.compile(r"(e\dm\d)g(\d+)$")
FORMS = ("int{b}g{G}[s] (b = 2..8), {e4m3,e5m2,e3m2,e2m3,e2m1,e2m0}g{G}, mxfp8_e4m3, mxfp8_e5m2, "
         "mxfp6_e3m2, mxfp6_e2m3, mxfp4, nvfp4 (G = 16, 32, 64 or 128)")
GROUPS = (16, 32, 64, 128)


def _scaled(name, family, fmt, group, bpw, scale, rtn) -> Grid:
    def values(w, h):
        return rtn(w) if h is None else mf.gptq_values(w, h, fmt, group, scale(w))
    return Grid(name, family, fmt.bits, bpw, group, values)


def grid(name: str) -> Grid:
    key = str(name).strip().lower()
    if m := _INT.match(key):
        bits, group = int(m.group(1)), int(m.group(2))
        if 2 <= bits <= 8 and group in GROUPS:
            t = LowBitType(bits, group, bool(m.group(3)))

            def values(w, h):
                codes = quantize_rtn(w, t, key) if h is None else gptq_quantize(w, h, t, what=key)
                return dequantize(*codes, t)
            return Grid(key, "integer", bits, bits + 16 / group * (1 if t.symmetric else 2), group, values)
    elif (m := _FLOAT.match(key)) and m.group(1) in mf.FORMATS and int(m.group(2)) in GROUPS:
        fmt, g = mf.FORMATS[m.group(1)], int(m.group(2))
        return _scaled(key, "minifloat", fmt, g, fmt.bits + 16 / g, lambda w: (lambda v: mf.group_scale(v, fmt)),
                       lambda w: mf.group_scaled(w, fmt, g))
    elif key == "mxfp4" or (key.startswith("mxfp") and key[6:] in mf.EMAX and key[:6] in ("mxfp8_", "mxfp6_")
                            and mf.FORMATS[key[6:]].bits == int(key[4])):
        fmt = mf.E2M1 if key == "mxfp4" else mf.FORMATS[key[6:]]
        return _scaled(key, "MX", fmt, 32, fmt.bits + 8 / 32, lambda w: (lambda v: mf.mx_scale(v, fmt)),
                       lambda w: mf.mx(w, fmt))
    elif key == "nvfp4":
        return _scaled(key, "NVFP4", mf.E2M1, 16, 4 + 8 / 16,
                       lambda w: (lambda v, s_t=mf.nvfp4_tensor_scale(w): mf.nvfp4_scale(v, s_t)), mf.nvfp4)
    raise ConvertError(f"unknown grid {name!r}: use {FORMS}")


class FakeQuant:
    """A converter Rewrite: the decoder-layer matrices replaced by their values on
    ``g`` (GPTQ with the calibration's Hessians when ``calibration`` is given)."""

    def __init__(self, g: Grid, calibration=None):
        self.grid, self.calibration = g, calibration

    def touches(self, name: str) -> bool:
        return name.startswith("blk.") and name.endswith(".weight") and not name.endswith("_norm.weight")

    def apply(self, name: str, values: np.ndarray) -> np.ndarray:
        if values.ndim != 2 or not is_layer_matrix(name, values.shape) or values.shape[1] % self.grid.group:
            return values
        stats = None if self.calibration is None else self.calibration.for_tensor(name)
        return self.grid.quantize(np.asarray(values, np.float32), None if stats is None else stats.hessian)


def fake_quantized(src, out, g: Grid, calibration=None, progress: bool = False) -> Path:
    """An F32 GGUF of ``src`` whose decoder-layer matrices hold their values on grid ``g``."""
    from .gguf_source import retype_gguf
    from .quantize import OUT_TYPES
    return retype_gguf(Path(src), Path(out), OUT_TYPES["f32"], progress=progress, rewrite=FakeQuant(g, calibration))


def grid_perplexity(src, g: Grid, text: str, workdir, calibration=None, ctx: int = 2048, chunks: int | None = 20,
                    n_threads: int | None = None, progress: bool = False) -> tuple[float, float]:
    """(perplexity of ``text`` with ``src``'s layer matrices on grid ``g``, run in exact
    arithmetic; seconds spent making the grid's file, which lives in a temporary
    directory under ``workdir``)."""
    from ..model import Model
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".grid-") as tmp:
        t0 = time.perf_counter()
        path = fake_quantized(src, Path(tmp) / "grid.gguf", g, calibration)
        seconds = time.perf_counter() - t0
        model = Model(str(path), n_ctx=ctx, n_threads=n_threads, int8_activations=False)
        ppl = model.perplexity(text, n_ctx=ctx, n_chunks=chunks, progress=progress)
        del model   # it maps the file, which goes with the directory
    return ppl, seconds
