"""Row decoders of every kernel level (the table's dequantize_row, used by the
exact-activation matmul) against gguf-py's numpy decoder, bit for bit, on
random blocks and on ragged numbers of blocks (SIMD bodies and their edges)."""
import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize

from minicpm_edge import _core

ISAS = _core.supported_isas()
BLOCK_TYPES = [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q6_K]
# Byte offsets of the binary16 scale fields in one block; kept finite so the
# comparison is of numbers (NaN payloads are checked for F16/BF16 below).
SCALE_OFFSETS = {Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q4_K: [0, 2], Q.Q6_K: [208]}
N_BLOCKS = [1, 3, 18, 48]


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def random_blocks(rng, qtype, n_blocks):
    """Random block bytes with every binary16 scale finite (subnormals included)."""
    _, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        h = raw[:, off:off + 2].copy().view(np.uint16)
        h[(h & 0x7C00) == 0x7C00] &= np.uint16(0xFBFF)
        raw[:, off:off + 2] = h.view(np.uint8)
    return raw.reshape(-1)


def test_every_level_has_a_decoder_for_every_type():
    assert "scalar" in ISAS
    for isa in ISAS:
        for qtype in [Q.F32, Q.F16, Q.BF16] + BLOCK_TYPES:
            block, size = GGML_QUANT_SIZES[qtype]
            out = _core.dequantize(bytes(size), int(qtype), block, isa=isa)
            np.testing.assert_array_equal(out, np.zeros(block, np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", BLOCK_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n_blocks", N_BLOCKS)
def test_block_decoders_match_gguf_bit_for_bit(isa, qtype, n_blocks):
    rng = np.random.default_rng(int(qtype) * 1000 + n_blocks)
    block, _ = GGML_QUANT_SIZES[qtype]
    raw = random_blocks(rng, qtype, n_blocks)
    n = n_blocks * block
    expected = dequantize(raw, qtype).reshape(-1)
    got = _core.dequantize(raw.tobytes(), int(qtype), n, isa=isa)
    assert got.dtype == np.float32 and got.shape == (n,)
    np.testing.assert_array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.BF16], ids=lambda t: t.name)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 576, 2048 + 5])
def test_float_decoders_match_numpy_on_all_bit_patterns(isa, qtype, n):
    """Random bit patterns, inf and NaN included; n not a multiple of the vector
    width exercises the scalar tails."""
    rng = np.random.default_rng(n * 10 + int(qtype))
    if qtype == Q.F32:
        raw = rng.integers(0, 1 << 32, size=n, dtype=np.uint32)
        expected = raw.view(np.float32)
    else:
        raw = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
        raw[: min(n, 4)] = [0x0001, 0x7C00, 0xFC01, 0x7E00][: min(n, 4)]  # subnormal, inf, NaNs
        expected = dequantize(raw.view(np.uint8), qtype).reshape(-1)
    got = _core.dequantize(raw.view(np.uint8).tobytes(), int(qtype), n, isa=isa)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(bits(got)[~nan], bits(expected)[~nan])
    # Against the scalar level NaNs must agree too (same bits on every level).
    ref = _core.dequantize(raw.view(np.uint8).tobytes(), int(qtype), n, isa="scalar")
    np.testing.assert_array_equal(bits(got)[~nan], bits(ref)[~nan])


def test_isa_argument_is_checked():
    with pytest.raises(ValueError, match="sse9"):
        _core.dequantize(bytes(34), int(Q.Q8_0), 32, isa="sse9")
    with pytest.raises(NotImplementedError, match="Q5_0"):
        _core.dequantize(bytes(22), int(Q.Q5_0), 32, isa="scalar")
