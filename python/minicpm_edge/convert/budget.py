"""Mixed precision under a size budget (``--target-size`` / ``--bpw``).

Every decoder-layer matrix and the LM head may take any type of a ladder
(LADDER: 2.5 to 8.5 bits per weight); all other tensors keep the policy's type.
For each (matrix, type) the method in use quantizes the matrix and the error of the
result is measured as the change of the matrix's output over the calibration
tokens, tr(dW H dW^T) with H = sum x x^T (calibrate.py) -- the quantity GPTQ
minimizes, so GPTQ's codes are judged by what GPTQ optimizes -- relative to the
matrix's own output energy tr(W H W^T) (Measured.relative says why). Without
calibration (RTN) H is the identity. The types are then chosen to minimize the
summed relative error subject to the byte budget: a multiple-choice knapsack, solved
exactly by dynamic programming over sizes rounded up to 1/65536 of the budget
(so the chosen sizes never exceed it). This is the per-layer bit allocation of
mixed-precision PTQ (e.g. HAWQ's Hessian-weighted sensitivity), with the output
error standing in for the loss.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants

from . import lowbit
from .errors import ConvertError
from .gguf_source import float_tensors, open_gguf, planned_tensors
from .lowbit import LowBitType
from .plan import LowBitQuantizer, Rewrite
from .quantize import OutType, encode, head_tensor, is_layer_matrix, nbytes, parse_out_type


Q = GGMLQuantizationType
# Types a budget chooses from, in bits per weight: 2.5, 3.5, 4.5, 5, 8.5 (and 16 for the head).
LADDER = ("w2g64", "w3g64", "w4g64", "w4g32", "q8_0")
HEAD_LADDER = LADDER + ("f16",)
DP_UNITS = 1 << 16
# Bytes the output spends per chosen matrix beyond the source's metadata: the
# tensor infos and alignment padding of up to three tensors, and the descriptor key.
MATRIX_OVERHEAD = 384

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_size(text: str | int | float) -> int:
    """Bytes of a size such as ``88MiB``, ``88M`` (both 2^20), ``90MB`` (10^6) or ``1.5GiB``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit, binary = float(text), "", True
    else:
        m = _SIZE.match(str(text))
        if m is None:
            raise ConvertError(f"bad size {text!r}: use a number with an optional unit, e.g. 88MiB, 90MB or 1.5G")
        value, prefix, i, b = float(m.group(1)), m.group(2).lower(), m.group(3), m.group(4)
        # "MB" is decimal as in SI; "M" and "MiB" are binary, as llama.cpp and ls -h print sizes.
        binary = bool(i) or not b
        unit = prefix
    power = " kmgt".index(unit) if unit else 0
    size = value * (1024 if binary else 1000) ** power
    if not math.isfinite(size) or size <= 0:
        raise ConvertError(f"bad size {text!r}: it must be positive")
    return int(size)


