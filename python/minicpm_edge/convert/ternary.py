"""Ternary matrices (docs/FORMAT.md, "Ternary"): BitNet b1.58 weights w = s * t,
t in {-1, 0, +1}, one scale s per matrix, in one of two layouts.

``t2`` (2 bits per weight) stores a matrix ``X.weight`` of M rows and K columns (K a
multiple of 128) as

- ``X.weight``       I8,  numpy shape [M, K/4]: codes q = t + 1, two bits each; byte j of
                     the 32-byte chunk c of a row holds inputs 128c + j + 32i at bits 2i..2i+1
                     (the arrangement of llama.cpp's TQ2_0, without its per-block scales);
- ``X.weight.scale`` F32, [1]: s;
- ``minicpm_edge.ternary.X.weight`` = UINT32 [2].

``tl3`` (5 bits per 3 weights, 1.67 bits per weight; any M and K) stores

- ``X.weight``       I8,  numpy shape [ceil(M/32), 320 * ceil(K/48)]: blocks of 32 rows,
                     each a run of "octets" of 48 inputs (16 groups of three): 64 sign bytes
                     then 256 index bytes (see pack_tl3);
- ``X.weight.scale`` F32, [1]: s;
- ``minicpm_edge.ternary.X.weight`` = UINT32 [3, M, K].

The runtime multiplies them with int8 activations quantized per token, as BitNet's
BitLinear does (csrc/kernels/ternary_layout.h, csrc/kernels/ternary_lut_layout.h).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from .descriptors import described
from .errors import CheckpointFormatError, ConvertError

log = logging.getLogger(__name__)
Q = GGMLQuantizationType

KEY_PREFIX = "minicpm_edge.ternary."
LAYOUT_T2 = 2
LAYOUT_TL3 = 3
CHUNK = 128            # t2: inputs per 32-byte chunk
TL3_ROWS = 32          # tl3: rows per block
TL3_INPUTS = 48        # tl3: inputs per octet (16 groups of three)
TL3_OCTET_BYTES = 320  # tl3: 64 sign bytes + 256 index bytes
SCALE_SUFFIX = ".scale"
# Nonzero magnitudes within this relative spread of each other are one ternary scale
# that a lossy format (Q8_0, F16) blurred.
TERNARY_SPREAD = 1e-3


def tl3_shape(rows: int, cols: int) -> tuple[int, int]:
    """numpy shape of a tl3 matrix's I8 tensor."""
    return -(-rows // TL3_ROWS), TL3_OCTET_BYTES * -(-cols // TL3_INPUTS)


@dataclass(frozen=True)
class TernaryType:
    name: str = "t2"
    layout: int = LAYOUT_T2
    # tl3 as read from a file: the matrix shape of its descriptor (not part of the type).
    rows: int = field(default=0, compare=False)
    cols: int = field(default=0, compare=False)

    @property
    def group(self) -> int:
        """Inputs a row must split into whole numbers of (a t2 chunk)."""
        return CHUNK if self.layout == LAYOUT_T2 else 1

    def descriptor(self, shape: Sequence[int]) -> list[int]:
        return [LAYOUT_T2] if self.layout == LAYOUT_T2 else [LAYOUT_TL3, int(shape[0]), int(shape[1])]

    def fits(self, shape: Sequence[int]) -> bool:
        return len(shape) == 2 and shape[-1] % self.group == 0 and min(shape) > 0

    def part_names(self, name: str) -> list[str]:
        return [name, name + SCALE_SUFFIX]

    def parts(self, name: str, shape: Sequence[int]) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
        rows, cols = (int(d) for d in shape)
        data_shape = (rows, cols // 4) if self.layout == LAYOUT_T2 else tl3_shape(rows, cols)
        return list(zip(self.part_names(name), [data_shape, (1,)], [Q.I8, Q.F32]))

    def matrix_shape(self, codes_shape: Sequence[int]) -> tuple[int, int]:
        if self.layout == LAYOUT_TL3:
            return self.rows, self.cols
        rows, nbytes = (int(d) for d in codes_shape)
        return rows, nbytes * 4

    def encode(self, values: np.ndarray, what: str = "tensor") -> tuple[np.ndarray, np.ndarray]:
        """float32 [M, K] -> the data of ``parts``: (I8 tensor, scale f32 [1])."""
        t, s = ternarize(values, what)
        data = pack(t) if self.layout == LAYOUT_T2 else pack_tl3(t)
        return data.view(np.int8), np.array([s], np.float32)

    def decode(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        data = np.asarray(parts[0]).view(np.uint8)
        t = unpack(data) if self.layout == LAYOUT_T2 else unpack_tl3(data, self.rows, self.cols)
        return t.astype(np.float32) * np.float32(np.asarray(parts[1]).view(np.float32).reshape(-1)[0])


T2 = TernaryType()
TL3 = TernaryType("tl3", LAYOUT_TL3)
TYPES = (T2, TL3)


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
    if w.ndim != 2 or 0 in w.shape:
        raise ConvertError(f"{what}: shape {list(w.shape)} is not a matrix")
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
    if cols % CHUNK:
        raise ConvertError(f"t2 needs rows of a multiple of {CHUNK} inputs, not {cols}")
    q = (t.astype(np.int16) + 1).astype(np.uint8).reshape(rows, cols // CHUNK, 4, 32)
    out = q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)
    return np.ascontiguousarray(out.reshape(rows, cols // 4))


def unpack(codes: np.ndarray) -> np.ndarray:
    """codes uint8 [M, K/4] -> t int8 [M, K] (code 3, which no writer emits, reads as +2)."""
    rows, nbytes = codes.shape
    c = codes.reshape(rows, nbytes // 32, 1, 32)
    q = (c >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3
    return (q.astype(np.int8) - 1).reshape(rows, nbytes * 4)


def pack_tl3(t: np.ndarray) -> np.ndarray:
    """t int8 [M, K] in {-1, 0, 1} -> uint8 tl3_shape(M, K) (docs/FORMAT.md "tl3").

    Rows and inputs are padded with zeros to 32 and 48. Three inputs (w0, w1, w2) are
    v = 9 w0 + 3 w1 + w2; an octet of a block is 64 sign bytes (byte 32 h + 16 l + j, bit p:
    v < 0 for row 16 h + j, group 2p + l) and 256 index bytes (byte 64 + 32 p + 16 l + j:
    |v| of row j in the low nibble, of row 16 + j in the high one, group 2p + l)."""
    rows, cols = t.shape
    n_blocks, octet_bytes = tl3_shape(rows, cols)
    octets = octet_bytes // TL3_OCTET_BYTES
    tp = np.zeros((n_blocks * TL3_ROWS, octets * TL3_INPUTS), np.int16)
    tp[:rows, :cols] = t
    g = tp.reshape(n_blocks, 2, 16, octets, 8, 2, 3)       # block, half h, row j, octet, p, l, digit
    v = 9 * g[..., 0] + 3 * g[..., 1] + g[..., 2]
    index, negative = np.abs(v).astype(np.uint8), (v < 0).astype(np.uint8)
    nibbles = index[:, 0] | (index[:, 1] << 4)                # block, j, octet, p, l
    index_bytes = nibbles.transpose(0, 2, 3, 4, 1)          # block, octet, p, l, j
    signs = (negative << np.arange(8, dtype=np.uint8).reshape(1, 1, 1, 1, 8, 1)).sum(axis=4, dtype=np.uint8)
    sign_bytes = signs.transpose(0, 3, 1, 4, 2)             # block, octet, h, l, j
    out = np.concatenate([sign_bytes.reshape(n_blocks, octets, 64), index_bytes.reshape(n_blocks, octets, 256)], axis=2)
    return np.ascontiguousarray(out.reshape(n_blocks, octet_bytes))


def unpack_tl3(data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """uint8 tl3_shape(rows, cols) -> t int8 [rows, cols] (indices 14 and 15, which no
    writer emits, read as 0)."""
    if tuple(data.shape) != tl3_shape(rows, cols):
        raise CheckpointFormatError(f"tl3 data of shape {list(data.shape)} is not that of a {rows} x {cols} matrix")
    n_blocks, octet_bytes = data.shape
    octets = octet_bytes // TL3_OCTET_BYTES
    o = data.reshape(n_blocks, octets, TL3_OCTET_BYTES)
    sign_bytes = o[:, :, :64].reshape(n_blocks, octets, 2, 2, 16)    # block, octet, h, l, j
    index_bytes = o[:, :, 64:].reshape(n_blocks, octets, 8, 2, 16)   # block, octet, p, l, j
    index = np.stack([index_bytes & 15, index_bytes >> 4], axis=1)   # block, h, octet, p, l, j
    negative = (sign_bytes.transpose(0, 2, 1, 3, 4)[:, :, :, None] >> np.arange(8, dtype=np.uint8).reshape(
        1, 1, 1, 8, 1, 1)) & 1                                       # block, h, octet, p, l, j
    digits = np.array([_balanced_digits(i) if i < 14 else (0, 0, 0) for i in range(16)], np.int8)
    t = digits[index] * np.where(negative == 1, -1, 1).astype(np.int8)[..., None]
    t = t.transpose(0, 1, 5, 2, 3, 4, 6)                             # block, h, j, octet, p, l, digit
    return np.ascontiguousarray(t.reshape(n_blocks * TL3_ROWS, octets * TL3_INPUTS)[:rows, :cols])


def _balanced_digits(i: int) -> tuple[int, int, int]:
    """(w0, w1, w2) in {-1, 0, 1} with 9 w0 + 3 w1 + w2 = i (0 <= i <= 13)."""
    out = []
    for _ in range(3):
        r = ((i + 1) % 3) - 1
        out.append(r)
        i = (i - r) // 3
    return out[2], out[1], out[0]


# ---- metadata --------------------------------------------------------------------------------
def add_descriptors(w: GGUFWriter, matrices: Sequence[tuple[str, TernaryType, Sequence[int]]]) -> None:
    for name, t, shape in matrices:
        w.add_key_value(KEY_PREFIX + name, t.descriptor(shape), GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)


def is_ternary_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX)


def _parse_descriptor(value: list[int]) -> TernaryType | None:
    if value == [LAYOUT_T2]:
        return T2
    if len(value) == 3 and value[0] == LAYOUT_TL3 and min(value[1:]) > 0:
        return TernaryType(TL3.name, LAYOUT_TL3, value[1], value[2])
    return None


def read_descriptors(reader) -> dict[str, TernaryType]:
    """Ternary matrices of a gguf.GGUFReader, checked against FORMAT.md; tensor name -> type."""
    found: dict[str, TernaryType] = {}
    for _, name, t, tensors in described(reader, KEY_PREFIX, _parse_descriptor,
                                         "ternary descriptor (UINT32 [2] or [3, rows, cols])"):
        codes, scale = tensors[name], tensors.get(name + SCALE_SUFFIX)
        if codes.tensor_type != Q.I8 or len(codes.shape) != 2:
            raise CheckpointFormatError(f"{name}: a ternary matrix must be an I8 matrix")
        data_shape = tuple(int(d) for d in reversed(codes.shape.tolist()))
        if t.layout == LAYOUT_T2 and (data_shape[1] % 32 or data_shape[1] == 0):
            raise CheckpointFormatError(f"{name}: codes must be an I8 matrix of whole 32-byte t2 chunks")
        if t.layout == LAYOUT_TL3 and data_shape != tl3_shape(t.rows, t.cols):
            raise CheckpointFormatError(f"{name}: tl3 data of shape {list(data_shape)} does not hold a "
                                        f"{t.rows} x {t.cols} matrix")
        if scale is None or scale.tensor_type != Q.F32 or int(np.prod(scale.shape)) != 1:
            raise CheckpointFormatError(f"{name}: a ternary matrix needs tensor {name + SCALE_SUFFIX} holding one F32")
        found[name] = t
    return found
