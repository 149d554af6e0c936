"""Minifloat element formats and their block-scaled standards (OCP MX v1.0, NVFP4).

Element formats (sign, E exponent bits, M mantissa bits, bias; OCP conventions):
value = (-1)^s * 2^(e - bias) * (1 + m/2^M) for e > 0, and 2^(1 - bias) * m/2^M for
e = 0 (subnormals). FP8 E4M3 has no infinities and one NaN per sign (S.1111.111), so
its largest finite value is 448; FP8 E5M2 keeps IEEE's infinities and NaNs
(exponent all ones), largest 57344; the FP6 (E3M2, E2M3), FP4 (E2M1) and 3-bit (E2M0,
power-of-two values {0, 1, 2, 4}) formats have neither. Casting rounds to nearest,
ties to even (the code with mantissa LSB 0), and saturates at the largest finite
magnitude, as the MX spec's conversion does for formats without infinities.

E8M0 is the MX shared scale: 2^(c - 127) for c = 0..254, c = 255 NaN.

Quantizers (fake quantization: float -> codes and scales -> float values):
- ``group_scaled``: per group of G inputs an f16 scale d = max|w| / max_finite,
  codes = cast(w / d);
- ``mx``: MXFP blocks of 32 with an E8M0 scale 2^(floor(log2 max|w|) - emax_elem);
- ``nvfp4``: E2M1 blocks of 16 with an E4M3 scale and one f32 tensor scale
  amax / (6 * 448).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class MiniFloat:
    name: str
    exp_bits: int
    man_bits: int
    bias: int
    ieee_specials: bool = False   # exponent all ones = Inf/NaN (E5M2)
    top_code_nan: bool = False    # S.1..1.1..1 = NaN, no Inf (E4M3)

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def sign_bit(self) -> int:
        return 1 << (self.exp_bits + self.man_bits)

    def magnitude(self, code: int) -> float:
        """Value of a sign-less code (0 .. 2^(E+M) - 1); inf or nan for specials."""
        e, m = code >> self.man_bits, code & ((1 << self.man_bits) - 1)
        top = (1 << self.exp_bits) - 1
        if self.ieee_specials and e == top:
            return float("inf") if m == 0 else float("nan")
        if self.top_code_nan and e == top and m == (1 << self.man_bits) - 1:
            return float("nan")
        frac = m / (1 << self.man_bits)
        if e == 0:
            return 2.0 ** (1 - self.bias) * frac
        return 2.0 ** (e - self.bias) * (1.0 + frac)

    @cached_property
    def table(self) -> np.ndarray:
        """float64 value of every code 0 .. 2^bits - 1 (decode table)."""
        mags = [self.magnitude(c) for c in range(self.sign_bit)]
        return np.array(mags + [-v for v in mags], dtype=np.float64)

    @cached_property
    def _finite(self) -> tuple[np.ndarray, np.ndarray]:
        """Finite non-negative magnitudes, ascending, and their codes."""
        mags = self.table[:self.sign_bit]
        codes = np.flatnonzero(np.isfinite(mags))
        order = np.argsort(mags[codes], kind="stable")
        return mags[codes][order], codes[order]

    @property
    def max_finite(self) -> float:
        return float(self._finite[0][-1])

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.table[np.asarray(codes, dtype=np.int64)].astype(np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codes (uint8) of float values: nearest, ties to even, saturating; the sign
        is kept (so -0.0 and small negatives that round to zero give the negative zero)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self.name}: cannot encode non-finite values")
        mags, codes = self._finite
        a = np.abs(x)
        hi = np.clip(np.searchsorted(mags, a, side="left"), 1, len(mags) - 1)
        lo = hi - 1
        dl, dh = a - mags[lo], mags[hi] - a
        pick_hi = (dh < dl) | ((dh == dl) & (codes[hi] % 2 == 0))
        out = np.where(pick_hi, codes[hi], codes[lo])
        out = np.where(a >= mags[-1], codes[-1], out)      # saturate
        out = np.where(np.signbit(x), out | self.sign_bit, out)
        return out.astype(np.uint8)

    def cast(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))


E4M3 = MiniFloat("e4m3", 4, 3, 7, top_code_nan=True)
E5M2 = MiniFloat("e5m2", 5, 2, 15, ieee_specials=True)
E3M2 = MiniFloat("e3m2", 3, 2, 3)
E2M3 = MiniFloat("e2m3", 2, 3, 1)
E2M1 = MiniFloat("e2m1", 2, 1, 1)
E2M0 = MiniFloat("e2m0", 2, 0, 1)
FORMATS = {f.name: f for f in (E4M3, E5M2, E3M2, E2M3, E2M1, E2M0)}
# emax of each element format: the exponent of its largest normal (OCP MX v1.0, table 2).
EMAX = {"e4m3": 8, "e5m2": 15, "e3m2": 4, "e2m3": 2, "e2m1": 2}


def e8m0_decode(codes: np.ndarray) -> np.ndarray:
    c = np.asarray(codes, dtype=np.int64)
    return np.where(c == 255, np.nan, np.ldexp(1.0, c - 127))


def e8m0_encode_exponent(exp: np.ndarray) -> np.ndarray:
    """The E8M0 code of 2^exp, exp clamped to the representable -127..127."""
    return (np.clip(np.asarray(exp, dtype=np.int64), -127, 127) + 127).astype(np.uint8)


def scaled_cast(g: np.ndarray, scale: np.ndarray, fmt: MiniFloat) -> np.ndarray:
    """Values of groups g [..., G] as ``fmt`` codes times their scale [...]; a zero
    scale stands for an all-zero group."""
    s = np.asarray(scale, np.float32)[..., None]
    safe = np.where(s > 0, s, 1.0)
    return np.where(s > 0, fmt.cast(np.asarray(g, np.float32) / safe) * safe, 0.0).astype(np.float32)


def group_scale(g: np.ndarray, fmt: MiniFloat) -> np.ndarray:
    """f16 scale of each group [..., G]: its max magnitude maps to the largest value."""
    return (np.abs(g).max(axis=-1) / np.float32(fmt.max_finite)).astype(np.float16).astype(np.float32)


def mx_scale_codes(g: np.ndarray, fmt: MiniFloat) -> np.ndarray:
    """E8M0 code of each block's [..., 32] OCP MX scale 2^(floor(log2 amax) - emax) (an
    all-zero block gets the code of 2^-emax; its elements are all zero)."""
    amax = np.abs(g).max(axis=-1)
    exp = np.floor(np.log2(np.where(amax > 0, amax, 1.0))).astype(np.int64) - EMAX[fmt.name]
    return e8m0_encode_exponent(exp)


def mx_scale(g: np.ndarray, fmt: MiniFloat) -> np.ndarray:
    """OCP MX scale of each block [..., 32]: 2^(floor(log2 amax) - emax) as E8M0 (0 for an
    all-zero block)."""
    amax = np.abs(g).max(axis=-1)
    return np.where(amax > 0, e8m0_decode(mx_scale_codes(g, fmt)), 0.0).astype(np.float32)


def nvfp4_tensor_scale(w: np.ndarray) -> np.float32:
    return np.float32(float(np.abs(w).max()) / (E2M1.max_finite * E4M3.max_finite))


def nvfp4_scale_codes(g: np.ndarray, s_t: np.float32) -> np.ndarray:
    """E4M3 code of each block's [..., 16] NVFP4 scale: amax / (6 s_t), rounded (0 when
    the tensor scale is 0)."""
    if s_t == 0:
        return np.zeros(g.shape[:-1], np.uint8)
    return E4M3.encode(np.abs(g).max(axis=-1) / (E2M1.max_finite * s_t))


def nvfp4_scale(g: np.ndarray, s_t: np.float32) -> np.ndarray:
    """NVFP4 scale of each block [..., 16]: an E4M3 block scale times the tensor scale."""
    if s_t == 0:
        return np.zeros(g.shape[:-1], np.float32)
    return (E4M3.decode(nvfp4_scale_codes(g, s_t)) * s_t).astype(np.float32)


def _blocks(w: np.ndarray, size: int) -> np.ndarray:
    rows, cols = w.shape
    return np.asarray(w, np.float32).reshape(rows, cols // size, size)


def group_scaled(w: np.ndarray, fmt: MiniFloat, group: int) -> np.ndarray:
    """Values of ``w`` [M, K] stored as ``fmt`` codes with an f16 scale per group of
    ``group`` inputs (the group's max magnitude maps to the format's largest value)."""
    g = _blocks(w, group)
    return scaled_cast(g, group_scale(g, fmt), fmt).reshape(w.shape)


def mx(w: np.ndarray, fmt: MiniFloat, block: int = 32) -> np.ndarray:
    """OCP MX: per block of 32 an E8M0 scale 2^(floor(log2 amax) - emax), elements
    cast with saturation."""
    g = _blocks(w, block)
    return scaled_cast(g, mx_scale(g, fmt), fmt).reshape(w.shape)


def nvfp4(w: np.ndarray, block: int = 16) -> np.ndarray:
    """NVFP4: E2M1 elements, an E4M3 scale per block of 16, one f32 tensor scale."""
    g = _blocks(w, block)
    return scaled_cast(g, nvfp4_scale(g, nvfp4_tensor_scale(w)), E2M1).reshape(w.shape)


def gptq_values(w: np.ndarray, h: np.ndarray, fmt: MiniFloat, group: int, scale, act_order: bool = True
                ) -> np.ndarray:
    """GPTQ (gptq.gptq_sweep) onto a scaled minifloat grid: ``scale(values [M, G])`` gives
    each row's scale of a group (group_scale, mx_scale, or nvfp4_scale with the tensor
    scale bound), fixed from the weights as GPTQ has them; returns the values chosen."""
    from .gptq import gptq_sweep
    rows, cols = w.shape
    scales = np.zeros((rows, cols // group), np.float32)
    out = np.zeros((rows, cols), np.float32)

    def set_params(grp: int, values: np.ndarray, _importance: np.ndarray) -> None:
        scales[:, grp] = scale(values)

    def round_column(j: int, col: np.ndarray) -> np.ndarray:
        out[:, j] = scaled_cast(col[:, None], scales[:, j // group], fmt)[:, 0]
        return out[:, j]

    gptq_sweep(w, h, group, set_params, round_column, act_order=act_order)
    return out