def solve(sizes: Sequence[Sequence[int]], errors: Sequence[Sequence[float]], budget: int,
          units: int = DP_UNITS) -> list[int]:
    """The option index of each item minimizing the summed error with summed size <= budget.

    sizes/errors: per item, one value per option. Sizes are rounded up to budget/units,
    so the answer is exact when the budget is at most ``units`` bytes and otherwise
    within one rounding step per item of it. Raises ConvertError when even the
    smallest options exceed the budget.
    """
    smallest = sum(min(s) for s in sizes)
    if smallest > budget:
        raise ConvertError(f"the budget of {budget} bytes is below the smallest choice ({smallest} bytes)")
    step = max(1, -(-int(budget) // int(units)))
    cap = int(budget) // step
    best = np.zeros(cap + 1)                 # least error within c steps, over the items so far
    choice = np.zeros((len(sizes), cap + 1), np.int16)
    for i, (s, e) in enumerate(zip(sizes, errors)):
        nxt = np.full(cap + 1, np.inf)
        for j, (sz, err) in enumerate(zip(s, e)):
            u = -(-int(sz) // step)
            if u > cap:
                continue
            cand = np.full(cap + 1, np.inf)
            cand[u:] = best[:cap + 1 - u] + float(err)
            better = cand < nxt
            nxt[better] = cand[better]
            choice[i, better] = j
        best = nxt
    if not np.isfinite(best[cap]):   # only when rounding up made the smallest choice not fit
        raise ConvertError(f"the budget of {budget} bytes leaves no room for the matrices once rounded")
    picks, c = [], cap
    for i in range(len(sizes) - 1, -1, -1):
        j = int(choice[i, c])
        picks.append(j)
        c -= -(-int(sizes[i][j]) // step)
    return picks[::-1]


def type_bytes(shape: Sequence[int], t: GGMLQuantizationType | LowBitType) -> int:
    if isinstance(t, LowBitType):
        return sum(nbytes(s, q) for _, s, q in t.parts("x", shape))
    return nbytes(shape, t)


def _choice(name: str) -> GGMLQuantizationType | LowBitType:
    out = parse_out_type(name)
    return out.lowbit if out.lowbit is not None else out.qtype


def _fits(shape: Sequence[int], t) -> bool:
    if isinstance(t, LowBitType):
        return t.fits(shape)
    return shape[-1] % GGML_QUANT_SIZES[t][0] == 0


def output_error(w: np.ndarray, approx: np.ndarray, h: np.ndarray | None) -> float:
    """tr(dW H dW^T) (the output's squared change summed over the calibration tokens),
    or ||dW||^2 without a Hessian."""
    dw = (np.asarray(approx, np.float32) - w).astype(np.float32)
    if h is None:
        return float(np.einsum("ij,ij->", dw, dw, dtype=np.float64))
    return float(np.einsum("ij,ij->", dw @ h, dw, dtype=np.float64))


@dataclass
class Budget:
    """What to fit: a file size in bytes, or bits per weight over all tensor data."""

    target_size: int | None = None
    bpw: float | None = None


def make_budget(target_size=None, bpw=None) -> Budget | None:
    if target_size is not None and bpw is not None:
        raise ConvertError("give either a target size or bits per weight, not both")
    if bpw is not None:
        b = float(bpw)
        if not math.isfinite(b) or not 1.0 <= b <= 32.0:
            raise ConvertError(f"bits per weight must be between 1 and 32 (got {bpw!r})")
        return Budget(bpw=b)
    if target_size is not None:
        return Budget(target_size=parse_size(target_size))
    return None


@dataclass
class Measured:
    """Each choosable matrix's options with their sizes and output errors."""

    names: list[str]
    options: list[list]
    sizes: list[list[int]]
    errors: list[list[float]]    # tr(dW H dW^T) per option
    signals: list[float]         # tr(W H W^T): the matrix's own output energy
    fixed: int                   # bytes of the other tensors
    overhead: int                # bytes outside tensor data
    n_weights: int               # elements of all tensors

    def relative(self) -> list[list[float]]:
        """Errors as fractions of each matrix's output energy (a noise-to-signal ratio).
        Absolute errors live in different spaces -- a layer's contribution to the
        residual stream, the head's logits -- whose scales say little about the
        loss; on SmolLM2-135M absolute errors kept the head in Q8_0 and gave PPL
        18.99 at 88 MiB where relative ones give the figure in
        bench/results/2026-11-25-budget-smollm2-vm.md."""
        return [[e / s if s > 0 else e for e in errs] for errs, s in zip(self.errors, self.signals)]


def measure(src: Path, out_type: OutType, quantize: LowBitQuantizer, calibration=None,
            rewrite: Rewrite | None = None, progress: bool = True) -> Measured:
    """Quantize every decoder-layer matrix and the LM head of ``src`` in every type of
    the ladder with ``quantize`` (the method's codes) and measure the errors."""
    plan, head, meta = planned_tensors(src, out_type)
    load = float_tensors(src)
    # A head type the caller set (--output-tensor-type) stays; so do tensors kept in F32.
    head_free = out_type.head is None
    choosable = [e for e in plan if len(e.shape) == 2 and getattr(e, "fmt", getattr(e, "qtype", None)) != Q.F32
                 and ((e.name == head and head_free) or is_layer_matrix(e.name, e.shape))]
    chosen = {id(e) for e in choosable}
    m = Measured([], [], [], [], [], fixed=sum(p.nbytes for e in plan if id(e) not in chosen for p in e.parts),
                 overhead=meta + MATRIX_OVERHEAD * len(choosable),
                 n_weights=sum(int(np.prod(e.shape, dtype=np.int64)) for e in plan))
    it = choosable
    if progress:
        from tqdm import tqdm
        it = tqdm(choosable, desc="measuring types", unit="matrix", leave=False)
    for e in it:
        w = np.asarray(load(e.name), np.float32)
        if rewrite is not None and rewrite.touches(e.name):
            w = np.asarray(rewrite.apply(e.name, w), np.float32)
        stats = calibration.for_tensor(e.name) if calibration is not None else None
        h = None if stats is None else stats.hessian
        if h is not None and rewrite is not None and hasattr(rewrite, "hessian"):
            h = rewrite.hessian(e.name, h)
        ladder = [t for t in map(_choice, HEAD_LADDER if e.name == head else LADDER) if _fits(e.shape, t)]
        m.names.append(e.name)
        m.options.append(ladder)
        m.sizes.append([type_bytes(e.shape, t) for t in ladder])
        m.errors.append([output_error(w, _approximate(e.name, w, t, quantize), h) for t in ladder])
        m.signals.append(output_error(w, np.zeros_like(w), h))
    return m


def choose(m: Measured, out_type: OutType, budget: Budget) -> OutType:
    """``out_type`` with the per-tensor types (OutType.recipe) that fit ``budget`` with
    the least summed relative output error."""
    total = (int(budget.bpw * m.n_weights / 8) if budget.bpw is not None
             else int(budget.target_size) - m.overhead)
    allowed = total - m.fixed
    if allowed <= 0 or (m.sizes and sum(min(s) for s in m.sizes) > allowed):
        smallest = m.fixed + m.overhead + sum(min(s) for s in m.sizes)
        raise ConvertError(f"the budget is too small for this model: the smallest file the types "
                           f"{', '.join(LADDER)} allow is {smallest / 2**20:.1f} MiB")
    picks = solve(m.sizes, m.relative(), allowed)
    recipe = tuple((n, opts[j]) for n, opts, j in zip(m.names, m.options, picks))
    return replace(out_type, recipe=recipe)


def choose_recipe(src: Path, out_type: OutType, budget: Budget, quantize: LowBitQuantizer,
                  calibration=None, rewrite: Rewrite | None = None, progress: bool = True) -> OutType:
    return choose(measure(src, out_type, quantize, calibration, rewrite, progress), out_type, budget)


def _approximate(name: str, w: np.ndarray, t, quantize: LowBitQuantizer) -> np.ndarray:
    """The values ``w`` is stored as in type ``t``."""
    if isinstance(t, LowBitType):
        codes, d, m = quantize(name, w, t)
        return lowbit.dequantize(codes, d, m, t)
    return quants.dequantize(encode(w, t), t).reshape(w.shape)


def describe(path: Path) -> str:
    """How many decoder-layer matrices (and which head) a file has per type, e.g.
    ``w4g32 x180, q8_0 x30; head token_embd.weight w4g32``."""
    reader = open_gguf(path)
    lowbits = lowbit.read_descriptors(reader)
    kinds = {t.name: lowbits[t.name].name if t.name in lowbits else t.tensor_type.name.lower()
             for t in reader.tensors}
    head = head_tensor(kinds)
    counts: dict[str, int] = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        if t.name in lowbits or (is_layer_matrix(t.name, shape) and not t.name.endswith("_norm.weight")
                                 and t.tensor_type != Q.F32):
            if t.name != head:
                counts[kinds[t.name]] = counts.get(kinds[t.name], 0) + 1
    mix = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{mix}; head {head} {kinds[head]}"
