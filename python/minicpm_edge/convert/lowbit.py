"""Low-bit group quantization ``w{b}g{G}`` / ``w{b}g{G}s`` (docs/FORMAT.md, "Low-bit group
quantization", format version 1).

A matrix ``X.weight`` of M rows (outputs) and K columns (inputs) is stored as
standard tensors plus a descriptor (DESIGN.md section 3: never an unknown type id):

- ``X.weight``       I8,  numpy shape [M, K*b/8]: each row a little-endian bit string of
                     K b-bit codes (code k in bits k*b .. k*b+b-1);
- ``X.weight.scale`` F16, [M, K/G]: the scale d of each group of G inputs;
- ``X.weight.min``   F16, [M, K/G]: the offset m of each group (asymmetric only);
- ``minicpm_edge.lowbit.X.weight`` = UINT32 [b, G, has_min].

Weights are ``w = d*q + m`` (asymmetric) or ``w = d*(q - (2^b-1)/2)`` (symmetric).
RTN is here; GPTQ (gptq.py) gives codes and params in the same layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from .descriptors import check_parts, described
from .errors import CheckpointFormatError, ConvertError, UnknownOutTypeError

Q = GGMLQuantizationType

FORMAT_VERSION = 1
BITS = (1, 2, 3, 4)
GROUPS = (32, 64, 128)
KEY_FORMAT_VERSION = "minicpm_edge.format_version"
KEY_FILE_TYPE = "minicpm_edge.file_type"
KEY_PREFIX = "minicpm_edge.lowbit."
SCALE_SUFFIX = ".scale"
MIN_SUFFIX = ".min"
FORMS = ("w{b}g{G} (asymmetric, with zero point) or w{b}g{G}s (symmetric), "
         "b = 1..4 bits, G = 32, 64 or 128 inputs per group, e.g. w2g64, w4g128s")

_NAME = re.compile(r"w(\d+)g(\d+)(s?)")


@dataclass(frozen=True)
class LowBitType:
    bits: int
    group: int
    symmetric: bool

    @property
    def name(self) -> str:
        return f"w{self.bits}g{self.group}" + ("s" if self.symmetric else "")

    @property
    def has_min(self) -> bool:
        return not self.symmetric

    @property
    def max_code(self) -> int:
        return (1 << self.bits) - 1

    def descriptor(self) -> list[int]:
        return [self.bits, self.group, int(self.has_min)]

    def fits(self, shape: Sequence[int]) -> bool:
        """Whether a numpy-order matrix shape [M, K] can take this type (K a multiple of G)."""
        return len(shape) == 2 and shape[-1] % self.group == 0

    def part_names(self, name: str) -> list[str]:
        return [name, name + SCALE_SUFFIX] + ([name + MIN_SUFFIX] if self.has_min else [])

    def parts(self, name: str, shape: Sequence[int]) -> list[tuple[str, tuple[int, int], GGMLQuantizationType]]:
        """(tensor name, numpy-order shape, ggml type) of the tensors matrix ``name`` [M, K] becomes."""
        rows, cols = (int(d) for d in shape)
        shapes = [(rows, cols * self.bits // 8), (rows, cols // self.group), (rows, cols // self.group)]
        types = [Q.I8, Q.F16, Q.F16]
        return list(zip(self.part_names(name), shapes, types))


def parse_lowbit(name: str) -> LowBitType | None:
    """``w2g64`` -> LowBitType(2, 64, False); None when ``name`` is not of the w..g.. form at all."""
    m = _NAME.fullmatch(str(name).strip().lower())
    if m is None:
        return None
    bits, group = int(m[1]), int(m[2])
    if bits not in BITS or group not in GROUPS:
        raise UnknownOutTypeError(f"unsupported low-bit type {name!r}: the forms are {FORMS}")
    return LowBitType(bits, group, symmetric=m[3] == "s")


def all_types() -> list[LowBitType]:
    return [LowBitType(b, g, s) for b in BITS for g in GROUPS for s in (False, True)]


# ---- quantization ----------------------------------------------------------------------------
def quantize_rtn(w: np.ndarray, t: LowBitType, what: str = "tensor"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Round-to-nearest per group, as FORMAT.md specifies it.

    w: float [M, K] with K a multiple of G. Returns (codes uint8 [M, K] in [0, 2^b),
    d float16 [M, K/G], m float16 [M, K/G] or None when symmetric). d and m are
    rounded to binary16 before the codes are computed, so the codes fit the stored
    values; a group with d == 0 gets all-zero codes. Asymmetric groups of at least 2
    bits whose values are exactly -s, 0 and s (BitCPM4's fake-quantized weights) are
    held exactly instead: d = s, m = -s, q = t + 1 (keep_ternary_groups).
    """
    g = as_groups(w, t, what)
    d16, m16 = rtn_params(g, t)
    check_params(d16, m16, what)
    codes = group_codes(g, d16, m16, t)
    if t.has_min and t.bits >= 2:
        keep_ternary_groups(g, d16, m16, codes)
    return codes.reshape(g.shape[0], -1), d16, m16


