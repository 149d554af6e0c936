"""Ternary matrices ``t2`` (docs/FORMAT.md, "Ternary"): BitNet b1.58 weights w = s * t,
t in {-1, 0, +1}, one scale s per matrix.

A matrix ``X.weight`` of M rows and K columns (K a multiple of 128) is stored as

- ``X.weight``       I8,  numpy shape [M, K/4]: codes q = t + 1, two bits each; byte j of
                     the 32-byte chunk c of a row holds inputs 128c + j + 32i at bits 2i..2i+1
                     (the arrangement of llama.cpp's TQ2_0, without its per-block scales);
- ``X.weight.scale`` F32, [1]: s;
- ``minicpm_edge.ternary.X.weight`` = UINT32 [2] (the layout).

The runtime multiplies them with int8 activations quantized per token, as BitNet's
BitLinear does (csrc/kernels/ternary_layout.h).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from .errors import CheckpointFormatError, ConvertError

log = logging.getLogger(__name__)
Q = GGMLQuantizationType

KEY_PREFIX = "minicpm_edge.ternary."
LAYOUT_T2 = 2
CHUNK = 128            # inputs per 32-byte chunk
SCALE_SUFFIX = ".scale"
# Nonzero magnitudes within this relative spread of each other are one ternary scale
# that a lossy format (Q8_0, F16) blurred.
TERNARY_SPREAD = 1e-3


@dataclass(frozen=True)
class TernaryType:
    name: str = "t2"

    @property
    def group(self) -> int:
        """Inputs a row must split into whole numbers of (a chunk)."""
        return CHUNK

    def descriptor(self) -> list[int]:
        return [LAYOUT_T2]

    def fits(self, shape: Sequence[int]) -> bool:
        return len(shape) == 2 and shape[-1] % CHUNK == 0

    def part_names(self, name: str) -> list[str]:
        return [name, name + SCALE_SUFFIX]

    def parts(self, name: str, shape: Sequence[int]) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
        rows, cols = (int(d) for d in shape)
        return list(zip(self.part_names(name), [(rows, cols // 4), (1,)], [Q.I8, Q.F32]))

    def matrix_shape(self, codes_shape: Sequence[int]) -> tuple[int, int]:
        rows, nbytes = (int(d) for d in codes_shape)
        return rows, nbytes * 4

    def decode(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return unpack(np.asarray(parts[0]).view(np.uint8)).astype(np.float32) * np.float32(
            np.asarray(parts[1]).view(np.float32).reshape(-1)[0])


T2 = TernaryType()


def absmean_ternary(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """BitNet b1.58's weight quantizer (Ma et al. 2024, eq. 1-3; transformers'
    WeightQuant): iscale = 1 / max(mean |w|, 1e-5), t = clamp(round(w * iscale), -1, 1),
    s = 1 / iscale, all in float32. Returns (t int8, s)."""
    w = np.asarray(w, dtype=np.float32)
    iscale = np.float32(1) / max(np.float32(np.abs(w).mean(dtype=np.float32)), np.float32(1e-5))
    t = np.clip(np.rint(w * iscale), -1, 1).astype(np.int8)
    return t, np.float32(1) / iscale


def ternarize(w: np.ndarray, what: str = "tensor") -> tuple[np.ndarray, np.float32]:
    """(t int8 [M, K] in {-1, 0, 1}, s) with w ~ s * t.

    Weights that already are ternary (every nonzero magnitude the same, up to
    TERNARY_SPREAD: a ternary checkpoint, llama.cpp's TQ1_0/TQ2_0, a Q8_0 copy) keep
    their values, s being the mean nonzero magnitude; others are ternarized by
    absmean_ternary, which only a model trained ternary survives."""
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] % CHUNK:
        raise ConvertError(f"{what}: shape {list(w.shape)} is not a matrix with rows a multiple of {CHUNK}")
    if not np.isfinite(w).all():
        raise ConvertError(f"{what}: weights are not finite")
    a = np.abs(w)
    nonzero = a[a != 0]
    if nonzero.size == 0:
        return np.zeros(w.shape, np.int8), np.float32(0)
    top = nonzero.max()
    if nonzero.min() >= top * np.float32(1 - TERNARY_SPREAD):
        s = np.float32(nonzero.mean(dtype=np.float64))
        return np.sign(w).astype(np.int8), s
    log.warning("%s: weights are not ternary; ternarizing by absmean (BitNet b1.58), which only a model "
                "trained ternary survives", what)
    return absmean_ternary(w)


def ternary_values(w: np.ndarray, what: str = "tensor") -> np.ndarray:
    """float32 s * t of ternarize(w), for encoders of other ternary layouts (TQ1_0 / TQ2_0)."""
    t, s = ternarize(w, what)
    return t.astype(np.float32) * s


def pack(t: np.ndarray) -> np.ndarray:
    """t int8 [M, K] in {-1, 0, 1} -> codes uint8 [M, K/4] in the t2 layout."""
    rows, cols = t.shape
    q = (t.astype(np.int16) + 1).astype(np.uint8).reshape(rows, cols // CHUNK, 4, 32)
    out = q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)
    return np.ascontiguousarray(out.reshape(rows, cols // 4))


def unpack(codes: np.ndarray) -> np.ndarray:
    """codes uint8 [M, K/4] -> t int8 [M, K] (code 3, which no writer emits, reads as +2)."""
    rows, nbytes = codes.shape
    c = codes.reshape(rows, nbytes // 32, 1, 32)
    q = (c >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3
    return (q.astype(np.int8) - 1).reshape(rows, nbytes * 4)


def encode(values: np.ndarray, what: str = "tensor") -> tuple[np.ndarray, np.ndarray]:
    """float32 [M, K] -> the data of ``T2.parts``: (codes as int8 [M, K/4], scale f32 [1])."""
    t, s = ternarize(values, what)
    return pack(t).view(np.int8), np.array([s], np.float32)


# ---- metadata --------------------------------------------------------------------------------
def add_descriptors(w: GGUFWriter, matrices: Sequence[tuple[str, TernaryType]]) -> None:
    for name, t in matrices:
        w.add_key_value(KEY_PREFIX + name, t.descriptor(), GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)


def is_ternary_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX)


def read_descriptors(reader) -> dict[str, TernaryType]:
    """Ternary matrices of a gguf.GGUFReader, checked against FORMAT.md; tensor name -> type."""
    tensors = {t.name: t for t in reader.tensors}
    found: dict[str, TernaryType] = {}
    for key, field in reader.fields.items():
        if not key.startswith(KEY_PREFIX):
            continue
        name = key[len(KEY_PREFIX):]
        if field.types != [GGUFValueType.ARRAY, GGUFValueType.UINT32] or list(field.contents()) != [LAYOUT_T2]:
            raise CheckpointFormatError(f"{key}: not a ternary descriptor (UINT32 [2])")
        codes, scale = tensors.get(name), tensors.get(name + SCALE_SUFFIX)
        if codes is None:
            raise CheckpointFormatError(f"{key}: names a missing tensor {name!r}")
        if (codes.tensor_type != Q.I8 or len(codes.shape) != 2 or int(codes.shape[0]) % 32
                or int(codes.shape[0]) == 0):
            raise CheckpointFormatError(f"{name}: codes must be an I8 matrix of whole 32-byte t2 chunks")
        if scale is None or scale.tensor_type != Q.F32 or int(np.prod(scale.shape)) != 1:
            raise CheckpointFormatError(f"{name}: t2 needs tensor {name + SCALE_SUFFIX} holding one F32")
        found[name] = T2
    return found
