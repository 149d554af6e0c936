"""AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and
Acceleration", MLSys 2024): per-input-channel scales that protect the weights of loud
input channels, folded exactly into the operation before the matrices.

For matrices W_i sharing an input x, a scale s_j > 1 on input channel j multiplies
column j of every W_i before quantization and divides x_j after the previous
operation, so the float function is unchanged while channel j's weights take a finer
share of their groups' grids. As in the paper, s = mean|x|^alpha (normalised so
sqrt(max * min) = 1) with alpha searched on a grid. The paper judges alpha by the
block's output error on calibration tokens; here each matrix's output error is
evaluated from the calibration Hessian H = sum x x^T, which is the same quantity
without a second forward pass: ||(Q(W s)/s - W) x||^2 summed over tokens equals
tr(D H D^T) with D = Q(W diag s) diag(s)^-1 - W.

Where the scales go (the pairs the paper uses for Llama):
- attention input: attn_norm weight / s, Q/K/V columns * s;
- FFN input: ffn_norm weight / s, gate/up columns * s;
- down input (silu(gate x) * up x): up's rows / s, down's columns * s.
The attention output (V -> O) is left alone: under grouped-query attention one V
channel feeds several heads' O columns, which would need tied scales.
The scaled inputs' Hessian is diag(1/s) H diag(1/s), which GPTQ then uses.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .calibrate import SITE_TENSORS, layer_tensor, tensor_site
from .lowbit import LowBitType, as_groups, group_codes, group_values, rtn_params

ALPHAS = tuple(i / 20 for i in range(20))
# The sites of calibrate.py that take scales -> the operation whose output feeds them.
FED_BY = {0: "attn_norm", 2: "ffn_norm", 3: "ffn_up"}


def rtn_values(w: np.ndarray, t: LowBitType) -> np.ndarray:
    g = as_groups(w, t)
    d, m = rtn_params(g, t)
    return group_values(group_codes(g, d, m, t), d, m, t).reshape(w.shape)


def output_error(ws: list[np.ndarray], h: np.ndarray, t: LowBitType, s: np.ndarray) -> float:
    """sum_i tr(D_i H D_i^T), D_i = Q(W_i diag s) diag(s)^-1 - W_i, with Q = RTN in ``t``."""
    total = 0.0
    for w in ws:
        d = rtn_values(w * s, t) / s - w
        total += float(np.einsum("ij,ij->", d @ h, d, dtype=np.float64))
    return total


def search_scales(ws: list[np.ndarray], h: np.ndarray, mean_abs: np.ndarray, t: LowBitType,
                  alphas=ALPHAS) -> tuple[np.ndarray, float]:
    """The per-channel scales (float32 [K]) of the best alpha, and that alpha. alpha = 0
    (no scaling) is on the grid, so the result is never worse than no AWQ on the
    Hessian error."""
    x = np.maximum(np.asarray(mean_abs, np.float64), 1e-8)
    h = np.asarray(h, np.float32)
    best = (np.inf, np.ones_like(x, dtype=np.float32), 0.0)
    for a in alphas:
        s = np.maximum(x ** a, 1e-4)
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
        err = output_error(ws, h, t, s)
        if err < best[0]:
            best = (err, s, a)
    return best[1], best[2]


class AWQ:
    """Scales of every layer, found on first use from ``calibration`` (anything with
    for_tensor) and the float tensors ``load`` returns; a converter Rewrite."""

    def __init__(self, calibration, load: Callable[[str], np.ndarray], t: LowBitType, alphas=ALPHAS):
        self.calibration, self.load, self.t, self.grid = calibration, load, t, tuple(alphas)
        self._scales: dict[int, dict[int, np.ndarray]] = {}
        self.alphas: dict[tuple[int, int], float] = {}

    def scales(self, layer: int) -> dict[int, np.ndarray]:
        if layer not in self._scales:
            found = {}
            for site in FED_BY:
                names = [f"blk.{layer}.{m}.weight" for m in SITE_TENSORS[site]]
                stats = self.calibration.for_tensor(names[0])
                ws = [self.load(n) for n in names]
                if stats is None or stats.n_tokens == 0 or any(not self.t.fits(w.shape) for w in ws):
                    continue
                found[site], self.alphas[(layer, site)] = search_scales(
                    ws, stats.hessian, stats.abs_sum / stats.n_tokens, self.t, self.grid)
            self._scales[layer] = found
        return self._scales[layer]

    def touches(self, name: str) -> bool:
        key, p = tensor_site(name), layer_tensor(name)
        return (key is not None and key[1] in FED_BY) or (p is not None and p[1] in FED_BY.values())

    def apply(self, name: str, values: np.ndarray) -> np.ndarray:
        layer, kind = layer_tensor(name)
        sc = self.scales(layer)
        v = np.asarray(values, np.float32)
        key = tensor_site(name)
        if key is not None and key[1] in sc:
            v = v * sc[key[1]][None, :]             # the matrix's input columns
        for site, feeder in FED_BY.items():
            if kind == feeder and site in sc:       # the operation feeding the site
                v = v / (sc[site] if v.ndim == 1 else sc[site][:, None])
        return v

    def hessian(self, name: str, h: np.ndarray) -> np.ndarray:
        """The Hessian of the scaled input of matrix ``name``."""
        key = tensor_site(name)
        s = None if key is None or key[1] not in FED_BY else self.scales(key[0]).get(key[1])
        if s is None:
            return h
        inv = (1.0 / s).astype(np.float32)
        return h * inv[:, None] * inv[None, :]
