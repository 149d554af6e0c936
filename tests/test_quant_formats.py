"""Block formats: the C++ reference decoders against gguf-py's numpy
implementation (bit for bit), and the activation quantizers of every ISA level
against a numpy transcription of ggml's quantize_row_q8_{0,1,K}_ref."""
import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

from minicpm_edge import _core

DECODED_TYPES = [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q6_K]
QUANTIZABLE = [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1]  # gguf-py can encode these
# Byte offsets of the binary16 scale fields in one block (kept finite in raw-byte tests).
SCALE_OFFSETS = {Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q4_K: [0, 2], Q.Q6_K: [208]}


def varied_values(rng, rows, n):
    """Normal values whose magnitude changes per 32-block, with an all-zero
    block, a constant block and outliers, to reach every branch of the
    quantizers (zero scale, equal min/max, large dynamic range)."""
    x = rng.standard_normal((rows, n)).astype(np.float32)
    scales = 10.0 ** rng.uniform(-4, 3, size=(rows, n // 32 if n >= 32 else 1))
    x *= np.repeat(scales, 32, axis=1)[:, :n].astype(np.float32)
    if n >= 96:
        x[0, 32:64] = 0.0
        x[-1, 64:96] = 1.25
    x[0, 0] = 4000.0
    return x


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def decode(raw, qtype, n):
    return _core.dequantize(raw.tobytes(), int(qtype), n)


@pytest.mark.parametrize("qtype", QUANTIZABLE, ids=lambda t: t.name)
@pytest.mark.parametrize("n", [32, 96, 256 * 3 + 32 * 5])
def test_dequantize_matches_gguf_on_gguf_quantized_rows(qtype, n):
    rng = np.random.default_rng(1000 + int(qtype) * 7 + n)
    data = varied_values(rng, 4, n)
    encoded = np.ascontiguousarray(quantize(data, qtype)).view(np.uint8)
    expected = dequantize(encoded, qtype).reshape(4, n)
    for r in range(4):
        got = decode(encoded[r], qtype, n)
        assert got.dtype == np.float32 and got.shape == (n,)
        np.testing.assert_array_equal(bits(got), bits(expected[r]))


def random_blocks(rng, qtype, n_blocks):
    """Random bytes for n_blocks blocks, with every binary16 scale made finite
    (random mantissa/sign/exponent, subnormals included)."""
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in SCALE_OFFSETS.get(qtype, []):
        h = raw[:, off:off + 2].copy().view(np.uint16)
        inf_or_nan = (h & 0x7C00) == 0x7C00
        h[inf_or_nan] &= np.uint16(0xFBFF)  # clear one exponent bit: largest exponents become finite
        raw[:, off:off + 2] = h.view(np.uint8)
    return raw


@pytest.mark.parametrize("qtype", [Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q6_K], ids=lambda t: t.name)
def test_dequantize_matches_gguf_on_random_bytes(qtype):
    rng = np.random.default_rng(2000 + int(qtype))
    block, size = GGML_QUANT_SIZES[qtype]
    n_blocks = 64 if block == 256 else 512
    if qtype == Q.BF16:
        n_blocks = 4096  # random bit patterns, NaN and inf included
    raw = random_blocks(rng, qtype, n_blocks).reshape(-1)
    n = n_blocks * block
    expected = dequantize(raw, qtype).reshape(-1)
    got = decode(raw, qtype, n)
    np.testing.assert_array_equal(bits(got), bits(expected))


def test_dequantize_f16_and_f32_random_bit_patterns():
    rng = np.random.default_rng(3)
    h = rng.integers(0, 1 << 16, size=1 << 16, dtype=np.uint16)
    h[:1024] = np.arange(1024, dtype=np.uint16)  # every subnormal and zero
    got = decode(h.view(np.uint8), Q.F16, h.size)
    expected = h.view(np.float16).astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(bits(got)[~nan], bits(expected)[~nan])
    f = rng.integers(0, 1 << 32, size=4096, dtype=np.uint32)
    np.testing.assert_array_equal(bits(decode(f.view(np.uint8), Q.F32, f.size)), f)


def test_dequantize_accepts_bytes_and_uint8_arrays_and_empty_rows():
    raw = random_blocks(np.random.default_rng(4), Q.Q4_0, 3).reshape(-1)
    a = _core.dequantize(raw, int(Q.Q4_0), 96)
    b = _core.dequantize(bytes(raw), int(Q.Q4_0), 96)
    np.testing.assert_array_equal(bits(a), bits(b))
    assert _core.dequantize(b"", int(Q.Q6_K), 0).shape == (0,)


def test_dequantize_rejects_bad_input():
    raw = random_blocks(np.random.default_rng(5), Q.Q4_K, 2).reshape(-1)
    with pytest.raises(ValueError, match="288 bytes, got 287"):
        _core.dequantize(raw[:-1].tobytes(), int(Q.Q4_K), 512)
    with pytest.raises(ValueError, match="multiple of the Q4_K block size 256"):
        _core.dequantize(raw.tobytes(), int(Q.Q4_K), 500)
    with pytest.raises(ValueError, match="multiple"):
        _core.dequantize(raw.tobytes(), int(Q.Q4_K), -256)
    with pytest.raises(NotImplementedError, match="Q5_0"):
        _core.dequantize(bytes(22), int(Q.Q5_0), 32)
    with pytest.raises(ValueError, match="unknown ggml type id 4"):
        _core.dequantize(bytes(18), 4, 32)
    with pytest.raises(ValueError, match="uint8"):
        _core.dequantize(np.zeros(8, dtype=np.float32), int(Q.F32), 8)


# ---- activation quantizers: numpy transcription of ggml's reference formulas ----

def roundf(v):
    """C roundf (half away from zero), exact: |v| + 0.5 is exact in float64."""
    a = np.abs(v.astype(np.float64))
    return np.sign(v) * np.floor(a + 0.5)


def block_scale_q8(blocks):
    amax = np.abs(blocks).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.zeros_like(d)
    np.divide(np.float32(1), d, out=inv, where=d != 0)
    q = roundf(blocks * inv[:, None]).astype(np.int8)
    return d, q


def to_f16(v):
    with np.errstate(over="ignore"):  # beyond 65504 -> inf, as in ggml
        return v.astype(np.float16)


def numpy_q8_0(x):
    d, q = block_scale_q8(x.reshape(-1, 32))
    return np.concatenate([to_f16(d).view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1).tobytes()


def numpy_q8_1(x):
    d, q = block_scale_q8(x.reshape(-1, 32))
    s = to_f16(q.astype(np.int32).sum(axis=1).astype(np.float32) * d)
    head = np.stack([to_f16(d), s], axis=1).view(np.uint8).reshape(-1, 4)
    return np.concatenate([head, q.view(np.uint8)], axis=1).tobytes()


def numpy_q8_K(x):
    blocks = x.reshape(-1, 256)
    out = []
    for b in blocks:
        i = int(np.argmax(np.abs(b)))  # first element of largest magnitude
        if np.abs(b[i]) == 0:
            out.append(bytes(292))
            continue
        iscale = np.float32(-127) / b[i]
        q = np.minimum(np.rint(b * iscale), 127).astype(np.int8)  # rint: nearest, ties to even
        bsums = q.astype(np.int32).reshape(16, 16).sum(axis=1).astype("<i2")
        d = np.float32(1) / iscale
        out.append(np.float32(d).astype("<f4").tobytes() + q.tobytes() + bsums.tobytes())
    return b"".join(out)


def rounding_edge_cases(n):
    """Rows where x/d lands exactly on .5 (both rounding rules must be the
    reference's), and equal-magnitude maxima of opposite sign (Q8_K keeps the
    sign of the first)."""
    x = np.zeros(n, dtype=np.float32)
    halves = np.arange(n, dtype=np.float32) % 9 - 4.5  # -4.5 .. 3.5 in steps of 1
    x[:] = halves
    x[::32] = 127.0          # Q8_0/Q8_1: d = 1, x/d = x exactly
    x[0] = -127.0            # Q8_K: first block's max is negative -> iscale = 1
    if n >= 512:
        x[256:512] = np.where(np.arange(256) % 2 == 0, 3.0, -3.0)  # +3 first: iscale < 0
        x[256 + 7] = -6.0
        x[256 + 9] = 6.0
    return x


ACT_FORMATS = [("q8_0", Q.Q8_0, numpy_q8_0, 32), ("q8_1", Q.Q8_1, numpy_q8_1, 32), ("q8_K", Q.Q8_K, numpy_q8_K, 256)]


@pytest.mark.parametrize("isa", _core.supported_isas())
@pytest.mark.parametrize("name,qtype,reference,block", ACT_FORMATS, ids=[a[0] for a in ACT_FORMATS])
def test_activation_quantizer_matches_ggml_reference(isa, name, qtype, reference, block):
    rng = np.random.default_rng(7)
    for k in (1, 2, 3, 7):
        n = block * k
        huge = (rng.standard_normal(n) * 1e7).astype(np.float32)  # d beyond binary16 range -> inf
        for x in (varied_values(rng, 1, n)[0], rng.standard_normal(n).astype(np.float32), rounding_edge_cases(n),
                  np.zeros(n, dtype=np.float32), huge):
            got = _core.quantize_activations(name, x, isa=isa)
            assert got == reference(x), f"{name} differs from the reference for n={n} on {isa}"
            assert _core.quantize_activations(int(qtype), x, isa=isa) == got


def test_activation_quantizer_rejects_bad_input():
    with pytest.raises(ValueError, match="multiple of the block size 256"):
        _core.quantize_activations("q8_K", np.zeros(300, dtype=np.float32))
    with pytest.raises(ValueError, match="not an activation format"):
        _core.quantize_activations(int(Q.Q4_0), np.zeros(32, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown activation format"):
        _core.quantize_activations("q9_0", np.zeros(32, dtype=np.float32))