def keep_ternary_groups(g: np.ndarray, d16: np.ndarray, m16: np.ndarray, codes: np.ndarray) -> int:
    """Rewrites, in place, the params and codes of the groups of g [..., G] that hold
    ternary values t * s (t in {-1, 0, 1}, one s > 0 per group, all three present) so
    that they decode to exactly those values: the range rule would put the levels at
    -s, -s/3, s/3, s and lose the zeros. BitCPM4 (MiniCPM4 tech report) releases its ternary models this
    way, with an absmean scale per group of inputs. Returns how many groups it kept."""
    a = np.abs(g)
    s = a.max(axis=-1)
    ternary = (s > 0) & ((a == 0) | (a == s[..., None])).all(axis=-1)
    # Only where the range rule fails: -s, 0 and s all present (two of them fit its levels).
    ternary &= (g == 0).any(axis=-1) & (g > 0).any(axis=-1) & (g < 0).any(axis=-1)
    ternary &= s.astype(np.float16).astype(np.float32) == s     # s itself must be a binary16 value
    if ternary.any():
        s16 = s[ternary].astype(np.float16)
        d16[ternary] = s16
        m16[ternary] = -s16
        codes[ternary] = (np.sign(g[ternary]) + 1).astype(np.uint8)
    return int(ternary.sum())


