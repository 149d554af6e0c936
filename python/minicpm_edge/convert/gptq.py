"""GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
Pre-trained Transformers", ICLR 2023) for the low-bit group formats.

A linear layer's weights W [M, K] are quantized one input column at a time; the error
each column makes is pushed onto the columns not yet quantized through the inverse
Hessian of the layer's reconstruction loss ||W X - Q X||^2, H = sum over calibration
tokens of x x^T. The paper's refinements are all here:

- the inverse is taken once, as the upper Cholesky factor U of H^-1 (H^-1 = U^T U), so
  row j of U carries column j's update (section 4, "Cholesky reformulation");
- updates are lazy: inside a block of 128 columns they are applied column by column,
  to the rest of the matrix once per block as one matrix product ("lazy batch");
- damping adds a fraction of mean(diag H) to the diagonal; inputs that never fire
  (diag 0) are dropped, their columns set to zero;
- act-order visits columns by decreasing diag(H). Our groups are contiguous runs of
  G inputs with one (d, m) each, so under act-order the params of every group are
  fixed up front from the unquantized weights ("static groups"); in natural order
  they are chosen when a group's first column comes up, from the weights as updated
  by then (the block holds the whole group, so those are current).

The params of a group come from group_search.search_params weighted by diag(H) (or
the plain range with ``search=False``).
"""
from __future__ import annotations

import numpy as np

from .errors import ConvertError
from .group_search import search_params
from .lowbit import LowBitType, as_groups, check_params, group_codes, group_values, rtn_params

BLOCK = 128  # a multiple of every group size (32, 64, 128)
DAMP = 0.01


def inverse_cholesky_upper(h: np.ndarray, damp: float = DAMP) -> np.ndarray:
    """Upper triangular U with U^T U = (H + damp*mean(diag H)*I)^-1, float64.

    H is symmetric positive semi-definite in exact arithmetic; if rounding leaves the
    damped matrix indefinite the damping grows tenfold until it factors.
    """
    k = h.shape[0]
    mean_diag = float(np.mean(np.diag(h)))
    lam = damp * (mean_diag if mean_diag > 0 else 1.0)
    for _ in range(8):
        try:
            low = np.linalg.cholesky(h + lam * np.eye(k))
            break
        except np.linalg.LinAlgError:
            lam *= 10
    else:
        raise ConvertError("GPTQ: the calibration Hessian is not positive definite even with heavy damping")
    low_inv = np.linalg.solve(low, np.eye(k))           # L^-1, so H^-1 = L^-T L^-1
    return np.linalg.cholesky(low_inv.T @ low_inv).T


def gptq_quantize(w: np.ndarray, h: np.ndarray, t: LowBitType, *, damp: float = DAMP, act_order: bool = True,
                  search: bool = True, block: int = BLOCK, what: str = "tensor"
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """GPTQ codes and params of matrix w [M, K] given H [K, K] (sum of x x^T).

    Returns (codes uint8 [M, K], d float16 [M, K/G], m float16 [M, K/G] or None), the
    layout lowbit.pack stores.
    """
    groups = as_groups(w, t, what)
    rows, cols = groups.shape[0], groups.shape[1] * t.group
    G, n_groups = t.group, cols // t.group
    d16 = np.zeros((rows, n_groups), np.float16)
    m16 = None if t.symmetric else np.zeros((rows, n_groups), np.float16)
    codes = np.zeros((rows, cols), np.uint8)

    def set_params(grp: int, values: np.ndarray, importance: np.ndarray) -> None:
        d, m = search_params(values, t, importance) if search else rtn_params(values, t)
        check_params(d, m, what)
        d16[:, grp] = d
        if m16 is not None:
            m16[:, grp] = m

    def round_column(j: int, col: np.ndarray) -> np.ndarray:
        grp = j // G
        m = None if m16 is None else m16[:, grp]
        q = group_codes(col[:, None], d16[:, grp], m, t)
        codes[:, j] = q[:, 0]
        return group_values(q, d16[:, grp], m, t)[:, 0]

    gptq_sweep(groups.reshape(rows, cols), h, G, set_params, round_column, damp=damp, act_order=act_order,
               block=block, what=what)
    return codes, d16, m16


def gptq_sweep(w: np.ndarray, h: np.ndarray, group: int, set_params, round_column, *, damp: float = DAMP,
               act_order: bool = True, block: int = BLOCK, what: str = "tensor") -> None:
    """The GPTQ column sweep over w [M, K] for any grid with per-group params.

    set_params(grp, values [M, G], importance [G]) fixes group grp's params from the
    weights it is given (all groups up front under act-order, else each when its first
    column comes up); round_column(j, col [M]) rounds input column j onto its group's
    grid and returns the values it stands for.
    """
    rows, cols = w.shape
    h = np.array(h, dtype=np.float64)
    if h.shape != (cols, cols) or not np.isfinite(h).all():
        raise ConvertError(f"{what}: Hessian of shape {list(h.shape)} does not fit a matrix of {cols} inputs "
                           "(or is not finite)")
    if block % group:
        raise ValueError(f"block {block} is not a multiple of the group size {group}")
    W = np.array(w, dtype=np.float32)
    energy = np.diag(h).copy()
    dead = energy <= 0
    h[dead, dead] = 1.0
    W[:, dead] = 0.0
    importance = np.maximum(energy, 0).astype(np.float32)
    n_groups = cols // group

    if act_order:
        perm = np.argsort(-energy, kind="stable")
        for grp in range(n_groups):
            set_params(grp, W[:, grp * group:(grp + 1) * group], importance[grp * group:(grp + 1) * group])
    else:
        perm = np.arange(cols)
    W = np.ascontiguousarray(W[:, perm])
    U = inverse_cholesky_upper(h[np.ix_(perm, perm)], damp).astype(np.float32)

    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].copy()
        err = np.empty((rows, i2 - i1), np.float32)
        for i in range(i2 - i1):
            j = int(perm[i1 + i])
            if not act_order and j % group == 0:
                set_params(j // group, W1[:, i:i + group], importance[j:j + group])
            col = W1[:, i]
            e = (col - round_column(j, col)) / U[i1 + i, i1 + i]
            W1[:, i + 1:] -= np.outer(e, U[i1 + i, i1 + i + 1:i2])
            err[:, i] = e
        W[:, i2:] -= err @ U[i1:i2, i2:]
