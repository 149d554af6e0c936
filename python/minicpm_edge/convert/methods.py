"""Quantization methods of the converter: how the codes of a low-bit matrix are chosen.

- ``rtn``: round to nearest over each group's range (lowbit.quantize_rtn), no data.
- ``gptq``: GPTQ (gptq.py) with the Hessians of a calibration run (calibrate.py), for
  the decoder layers' matrices and a low-bit LM head; a matrix the calibration did not
  see falls back to a plain-weighted group search.
- ``awq``: AWQ scales (awq.py) folded into the norms and up projections, then each
  group's params searched with the inputs' energies as weights (AWQ's clip search).
- ``awq-gptq``: AWQ scales, then GPTQ on the scaled matrices.
- ``smoothquant``: SmoothQuant's smoothing (smoothquant.py) folded into the norms and the
  V / up rows, then the matrices rounded: W8A8 per row (w8a8.py), or the Q8_0 / Q4_x /
  low-bit types of the int8-activation paths (RTN).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConvertError
from .gptq import DAMP, gptq_quantize
from .group_search import search_params
from .lowbit import LowBitType, as_groups, check_params, group_codes
from .minifloat_type import MiniFloatType
from .plan import rtn

log = logging.getLogger(__name__)

METHODS = ("rtn", "gptq", "awq", "awq-gptq", "smoothquant")


def parse_method(name: str) -> str:
    key = str(name).strip().lower()
    if key not in METHODS:
        raise ConvertError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return key


def searched(name: str, w: np.ndarray, t: LowBitType, h: np.ndarray | None = None) -> tuple:
    """RTN codes under searched group params, each input weighted by diag(``h``) when a
    Hessian is given (AWQ's clip search) and equally otherwise."""
    g = as_groups(w, t, name)
    weight = None if h is None else np.maximum(np.diag(h), 0).reshape(g.shape[1], t.group)
    d, m = search_params(g, t, weight)
    check_params(d, m, name)
    return group_codes(g, d, m, t).reshape(g.shape[0], -1), d, m


@dataclass
class Calibrated:
    """A calibrated quantizer: GPTQ or the weighted group search, on matrices scaled
    by ``awq`` (awq.AWQ) when given."""

    calibration: object   # anything with for_tensor(name) -> InputStats | None (calibrate.py)
    gptq: bool = True
    awq: object = None
    damp: float = DAMP
    act_order: bool = True

    def __call__(self, name: str, w: np.ndarray, t: LowBitType | MiniFloatType) -> tuple:
        stats = self.calibration.for_tensor(name)
        if isinstance(t, MiniFloatType):
            if self.awq is not None or not self.gptq:
                raise ConvertError(f"{t.name}: minifloat types are quantized by rtn or gptq")
            if stats is None:
                log.info("%s: no calibration input, round to nearest", name)
                return t.quantize_rtn(w, name)
            return t.quantize_gptq(w, stats.hessian, self.damp, self.act_order, name)
        if stats is None:
            log.info("%s: no calibration input, group search without GPTQ", name)
            return searched(name, w, t)
        h = stats.hessian if self.awq is None else self.awq.hessian(name, stats.hessian)
        if not self.gptq:
            return searched(name, w, t, h)
        return gptq_quantize(w, h, t, damp=self.damp, act_order=self.act_order, what=name)


def quantizer(method: str, calibration, load=None, t: LowBitType | None = None):
    """(quantize, rewrite) of ``method``; ``load`` (name -> float values of the source)
    and ``t`` (the low-bit type the scales are searched for) are needed by AWQ."""
    if method == "rtn":
        return rtn, None
    if calibration is None:
        raise ConvertError(f"method {method} needs calibration data (--calib FILE)")
    if method == "gptq":
        return Calibrated(calibration), None
    if method == "smoothquant":   # not a low-bit quantizer: convert() runs it (smoothquant.py)
        raise ConvertError("smoothquant is a rewrite before rounding, not a low-bit quantizer (convert() runs it)")
    from .awq import AWQ
    scales = AWQ(calibration, load, t)
    return Calibrated(calibration, gptq=method == "awq-gptq", awq=scales), scales