def as_groups(w: np.ndarray, t: LowBitType, what: str = "tensor") -> np.ndarray:
    """float32 view [M, K/G, G] of a matrix [M, K] (K a multiple of G)."""
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] % t.group:
        raise ConvertError(f"{what}: shape {list(w.shape)} is not a matrix with rows a multiple of {t.group}")
    return w.reshape(w.shape[0], w.shape[1] // t.group, t.group)


def rtn_params(g: np.ndarray, t: LowBitType) -> tuple[np.ndarray, np.ndarray | None]:
    """binary16 (d, m) of groups g [..., G] that span them exactly: the range for
    asymmetric groups, the largest magnitude for symmetric ones (m is None)."""
    with np.errstate(over="ignore"):   # a range beyond binary16 becomes inf, reported by check_params
        if t.symmetric:
            return (np.abs(g).max(axis=-1) / np.float32(t.max_code / 2)).astype(np.float16), None
        lo = g.min(axis=-1)
        return ((g.max(axis=-1) - lo) / np.float32(t.max_code)).astype(np.float16), lo.astype(np.float16)


def check_params(d16: np.ndarray, m16: np.ndarray | None, what: str) -> None:
    # NaN/inf weights or a range beyond binary16 would give codes that decode to NaN.
    if not np.isfinite(d16).all() or (m16 is not None and not np.isfinite(m16).all()):
        raise ConvertError(f"{what}: weights are not finite or too large for binary16 group scales")


def group_codes(g: np.ndarray, d16: np.ndarray, m16: np.ndarray | None, t: LowBitType) -> np.ndarray:
    """Nearest codes of groups g [..., G] under binary16 params d16/m16 [...] (a group
    with d == 0 gets all-zero codes)."""
    zero = d16 == 0
    d = np.where(zero, np.float16(1), d16).astype(np.float32)[..., None]
    if t.symmetric:
        x = g / d
        x += np.float32(t.max_code / 2)
    else:
        x = g - m16.astype(np.float32)[..., None]
        x /= d
    np.rint(x, out=x)
    np.clip(x, 0, t.max_code, out=x)
    codes = x.astype(np.uint8)
    codes[zero] = 0
    return codes


def group_values(codes: np.ndarray, d16: np.ndarray, m16: np.ndarray | None, t: LowBitType) -> np.ndarray:
    """float32 weights of codes [..., G] under d16/m16 [...]: FORMAT.md's w = d*q + m
    (or d*(q - (2^b-1)/2)), evaluated in f32 with the product first."""
    q = codes.astype(np.float32)
    if t.symmetric:
        q -= np.float32(t.max_code / 2)
    w = q * np.asarray(d16, dtype=np.float32)[..., None]
    if m16 is not None:
        w += np.asarray(m16, dtype=np.float32)[..., None]
    return w


def dequantize(codes: np.ndarray, d: np.ndarray, m: np.ndarray | None, t: LowBitType) -> np.ndarray:
    """codes uint8 [M, K], d/m float16 [M, K/G] -> float32 [M, K], evaluated in f32 with
    the product first, as FORMAT.md states."""
    rows, cols = codes.shape
    return group_values(codes.reshape(rows, cols // t.group, t.group), d, m, t).reshape(rows, cols)


# ---- bit packing -----------------------------------------------------------------------------
# Eight b-bit codes are exactly b bytes of the row's bit string, so rows are handled
# eight codes at a time through one little-endian 64-bit word (8*b <= 64 bits):
# code i of the eight sits at bit i*b of the word, and the word's low b bytes are
# the b bytes of the string. This also covers b = 3 and 6, where codes straddle bytes.
def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """uint8 codes [M, K] (K a multiple of 8, values < 2^bits, bits <= 8) -> uint8 [M, K*bits/8]."""
    rows, cols = codes.shape
    if cols % 8:
        raise ValueError(f"row length {cols} is not a multiple of 8")
    c = codes.reshape(rows, cols // 8, 8)
    word = c[:, :, 0].astype("<u8")
    for i in range(1, 8):
        word |= c[:, :, i].astype("<u8") << np.uint64(i * bits)
    return np.ascontiguousarray(word.view(np.uint8).reshape(rows, cols // 8, 8)[:, :, :bits]).reshape(
        rows, cols * bits // 8)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [M, K*bits/8] -> codes uint8 [M, K] (the inverse of pack_codes)."""
    packed = np.asarray(packed).view(np.uint8)
    rows, nbytes = packed.shape
    if nbytes % bits:
        raise ValueError(f"{nbytes} bytes per row do not hold whole groups of 8 {bits}-bit codes")
    words = np.zeros((rows, nbytes // bits, 8), np.uint8)
    words[:, :, :bits] = packed.reshape(rows, nbytes // bits, bits)
    word = words.view("<u8")[:, :, 0]
    mask = np.uint64((1 << bits) - 1)
    out = np.empty((rows, nbytes // bits, 8), np.uint8)
    for i in range(8):
        out[:, :, i] = (word >> np.uint64(i * bits)) & mask
    return out.reshape(rows, -1)


def pack(codes: np.ndarray, d: np.ndarray, m: np.ndarray | None, t: LowBitType) -> tuple[np.ndarray, ...]:
    """codes [M, K] and group params [M, K/G] (any method's) -> the data of ``t.parts``."""
    out = (pack_codes(codes, t.bits).view(np.int8), d)
    return out + ((m,) if m is not None else ())


def decode(parts: Sequence[np.ndarray], t: LowBitType) -> np.ndarray:
    """The stored tensors of one matrix (codes, scale[, min]) -> float32 [M, K]."""
    codes = unpack_codes(np.asarray(parts[0]).view(np.uint8), t.bits)
    m = np.asarray(parts[2]).view(np.float16) if t.has_min else None
    return dequantize(codes, np.asarray(parts[1]).view(np.float16), m, t)


# ---- metadata --------------------------------------------------------------------------------
def add_metadata(w: GGUFWriter, file_type: str, matrices: Iterable[tuple[str, LowBitType]]) -> None:
    """The project keys of a low-bit file (no general.file_type: llama.cpp has no value for it)."""
    w.add_uint32(KEY_FORMAT_VERSION, FORMAT_VERSION)
    w.add_string(KEY_FILE_TYPE, file_type)
    for name, t in matrices:
        w.add_key_value(KEY_PREFIX + name, t.descriptor(), GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)


def is_lowbit_key(key: str) -> bool:
    return key in (KEY_FORMAT_VERSION, KEY_FILE_TYPE) or key.startswith(KEY_PREFIX)


def type_from_descriptor(values: Sequence[int]) -> LowBitType | None:
    """[b, G, has_min] -> LowBitType, None when the values are not a valid descriptor."""
    if len(values) != 3:
        return None
    bits, group, has_min = (int(v) for v in values)
    if bits not in BITS or group not in GROUPS or has_min not in (0, 1):
        return None
    return LowBitType(bits, group, symmetric=has_min == 0)


def read_descriptors(reader) -> dict[str, LowBitType]:
    """Low-bit matrices of a gguf.GGUFReader, checked against FORMAT.md; tensor name -> type."""
    found: dict[str, LowBitType] = {}
    for _, name, t, tensors in described(reader, KEY_PREFIX, type_from_descriptor,
                                         "low-bit descriptor (UINT32 [bits 1..4, group 32/64/128, has_min 0/1])"):
        codes = tensors[name]
        rows = int(codes.shape[-1]) if len(codes.shape) == 2 else 0
        nbytes = int(codes.shape[0])
        if codes.tensor_type != Q.I8 or rows == 0 or (nbytes * 8) % t.bits or (nbytes * 8 // t.bits) % t.group:
            raise CheckpointFormatError(f"{name}: codes must be an I8 matrix of whole {t.name} groups")
        check_parts(name, t.name, t.parts(name, (rows, nbytes * 8 // t.bits)), tensors)
        if t.symmetric and name + MIN_SUFFIX in tensors:
            raise CheckpointFormatError(f"{name}: symmetric descriptor but a {name + MIN_SUFFIX} tensor exists")
        found[name] = t
    return found


def matrix_shape(codes_shape: Sequence[int], t: LowBitType) -> tuple[int, int]:
    """numpy-order shape [M, K] of the matrix whose codes tensor has numpy shape [M, K*b/8]."""
    rows, nbytes = (int(d) for d in codes_shape)
    return rows, nbytes * 8 // t.bits
