"""W8A8 matrices (docs/FORMAT.md, "W8A8"): int8 weights with one f32 scale per output row
(per-channel, symmetric), which the runtime multiplies by int8 activations quantized per
token (SmoothQuant, Xiao et al. 2023; the smoothing itself is in smoothquant.py).

A matrix ``X.weight`` of M rows (outputs) and K columns (inputs) is stored as

- ``X.weight``       I8,  numpy shape [M, K]: q in [-127, 127];
- ``X.weight.scale`` F32, [M]: the scale s of each row, w = s * q;
- ``minicpm_edge.w8a8.X.weight`` = UINT32 [8, 8] (weight bits, activation bits).

Weights are rounded to nearest: s = max_k |w| / 127 per row (in float32), q =
clamp(round(w / s), -127, 127), ties to even; a row of zeros has s = 0 and q = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from .descriptors import described
from .errors import CheckpointFormatError, ConvertError

Q = GGMLQuantizationType

KEY_PREFIX = "minicpm_edge.w8a8."
DESCRIPTOR = [8, 8]
SCALE_SUFFIX = ".scale"
QMAX = 127
# The runtime's kernels sum |q a| <= 255 * 128 per input in int32 (kernels/w8a8_layout.h).
MAX_COLS = 65536


@dataclass(frozen=True)
class W8A8Type:
    name: str = "w8a8"

    @property
    def group(self) -> int:
        """Inputs a row must split into whole numbers of (any K)."""
        return 1

    def descriptor(self, shape: Sequence[int] | None = None) -> list[int]:
        return list(DESCRIPTOR)

    def fits(self, shape: Sequence[int]) -> bool:
        return len(shape) == 2 and min(shape) > 0 and shape[-1] <= MAX_COLS

    def part_names(self, name: str) -> list[str]:
        return [name, name + SCALE_SUFFIX]

    def parts(self, name: str, shape: Sequence[int]) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
        rows, cols = (int(d) for d in shape)
        return list(zip(self.part_names(name), [(rows, cols), (rows,)], [Q.I8, Q.F32]))

    def matrix_shape(self, codes_shape: Sequence[int]) -> tuple[int, int]:
        rows, cols = (int(d) for d in codes_shape)
        return rows, cols

    def encode(self, values: np.ndarray, what: str = "tensor") -> tuple[np.ndarray, np.ndarray]:
        """float32 [M, K] -> the data of ``parts``: (q int8 [M, K], s float32 [M])."""
        return quantize(values, what)

    def decode(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return dequantize(np.asarray(parts[0]).view(np.int8), np.asarray(parts[1]).view(np.float32).reshape(-1))


W8A8 = W8A8Type()
TYPES = (W8A8,)


def quantize(w: np.ndarray, what: str = "tensor") -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric RTN: (q int8 [M, K] in [-127, 127], s float32 [M]), w ~ s[:, None] * q."""
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2 or 0 in w.shape:
        raise ConvertError(f"{what}: shape {list(w.shape)} is not a matrix")
    if not np.isfinite(w).all():
        raise ConvertError(f"{what}: weights are not finite")
    s = (np.abs(w).max(axis=1) / np.float32(QMAX)).astype(np.float32)
    safe = np.where(s > 0, s, np.float32(1))
    q = np.clip(np.rint(w / safe[:, None]), -QMAX, QMAX).astype(np.int8)
    return q, s


def dequantize(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * s.astype(np.float32)[:, None]


# ---- metadata --------------------------------------------------------------------------------
def add_descriptors(w: GGUFWriter, names: Sequence[str]) -> None:
    for name in names:
        w.add_key_value(KEY_PREFIX + name, DESCRIPTOR, GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)


def is_w8a8_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX)


def read_descriptors(reader) -> dict[str, W8A8Type]:
    """W8A8 matrices of a gguf.GGUFReader, checked against FORMAT.md; tensor name -> type."""
    found: dict[str, W8A8Type] = {}
    for _, name, _, tensors in described(reader, KEY_PREFIX, lambda v: W8A8 if v == DESCRIPTOR else None,
                                         "W8A8 descriptor (UINT32 [8, 8])"):
        q, s = tensors[name], tensors.get(name + SCALE_SUFFIX)
        if q.tensor_type != Q.I8 or len(q.shape) != 2:
            raise CheckpointFormatError(f"{name}: a W8A8 matrix must be an I8 matrix")
        rows = int(q.shape[1])
        if s is None or s.tensor_type != Q.F32 or [int(d) for d in s.shape] != [rows]:
            raise CheckpointFormatError(f"{name}: a W8A8 matrix needs tensor {name + SCALE_SUFFIX}, F32 of shape "
                                        f"[{rows}]")
        found[name] = W8A8
    return found
