"""Quantization methods of the converter: how the codes of a low-bit matrix are chosen.

- ``rtn``: round to nearest over each group's range (lowbit.quantize_rtn), no data.
- ``gptq``: GPTQ (gptq.py) with the Hessians of a calibration run (calibrate.py);
  matrices the calibration did not see (outside the decoder layers) fall back to a
  plain-weighted group search.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConvertError
from .gptq import DAMP, gptq_quantize
from .group_search import search_params
from .lowbit import LowBitType, as_groups, check_params, group_codes
from .plan import LowBitQuantizer, rtn

log = logging.getLogger(__name__)

METHODS = ("rtn", "gptq")
CALIBRATED = ("gptq",)


def parse_method(name: str) -> str:
    key = str(name).strip().lower()
    if key not in METHODS:
        raise ConvertError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return key


def searched(name: str, w: np.ndarray, t: LowBitType) -> tuple:
    """RTN codes under searched (unweighted) group params."""
    g = as_groups(w, t, name)
    d, m = search_params(g, t)
    check_params(d, m, name)
    return group_codes(g, d, m, t).reshape(g.shape[0], -1), d, m


@dataclass
class GPTQ:
    calibration: object   # anything with for_tensor(name) -> InputStats | None (calibrate.py)
    damp: float = DAMP
    act_order: bool = True

    def __call__(self, name: str, w: np.ndarray, t: LowBitType) -> tuple:
        stats = self.calibration.for_tensor(name)
        if stats is None:
            log.info("%s: no calibration input, group search without GPTQ", name)
            return searched(name, w, t)
        return gptq_quantize(w, stats.hessian, t, damp=self.damp, act_order=self.act_order, what=name)


def quantizer(method: str, calibration) -> LowBitQuantizer:
    if method == "rtn":
        return rtn
    if calibration is None:
        raise ConvertError(f"method {method} needs calibration data (--calib FILE)")
    return GPTQ(calibration)
