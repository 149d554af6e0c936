"""Group parameters (scale d, offset m) chosen by a weighted error search instead of
the plain range.

The range (lowbit.rtn_params) lets a single outlier stretch the step of its whole
group. Clipping it a little usually lowers the group's total error; GPTQ's quantizer
(``mse=True``) and AWQ's clip search grid-search a shrink of the range for that
reason (see the PTQ notes). Here the error is weighted per input channel by the
calibration energy diag(H) = sum of x_j^2 when it is known (llama.cpp's importance
matrix weights its searches the same way), and the asymmetric search shrinks the two
ends independently (LLMC's remark: a symmetric clip wastes an asymmetric grid).
After the grid, (d, m) are refitted by weighted least squares to the chosen codes.
"""
from __future__ import annotations

import numpy as np

from .lowbit import LowBitType, group_codes, group_values

# Fractions of the range cut from each end (asymmetric) or of the largest
# magnitude (symmetric).
ASYM_SHRINK = (0.0, 0.04, 0.08, 0.12, 0.16)
SYM_SHRINK = tuple(i / 20 for i in range(8))  # 0 .. 0.35
REFITS = 2


def _error(g: np.ndarray, weight: np.ndarray, d16, m16, t: LowBitType) -> np.ndarray:
    diff = group_values(group_codes(g, d16, m16, t), d16, m16, t) - g
    return (diff * diff * weight).sum(axis=-1)


def search_params(g: np.ndarray, t: LowBitType, weight: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """binary16 (d, m) for groups g [..., G] minimizing sum_j weight_j (w^_j - w_j)^2.

    weight: non-negative, broadcastable to g (e.g. diag(H) of the group's inputs, shape
    [G]); None weighs every input alike. Among equal errors the plain range wins, so
    the result is never worse than lowbit.rtn_params on the weighted error.
    """
    g = np.asarray(g, dtype=np.float32)
    weight = np.ones(g.shape[-1], np.float32) if weight is None else np.asarray(weight, np.float32)
    weight = np.broadcast_to(weight, g.shape)
    best_d = best_m = best_err = None

    def consider(d, m):
        nonlocal best_d, best_m, best_err
        with np.errstate(over="ignore", invalid="ignore"):
            d16 = np.asarray(d, np.float32).astype(np.float16)
            m16 = None if t.symmetric else np.asarray(m, np.float32).astype(np.float16)
        ok = np.isfinite(d16) & (d16 >= 0)
        if m16 is not None:
            ok &= np.isfinite(m16)
        d16 = np.where(ok, d16, np.float16(0))
        if m16 is not None:
            m16 = np.where(ok, m16, np.float16(0))
        err = np.where(ok, _error(g, weight, d16, m16, t), np.inf)
        if best_err is None:
            best_d, best_m, best_err = d16, m16, err
            return
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_d = np.where(better, d16, best_d)
        if m16 is not None:
            best_m = np.where(better, m16, best_m)

    if t.symmetric:
        amax = np.abs(g).max(axis=-1)
        for s in SYM_SHRINK:
            consider(amax * np.float32(1 - s) / np.float32(t.max_code / 2), None)
    else:
        lo, hi = g.min(axis=-1), g.max(axis=-1)
        span = hi - lo
        for a in ASYM_SHRINK:
            for b in ASYM_SHRINK:
                l, h = lo + np.float32(a) * span, hi - np.float32(b) * span
                consider((h - l) / np.float32(t.max_code), l)
    for _ in range(REFITS):
        consider(*_refit(g, weight, best_d, best_m, t))
    return best_d, best_m


def _refit(g, weight, d16, m16, t: LowBitType):
    """Weighted least-squares (d, m) for the codes (d16, m16) give: the minimizer of
    sum_j weight_j (d q_j + m - w_j)^2 with q fixed (symmetric: m = 0, q centred)."""
    q = group_codes(g, d16, m16, t).astype(np.float32)
    if t.symmetric:
        q -= np.float32(t.max_code / 2)
        den = (weight * q * q).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(den > 0, (weight * q * g).sum(-1) / den, 0)
        return np.where(d > 0, d, d16.astype(np.float32)), None
    sw, sq, sqq = weight.sum(-1), (weight * q).sum(-1), (weight * q * q).sum(-1)
    sx, sqx = (weight * g).sum(-1), (weight * q * g).sum(-1)
    den = sw * sqq - sq * sq
    ok = den > 1e-20 * np.maximum(sw * sqq, 1e-30)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(ok, (sw * sqx - sq * sx) / np.where(ok, den, 1), d16.astype(np.float32))
        m = np.where(ok, (sx - d * sq) / np.where(sw > 0, sw, 1), m16.astype(np.float32))
    # A negative step would reverse the codes' order: keep the grid's choice there.
    neg = d < 0
    return np.where(neg, d16.astype(np.float32), d), np.where(neg, m16.astype(np.float32), m)
