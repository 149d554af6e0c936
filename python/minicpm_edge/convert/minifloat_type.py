"""Minifloat file types (docs/FORMAT.md, "Minifloats", format version 1): the element
formats of minifloat.py stored as codes with block scales.

Types: ``{e4m3,e5m2,e3m2,e2m3,e2m1}g{G}`` (an f16 scale per group of G = 16/32/64/128
inputs, the group's max magnitude mapped to the element's largest value), the OCP MX
formats ``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp6_e3m2``, ``mxfp6_e2m3``, ``mxfp4`` (blocks of
32, E8M0 scale; OCP Microscaling Formats v1.0) and ``nvfp4`` (E2M1, blocks of 16, an E4M3
scale times one f32 tensor scale; NVIDIA NVFP4). A matrix ``X.weight`` [M, K] becomes

- ``X.weight``              I8, numpy shape [M, K*b/8]: each row a little-endian bit string
                            of K b-bit codes (as lowbit.py packs them: 8-bit one per byte,
                            6-bit four per 3 bytes, 4-bit two per byte, low nibble first);
- ``X.weight.scale``        F16 [M, K/G] (f16 groups), or I8 [M, K/B] holding the E8M0 (MX)
                            or E4M3 (NVFP4) scale codes as bytes;
- ``X.weight.tensor_scale`` F32 [1] (NVFP4 only);
- ``minicpm_edge.minifloat.X.weight`` = UINT32 [exp_bits, man_bits, block, scaling]
  (scaling 0 f16, 1 E8M0, 2 NVFP4).

A weight is ``v(code) * s`` in f32, s the block's scale (NVFP4: f32(tensor_scale *
e4m3(c))). The values are exactly those of the value grids (grids.py, minifloat.py):
the same scales, the same rounding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from . import minifloat as mf
from .descriptors import check_parts, described
from .errors import CheckpointFormatError, ConvertError
from .lowbit import pack_codes, unpack_codes

Q = GGMLQuantizationType

KEY_PREFIX = "minicpm_edge.minifloat."
SCALE_SUFFIX = ".scale"
TENSOR_SCALE_SUFFIX = ".tensor_scale"
F16, E8M0, NVFP4 = 0, 1, 2
GROUPS = (16, 32, 64, 128)
ELEMENTS = ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1")
MX_NAMES = {"mxfp8_e4m3": "e4m3", "mxfp8_e5m2": "e5m2", "mxfp6_e3m2": "e3m2", "mxfp6_e2m3": "e2m3",
            "mxfp4": "e2m1"}
FORMS = ("{e4m3,e5m2,e3m2,e2m3,e2m1}g{G} (G = 16, 32, 64, 128), mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, "
         "mxfp6_e2m3, mxfp4, nvfp4")
_GROUPED = re.compile(r"(e\dm\d)g(\d+)")


@dataclass(frozen=True)
class MiniFloatType:
    element: str        # "e4m3", ...
    block: int          # inputs per scale
    scaling: int        # F16, E8M0 or NVFP4

    @property
    def fmt(self) -> mf.MiniFloat:
        return mf.FORMATS[self.element]

    @property
    def name(self) -> str:
        if self.scaling == NVFP4:
            return "nvfp4"
        if self.scaling == E8M0:
            return next(n for n, e in MX_NAMES.items() if e == self.element)
        return f"{self.element}g{self.block}"

    @property
    def bits(self) -> int:
        return self.fmt.bits

    @property
    def group(self) -> int:
        """Inputs a row must split into whole numbers of (6-bit rows also into fours)."""
        return self.block

    def descriptor(self) -> list[int]:
        return [self.fmt.exp_bits, self.fmt.man_bits, self.block, self.scaling]

    def fits(self, shape: Sequence[int]) -> bool:
        return len(shape) == 2 and shape[-1] % self.block == 0 and shape[-1] % 8 == 0 and min(shape) > 0

    def part_names(self, name: str) -> list[str]:
        return [name, name + SCALE_SUFFIX] + ([name + TENSOR_SCALE_SUFFIX] if self.scaling == NVFP4 else [])

    def parts(self, name: str, shape: Sequence[int]) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType]]:
        rows, cols = (int(d) for d in shape)
        out = [(name, (rows, cols * self.bits // 8), Q.I8),
               (name + SCALE_SUFFIX, (rows, cols // self.block), Q.F16 if self.scaling == F16 else Q.I8)]
        if self.scaling == NVFP4:
            out.append((name + TENSOR_SCALE_SUFFIX, (1,), Q.F32))
        return out

    def matrix_shape(self, codes_shape: Sequence[int]) -> tuple[int, int]:
        rows, nbytes = (int(d) for d in codes_shape)
        return rows, nbytes * 8 // self.bits

    # ---- scales -------------------------------------------------------------------------
    def tensor_scale(self, w: np.ndarray) -> np.float32:
        return mf.nvfp4_tensor_scale(w) if self.scaling == NVFP4 else np.float32(1)

    def scale_codes(self, g: np.ndarray, s_t: np.float32) -> np.ndarray:
        """The stored scales of blocks g [..., B]: binary16 values, or E8M0 / E4M3 codes."""
        if self.scaling == F16:
            return mf.group_scale(g, self.fmt).astype(np.float16)
        if self.scaling == E8M0:
            return mf.mx_scale_codes(g, self.fmt)
        return mf.nvfp4_scale_codes(g, s_t)

    def scale_values(self, codes: np.ndarray, s_t: np.float32) -> np.ndarray:
        """f32 scales of stored scales (what the runtime computes from them)."""
        if self.scaling == F16:
            return np.asarray(codes).view(np.float16).astype(np.float32)
        if self.scaling == E8M0:
            return mf.e8m0_decode(np.asarray(codes).view(np.uint8)).astype(np.float32)
        return (mf.E4M3.decode(np.asarray(codes).view(np.uint8)) * np.float32(s_t)).astype(np.float32)

    def block_scales(self, g: np.ndarray, sc: np.ndarray, s_t: np.float32) -> np.ndarray:
        """The f32 scales the codes of blocks g [..., B] are cast under: those of the stored
        scales, and 0 for an all-zero block (E8M0 has no zero; such a block gets all-zero
        codes, as the grids' scaled_cast gives it zeros)."""
        return np.where(np.abs(g).max(axis=-1) > 0, self.scale_values(sc, s_t), np.float32(0)).astype(np.float32)

    # ---- quantization -------------------------------------------------------------------
    def element_codes(self, g: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Codes of g [..., n] under f32 scales s [...]: cast(g / s), all 0 where s is 0
        (as minifloat.scaled_cast, which writes 0.0 there)."""
        s = np.asarray(s, np.float32)[..., None]
        codes = self.fmt.encode(np.asarray(g, np.float32) / np.where(s > 0, s, 1.0))
        return np.where(s > 0, codes, 0).astype(np.uint8)

    def blocks(self, w: np.ndarray, what: str = "tensor") -> np.ndarray:
        w = np.asarray(w, np.float32)
        if not self.fits(w.shape):
            raise ConvertError(f"{what}: shape {list(w.shape)} is not a matrix with rows a multiple of {self.block}")
        if not np.isfinite(w).all():
            raise ConvertError(f"{what}: weights are not finite")
        return w.reshape(w.shape[0], w.shape[1] // self.block, self.block)

    def quantize_rtn(self, w: np.ndarray, what: str = "tensor") -> tuple:
        """(codes uint8 [M, K], stored scales [M, K/B], tensor scale) by round to nearest."""
        g = self.blocks(w, what)
        s_t = self.tensor_scale(w)
        sc = self.scale_codes(g, s_t)
        self._check_scales(sc, what)
        codes = self.element_codes(g, self.block_scales(g, sc, s_t))
        return codes.reshape(g.shape[0], -1), sc, s_t

    def quantize_gptq(self, w: np.ndarray, h: np.ndarray, damp: float, act_order: bool = True,
                      what: str = "tensor") -> tuple:
        """GPTQ (gptq.gptq_sweep) onto this grid, each group's scale fixed from the weights
        as GPTQ has them when it reaches the group (as minifloat.gptq_values does)."""
        from .gptq import gptq_sweep
        g = self.blocks(w, what)
        rows, cols = g.shape[0], g.shape[1] * self.block
        s_t = self.tensor_scale(w)
        sc = np.zeros(g.shape[:2], np.float16 if self.scaling == F16 else np.uint8)
        scales = np.zeros(g.shape[:2], np.float32)
        codes = np.zeros((rows, cols), np.uint8)

        def set_params(grp: int, values: np.ndarray, _importance: np.ndarray) -> None:
            sc[:, grp] = self.scale_codes(values, s_t)
            scales[:, grp] = self.block_scales(values, sc[:, grp], s_t)

        def round_column(j: int, col: np.ndarray) -> np.ndarray:
            s = scales[:, j // self.block]
            codes[:, j] = self.element_codes(col[:, None], s)[:, 0]
            return (self.fmt.decode(codes[:, j]) * s).astype(np.float32)

        gptq_sweep(np.asarray(w, np.float32), h, self.block, set_params, round_column, damp=damp,
                   act_order=act_order)
        self._check_scales(sc, what)
        return codes, sc, s_t

    def _check_scales(self, sc: np.ndarray, what: str) -> None:
        if self.scaling == F16 and not np.isfinite(sc).all():
            raise ConvertError(f"{what}: weights too large for binary16 group scales")

    # ---- storage ------------------------------------------------------------------------
    def pack(self, codes: np.ndarray, sc: np.ndarray, s_t) -> tuple[np.ndarray, ...]:
        """(codes, stored scales, tensor scale) -> the data of ``parts``."""
        out = (pack_codes(codes, self.bits).view(np.int8),
               sc if self.scaling == F16 else np.ascontiguousarray(sc, np.uint8).view(np.int8))
        return out + ((np.array([s_t], np.float32),) if self.scaling == NVFP4 else ())

    def encode(self, values: np.ndarray, what: str = "tensor") -> tuple[np.ndarray, ...]:
        return self.pack(*self.quantize_rtn(values, what))

    def decode(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """The stored tensors of one matrix -> float32 [M, K] (the reader's arithmetic)."""
        codes = unpack_codes(np.asarray(parts[0]).view(np.uint8), self.bits)
        rows, cols = codes.shape
        s_t = np.float32(np.asarray(parts[2]).reshape(-1)[0]) if self.scaling == NVFP4 else np.float32(1)
        sc = np.asarray(parts[1]).reshape(rows, cols // self.block)
        s = self.scale_values(sc, s_t)
        v = self.fmt.decode(codes).reshape(rows, cols // self.block, self.block)
        return (v * s[..., None]).astype(np.float32).reshape(rows, cols)


def parse_minifloat(name: str) -> MiniFloatType | None:
    """``e2m1g32`` / ``mxfp4`` / ``nvfp4`` -> MiniFloatType; None for other names."""
    key = str(name).strip().lower()
    if key == "nvfp4":
        return MiniFloatType("e2m1", 16, NVFP4)
    if key in MX_NAMES:
        return MiniFloatType(MX_NAMES[key], 32, E8M0)
    m = _GROUPED.fullmatch(key)
    if m and m[1] in ELEMENTS and int(m[2]) in GROUPS:
        return MiniFloatType(m[1], int(m[2]), F16)
    return None


def all_types() -> list[MiniFloatType]:
    return ([MiniFloatType(e, g, F16) for e in ELEMENTS for g in GROUPS]
            + [parse_minifloat(n) for n in MX_NAMES] + [parse_minifloat("nvfp4")])


def type_from_descriptor(values: Sequence[int]) -> MiniFloatType | None:
    if len(values) != 4:
        return None
    e, m, block, scaling = (int(v) for v in values)
    for t in all_types():
        if t.descriptor() == [e, m, block, scaling]:
            return t
    return None


# ---- metadata --------------------------------------------------------------------------------
def add_descriptors(w: GGUFWriter, matrices: Sequence[tuple[str, MiniFloatType]]) -> None:
    for name, t in matrices:
        w.add_key_value(KEY_PREFIX + name, t.descriptor(), GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)


def is_minifloat_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX)


def read_descriptors(reader) -> dict[str, MiniFloatType]:
    """Minifloat matrices of a gguf.GGUFReader, checked against FORMAT.md; name -> type."""
    found: dict[str, MiniFloatType] = {}
    for _, name, t, tensors in described(reader, KEY_PREFIX, type_from_descriptor,
                                         f"minifloat descriptor (UINT32 [exp_bits, man_bits, block, scaling] of one "
                                         f"of {FORMS})"):
        codes = tensors[name]
        rows = int(codes.shape[-1]) if len(codes.shape) == 2 else 0
        nbytes = int(codes.shape[0])
        cols = nbytes * 8 // t.bits
        if codes.tensor_type != Q.I8 or rows == 0 or (nbytes * 8) % t.bits or not t.fits((rows, cols)):
            raise CheckpointFormatError(f"{name}: codes must be an I8 matrix of whole {t.name} blocks")
        check_parts(name, t.name, t.parts(name, (rows, cols)), tensors)
        if t.scaling != NVFP4 and name + TENSOR_SCALE_SUFFIX in tensors:
            raise CheckpointFormatError(f"{name}: {t.name} has no tensor scale, but {name + TENSOR_SCALE_SUFFIX} "
                                        "exists")
        found[name] = t
    return found
