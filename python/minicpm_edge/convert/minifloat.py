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


def group_scaled(w: np.ndarray, fmt: MiniFloat, group: int) -> np.ndarray:
    """Values of ``w`` [M, K] stored as ``fmt`` codes with an f16 scale per group of
    ``group`` inputs (the group's max magnitude maps to the format's largest value)."""
    rows, cols = w.shape
    g = np.asarray(w, np.float32).reshape(rows, cols // group, group)
    d = (np.abs(g).max(axis=-1) / np.float32(fmt.max_finite)).astype(np.float16).astype(np.float32)
    safe = np.where(d > 0, d, 1.0)[..., None]
    q = fmt.cast(g / safe) * safe
    return np.where(d[..., None] > 0, q, 0.0).reshape(rows, cols).astype(np.float32)


def mx(w: np.ndarray, fmt: MiniFloat, block: int = 32) -> np.ndarray:
    """OCP MX: per block of 32 an E8M0 scale 2^(floor(log2 amax) - emax), elements
    cast with saturation."""
    rows, cols = w.shape
    g = np.asarray(w, np.float32).reshape(rows, cols // block, block)
    amax = np.abs(g).max(axis=-1)
    exp = np.floor(np.log2(np.where(amax > 0, amax, 1.0))).astype(np.int64) - EMAX[fmt.name]
    scale = e8m0_decode(e8m0_encode_exponent(exp))
    scale = np.where(amax > 0, scale, 1.0)[..., None]
    return (fmt.cast(g / scale) * scale).reshape(rows, cols).astype(np.float32)


def nvfp4(w: np.ndarray, block: int = 16) -> np.ndarray:
    """NVFP4: E2M1 elements, an E4M3 scale per block of 16, one f32 tensor scale."""
    rows, cols = w.shape
    g = np.asarray(w, np.float32).reshape(rows, cols // block, block)
    amax_t = float(np.abs(g).max())
    if amax_t == 0:
        return np.zeros_like(np.asarray(w, np.float32))
    s_t = np.float32(amax_t / (E2M1.max_finite * E4M3.max_finite))
    s_b = E4M3.cast(np.abs(g).max(axis=-1) / (E2M1.max_finite * s_t))
    scale = (s_b * s_t)[..., None]
    safe = np.where(scale > 0, scale, 1.0)
    return np.where(scale > 0, E2M1.cast(g / safe) * safe, 0.0).reshape(rows, cols).astype(np.float32)
