"""Minifloat file types (docs/FORMAT.md "Minifloats"): the runtime's decoding of every
code against ml_dtypes (independent oracle) and the converter's codec, scales against
their definitions, the matmul driver against numpy (exact path, and the int8 path with
the gguf package's Q8_0 activation quantization), and the converter's RTN / GPTQ
against the value grids (grids.py / minifloat.py)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from gguf import GGMLQuantizationType, quants

from minicpm_edge import _core
from minicpm_edge.convert import minifloat as mf
from minicpm_edge.convert.grids import grid
from minicpm_edge.convert.lowbit import pack_codes, unpack_codes
from minicpm_edge.convert.minifloat_type import E8M0, F16, NVFP4, MiniFloatType, all_types, parse_minifloat

ORACLE = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn,
          "e2m3": ml_dtypes.float6_e2m3fn, "e2m1": ml_dtypes.float4_e2m1fn}
TYPES = ["e4m3g32", "e5m2g32", "e3m2g32", "e2m3g32", "e2m1g32", "e2m1g16", "e4m3g128", "mxfp8_e4m3", "mxfp8_e5m2",
         "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "nvfp4"]


def oracle_values(element: str) -> np.ndarray:
    """float64 value of every code by ml_dtypes (codes are its bit patterns)."""
    bits = mf.FORMATS[element].bits
    codes = np.arange(1 << bits, dtype=np.uint8)
    return codes.view(ORACLE[element]).astype(np.float64) if bits == 8 else \
        np.array([float(np.uint8(c).view(ORACLE[element])) for c in codes])


def decode(t: MiniFloatType, parts, rows, cols, pack=False) -> np.ndarray:
    ts = float(parts[2][0]) if t.scaling == NVFP4 else 1.0
    return _core.minifloat_decode(t.descriptor(), np.ascontiguousarray(parts[0]).view(np.uint8),
                                  np.ascontiguousarray(parts[1]).view(np.uint8), ts, rows, cols, pack=pack)


@pytest.mark.parametrize("element", list(ORACLE))
def test_every_code_decodes_as_ml_dtypes(element):
    fmt = mf.FORMATS[element]
    want = oracle_values(element)
    # The converter's codec agrees with ml_dtypes (NaN where ml_dtypes has NaN).
    np.testing.assert_array_equal(fmt.table, want)
    # The runtime: every finite code in one row of an f16-scaled matrix (scale 1); rows of
    # 32 inputs, cycling through the codes.
    finite = np.flatnonzero(np.isfinite(want)).astype(np.uint8)
    n = -(-len(finite) // 32) * 32
    codes = np.resize(finite, n)[None, :]
    t = MiniFloatType(element, 32, F16)
    parts = (pack_codes(codes, fmt.bits), np.ones((1, n // 32), np.float16))
    got = decode(t, parts, 1, n)[0]
    np.testing.assert_array_equal(got, want[codes[0]].astype(np.float32))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want[codes[0]]))
    # The int8 copy of the integer-valued formats holds the same values (+0 for -0).
    if element in ("e2m1", "e2m3"):
        assert np.array_equal(decode(t, parts, 1, n, pack=True)[0], got)


def test_e8m0_scales_decode_as_ml_dtypes():
    """Every E8M0 scale code but NaN (255), times the E2M1 value 1.0 (code 2)."""
    scales = np.arange(255, dtype=np.uint8)[None, :]
    want = scales[0].view(ml_dtypes.float8_e8m0fnu).astype(np.float32)
    t = parse_minifloat("mxfp4")
    codes = np.full((1, 255 * 32), 2, np.uint8)
    got = decode(t, (pack_codes(codes, 4), scales), 1, 255 * 32).reshape(255, 32)
    assert (got == want[:, None]).all()
    assert np.array_equal(decode(t, (pack_codes(codes, 4), scales), 1, 255 * 32, pack=True).reshape(255, 32), got)


def test_nvfp4_block_scales_are_tensor_scale_times_e4m3():
    """Every non-negative, non-NaN E4M3 block scale, times a tensor scale, in f32."""
    scales = np.arange(127, dtype=np.uint8)[None, :]
    s_t = np.float32(3.7e-4)
    want = (scales[0].view(ml_dtypes.float8_e4m3fn).astype(np.float32) * s_t) * np.float32(6)
    t = parse_minifloat("nvfp4")
    codes = np.full((1, 127 * 16), 7, np.uint8)    # E2M1 code 7 = 6.0
    parts = (pack_codes(codes, 4), scales, np.array([s_t], np.float32))
    got = decode(t, parts, 1, 127 * 16).reshape(127, 16)
    assert (got == want[:, None]).all()
    assert np.array_equal(decode(t, parts, 1, 127 * 16, pack=True).reshape(127, 16), got)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_code_packing_is_the_little_endian_bit_string(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 1 << bits, (3, 64)).astype(np.uint8)
    packed = pack_codes(codes, bits)
    assert packed.shape == (3, 64 * bits // 8)
    bitstring = np.unpackbits(packed, axis=1, bitorder="little")
    for k in (0, 1, 2, 3, 5, 63):
        field = bitstring[:, k * bits:(k + 1) * bits]
        assert np.array_equal((field << np.arange(bits)).sum(axis=1), codes[:, k])
    assert np.array_equal(unpack_codes(packed, bits), codes)


def weights(rng, rows, cols):
    w = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 0.2, (rows, 1))).astype(np.float32)
    w[0, :32] = 0           # an all-zero block
    w[1, 5] = 40.0          # an outlier
    return w


@pytest.mark.parametrize("name", TYPES)
def test_rtn_file_values_are_the_grid_values(name):
    rng = np.random.default_rng(len(name))
    w = weights(rng, 24, 256)
    t = parse_minifloat(name)
    parts = t.encode(w)
    assert [p.shape for p in parts] == [s[::1] for _, s, _ in t.parts("w", w.shape)]
    want = grid(name).quantize(w, None)     # minifloat.py's fake quantization
    np.testing.assert_array_equal(t.decode(parts), want)
    np.testing.assert_array_equal(decode(t, parts, 24, 256), want)


@pytest.mark.parametrize("name", ["e4m3g32", "e2m3g32", "e2m1g32", "mxfp4", "mxfp6_e3m2", "nvfp4"])
def test_gptq_file_values_are_the_grid_gptq_values(name):
    rng = np.random.default_rng(11)
    w = weights(rng, 16, 128)
    x = rng.standard_normal((512, 128)).astype(np.float32) * rng.uniform(0.1, 3, 128).astype(np.float32)
    h = (x.T.astype(np.float64) @ x) / len(x)
    t = parse_minifloat(name)
    codes, sc, s_t = t.quantize_gptq(w, h, damp=0.01)
    want = grid(name).quantize(w, h)        # minifloat.gptq_values
    np.testing.assert_array_equal(t.decode(t.pack(codes, sc, s_t)), want)
    rtn = t.decode(t.encode(w))
    assert not np.array_equal(want, rtn)    # GPTQ really moved codes
    # ... and lowered the output error on the calibration inputs.
    err = lambda v: float(np.sum(((v - w) @ x.T) ** 2))
    assert err(want) < err(rtn)


def q8_0_oracle(x: np.ndarray) -> np.ndarray:
    """Activations as the int8 path sees them: gguf's Q8_0 quantization, decoded."""
    return quants.dequantize(quants.quantize(x, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0)


# Row lengths of 3, 7 and 17 blocks of 32: the SIMD levels' block sums take four at a time.
@pytest.mark.parametrize("name", [n for n in TYPES if n != "e4m3g128"])
@pytest.mark.parametrize("rows,cols,n_tok", [(37, 96, 1), (9, 544, 3), (20, 224, 5), (33, 544, 70)])
def test_matmul_against_numpy(name, rows, cols, n_tok):
    t = parse_minifloat(name)
    rng = np.random.default_rng(rows + cols + n_tok)
    w = weights(rng, rows, cols)
    parts = t.encode(w)
    values = t.decode(parts).astype(np.float64)
    x = (rng.standard_normal((n_tok, cols)) * rng.uniform(0.1, 5, (n_tok, 1))).astype(np.float32)
    ts = float(parts[2][0]) if t.scaling == NVFP4 else 1.0
    args = (t.descriptor(), parts[0].view(np.uint8), np.ascontiguousarray(parts[1]).view(np.uint8), ts, rows)
    exact = x.astype(np.float64) @ values.T
    tol = 1e-5 * np.abs(x.astype(np.float64)) @ np.abs(values).T + 1e-30
    int8_ref = q8_0_oracle(x).astype(np.float64) @ values.T
    layout = _core.minifloat_runs_as(*args, cols)
    # Integer-valued elements run as an exact Q8_0 matrix, the others decode to f32
    # (as mf8 rows when a block of 32 has two scales: NVFP4, groups of 16).
    assert layout == ("f32" if t.fmt.name not in ("e2m1", "e2m3") else "mf8" if t.block < 32 else "q8_0")
    first = None
    for isa in _core.supported_isas():
        for threads in (1, 2):
            y = _core.minifloat_matmul(*args, x, int8=False, n_threads=threads, isa=isa)
            assert (np.abs(y - exact) <= tol).all(), (isa, threads)
            y = _core.minifloat_matmul(*args, x, int8=True, n_threads=threads, isa=isa)
            # mf8 rows take the int8 dots in decode-sized batches (< 4 tokens), f32 panels otherwise.
            int8_path = layout == "q8_0" or (layout == "mf8" and n_tok < 4)
            ref = int8_ref if int8_path else exact
            assert (np.abs(y - ref) <= tol).all(), (isa, threads, float(np.abs(y - ref).max()))
            if layout == "mf8":   # mf8 dots: every level gives the reference's bits
                first = y if first is None else first
                assert np.array_equal(y, first), (isa, threads)
    assert not np.allclose(int8_ref, exact, rtol=1e-6, atol=0)   # the int8 path is a different oracle


def test_type_names_and_descriptors():
    names = {t.name for t in all_types()}
    assert {"e4m3g32", "e5m2g32", "e3m2g32", "e2m3g32", "e2m1g32", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp6_e3m2",
            "mxfp4", "nvfp4"} <= names
    assert parse_minifloat("mxfp4").descriptor() == [2, 1, 32, E8M0]
    assert parse_minifloat("nvfp4").descriptor() == [2, 1, 16, NVFP4]
    assert parse_minifloat("e4m3g32").descriptor() == [4, 3, 32, F16]
    assert parse_minifloat("e2m1g48") is None and parse_minifloat("w4g32") is None


@pytest.mark.parametrize("fmt,why", [([2, 1, 32, 3], "scaling"), ([3, 3, 32, 0], "element"), ([2, 1, 48, 0], "block"),
                                     ([2, 1, 16, 1], "MX block"), ([4, 3, 16, 2], "NVFP4 element")])
def test_binding_rejects_bad_formats(fmt, why):
    with pytest.raises(ValueError):
        _core.minifloat_decode(fmt, np.zeros(16, np.uint8), np.zeros(4, np.uint8), 1.0, 1, 32)


@pytest.mark.parametrize("name,scale,problem", [
    ("mxfp4", 255, "E8M0 scale of 255"), ("nvfp4", 0x80 | 0x38, "negative E4M3"), ("nvfp4", 0x7F, "not finite"),
    ("e4m3g32", 0x7C00, "not finite")])
def test_hostile_scales_are_refused(name, scale, problem):
    t = parse_minifloat(name)
    codes = np.zeros((1, 64), np.uint8)
    sc = np.zeros((1, 64 // t.block), np.uint16 if t.scaling == F16 else np.uint8)
    sc[0, -1] = scale
    with pytest.raises(ValueError, match=problem):
        decode(t, (pack_codes(codes, t.bits), sc.view(np.uint8), np.array([1.0], np.float32)), 1, 64)


@pytest.mark.parametrize("name,code", [("e4m3g32", 0x7F), ("e4m3g32", 0xFF), ("e5m2g32", 0x7C), ("e5m2g32", 0xFE)])
def test_hostile_element_codes_are_refused(name, code):
    t = parse_minifloat(name)
    codes = np.zeros((1, 32), np.uint8)
    codes[0, 9] = code
    with pytest.raises(ValueError, match="Inf or NaN"):
        decode(t, (codes, np.ones((1, 1), np.float16)), 1, 32)


@pytest.mark.parametrize("name,scale", [("e2m3g32", 0x0401), ("mxfp4", 3), ("e2m1g32", 0x0001)])
def test_scales_q8_0_cannot_hold_run_as_mf8(name, scale):
    """A block scale s with s/m not a binary16 value (m = 2 or 8) is not Q8_0: the matrix
    runs from mf8 rows, with the same values and products."""
    t = parse_minifloat(name)
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 1 << t.bits, (4, 64)).astype(np.uint8)
    sc = np.full((4, 2), 0x3C00 if t.scaling == F16 else 127, np.uint16 if t.scaling == F16 else np.uint8)
    sc[2, 1] = scale
    args = (t.descriptor(), pack_codes(codes, t.bits), sc.view(np.uint8), 1.0, 4)
    assert _core.minifloat_runs_as(*args, 64) == "mf8"
    sc[2, 1] = sc[0, 0]
    assert _core.minifloat_runs_as(*args[:2], sc.view(np.uint8), *args[3:], 64) == "q8_0"
    sc[2, 1] = scale
    values = t.fmt.decode(codes).reshape(4, 2, 32) * t.scale_values(sc, np.float32(1))[..., None]
    values = values.reshape(4, 64).astype(np.float64)
    np.testing.assert_array_equal(decode(t, (args[1], args[2]), 4, 64, pack=True), values)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    y = _core.minifloat_matmul(*args, x, int8=True)
    ref = q8_0_oracle(x).astype(np.float64) @ values.T
    assert (np.abs(y - ref) <= 1e-5 * np.abs(x.astype(np.float64)) @ np.abs(values).T + 1e-35).all()
