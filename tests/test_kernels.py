"""Dot-product kernels of every ISA level this machine runs: against a float64
numpy dot of the dequantized weight row and the dequantized activation row
(the activation as the kernel's quantizer produced it), and against the
scalar level. Float work inside the kernels is f32 in different summation
orders per level, so results are compared with a rounding-error bound:
    |got - exact| <= 2 * eps32 * (L + 8) * M
where L is the longest chain of f32 additions (blocks per row, or n/8 + 8
for float rows) and M = sum_i (|a_i| + |b_i|) * |x_i| for a weight split into
its scaled part a and offset part b (the offset, min or -dmin*m, is summed
separately, so cancellation between the parts must not shrink the bound)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

from minicpm_edge import _core

ISAS = _core.supported_isas()
EPS32 = float(np.finfo(np.float32).eps)
ACT_OF = {Q.F32: "F32", Q.F16: "F32", Q.BF16: "F32", Q.Q8_0: "Q8_0", Q.Q4_0: "Q8_0", Q.Q4_1: "Q8_1",
          Q.Q4_K: "Q8_K", Q.Q6_K: "Q8_K"}
# binary16 fields holding the weight's offset (b) and scale (a) parts.
OFFSET_FIELD = {Q.Q4_1: 2, Q.Q4_K: 2}
SCALE_FIELD = {Q.Q4_1: 0, Q.Q4_K: 0}


def weight_row(rng, qtype, n):
    """Bytes of one weight row: gguf-py's own encoder where it has one, else
    random blocks with finite, moderate scales (K-quants)."""
    if qtype in (Q.Q4_K, Q.Q6_K):
        nb = n // 256
        size = GGML_QUANT_SIZES[qtype][1]
        raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
        for off in ([0, 2] if qtype == Q.Q4_K else [208]):
            d = (rng.standard_normal(nb) * 0.01).astype(np.float16)
            raw[:, off:off + 2] = d.view(np.uint8).reshape(nb, 2)
        return raw.reshape(-1)
    w = rng.standard_normal((1, n)).astype(np.float32)
    return np.ascontiguousarray(quantize(w, qtype)).view(np.uint8).reshape(-1)


def split_weight(raw, qtype):
    """Dequantized weight as (scaled part a, offset part b), each via gguf-py."""
    if qtype not in OFFSET_FIELD:
        return dequantize(raw, qtype).reshape(-1).astype(np.float64), 0.0
    size = GGML_QUANT_SIZES[qtype][1]
    blocks = raw.reshape(-1, size)
    only_scale = blocks.copy()
    only_scale[:, OFFSET_FIELD[qtype]:OFFSET_FIELD[qtype] + 2] = 0
    only_offset = blocks.copy()
    only_offset[:, SCALE_FIELD[qtype]:SCALE_FIELD[qtype] + 2] = 0
    a = dequantize(only_scale.reshape(-1), qtype).reshape(-1).astype(np.float64)
    b = dequantize(only_offset.reshape(-1), qtype).reshape(-1).astype(np.float64)
    return a, b


def dequant_activation(act, fmt, n):
    """The activation row the kernel saw, decoded by numpy (Q8_0 by gguf-py)."""
    if fmt == "F32":
        return np.frombuffer(act, dtype=np.float32).astype(np.float64), None
    if fmt == "Q8_0":
        return dequantize(np.frombuffer(act, dtype=np.uint8), Q.Q8_0).reshape(-1).astype(np.float64), None
    if fmt == "Q8_1":
        b = np.frombuffer(act, dtype=np.uint8).reshape(-1, 36)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float64)
        s = b[:, 2:4].copy().view(np.float16).astype(np.float64)
        q = b[:, 4:].view(np.int8).astype(np.float64)
        return (d * q).reshape(-1), s.reshape(-1)
    b = np.frombuffer(act, dtype=np.uint8).reshape(-1, 292)
    d = b[:, 0:4].copy().view("<f4").astype(np.float64)
    q = b[:, 4:260].view(np.int8).astype(np.float64)
    return (d * q).reshape(-1), None


def chain_length(qtype, n):
    block = GGML_QUANT_SIZES[qtype][0]
    return n // 8 + 8 if block == 1 else n // block


def check_dot(qtype, n, seed):
    rng = np.random.default_rng(seed)
    raw = weight_row(rng, qtype, n)
    x = (rng.standard_normal(n) * rng.uniform(0.1, 10)).astype(np.float32)
    fmt = ACT_OF[qtype]
    a, b = split_weight(raw, qtype)
    results = {}
    for isa in ISAS:
        got = _core.vec_dot(int(qtype), raw.tobytes(), x, isa=isa)
        act = _core.quantize_activations(fmt, x, isa=isa)
        xa, s = dequant_activation(act, fmt, n)
        exact = float(np.dot(a + b, xa))
        bound = float(np.dot(np.abs(a) + np.abs(b), np.abs(xa)))
        tol = 2 * EPS32 * (chain_length(qtype, n) + 8) * bound + 1e-30
        if s is not None:
            # Q8_1 carries the block sum as binary16 s = fp16(d * sum q), while
            # the decoded activation uses fp16(d) * q: allow both roundings.
            m = b.reshape(-1, 32)[:, 0]
            tol += float(np.sum(np.abs(m) * (np.abs(s) * 2.0 ** -10 + 2.0 ** -24)))
        assert abs(got - exact) <= tol, f"{qtype.name} n={n} {isa}: {got} vs {exact} (tol {tol})"
        results[isa] = (got, tol)
    ref, ref_tol = results["scalar"]
    for isa, (got, tol) in results.items():
        assert abs(got - ref) <= tol + ref_tol, f"{qtype.name} n={n}: {isa} {got} vs scalar {ref}"


FLOAT_NS = [1, 7, 8, 31, 33, 64, 100, 1000, 2053]


@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.BF16], ids=lambda t: t.name)
def test_float_weight_dots(qtype):
    for i, n in enumerate(FLOAT_NS):
        check_dot(qtype, n, seed=100 * int(qtype) + i)


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q4_1], ids=lambda t: t.name)
def test_block32_weight_dots(qtype):
    rng = np.random.default_rng(int(qtype))
    for i, k in enumerate([1, 2, 3, 7, 18, 64] + list(rng.integers(1, 100, size=4))):
        check_dot(qtype, 32 * int(k), seed=1000 * int(qtype) + i)


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q6_K], ids=lambda t: t.name)
def test_kquant_weight_dots(qtype):
    rng = np.random.default_rng(int(qtype))
    for i, k in enumerate([1, 2, 3, 9] + list(rng.integers(1, 12, size=3))):
        check_dot(qtype, 256 * int(k), seed=1000 * int(qtype) + i)


def test_kquant_dots_with_extreme_activations():
    # Large dynamic range inside one 256-block stresses the integer paths
    # (quants near +-127 in every lane).
    rng = np.random.default_rng(11)
    for qtype in (Q.Q4_K, Q.Q6_K):
        raw = weight_row(rng, qtype, 512)
        x = np.where(rng.random(512) < 0.5, 100.0, -100.0).astype(np.float32)
        results = [_core.vec_dot(int(qtype), raw.tobytes(), x, isa=isa) for isa in ISAS]
        a, b = split_weight(raw, qtype)
        xa, _ = dequant_activation(_core.quantize_activations("q8_K", x), "Q8_K", 512)
        exact = float(np.dot(a + b, xa))
        tol = 2 * EPS32 * 16 * float(np.dot(np.abs(a) + np.abs(b), np.abs(xa)))
        for got in results:
            assert abs(got - exact) <= tol


@pytest.mark.parametrize("isa", ISAS)
def test_dot_and_axpy_f32(isa):
    rng = np.random.default_rng(5)
    for n in FLOAT_NS + [0]:
        a = rng.standard_normal(n).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        got = _core.dot_f32(a, b, isa=isa)
        bound = float(np.dot(np.abs(a.astype(np.float64)), np.abs(b)))
        assert abs(got - float(np.dot(a.astype(np.float64), b))) <= 2 * EPS32 * (n // 8 + 16) * bound + 1e-30
        alpha = np.float32(rng.standard_normal())
        y = _core.axpy_f32(alpha, a, b, isa=isa)
        exact = b.astype(np.float64) + np.float64(alpha) * a
        assert np.all(np.abs(y - exact) <= 2 * EPS32 * (np.abs(b) + np.abs(alpha * a)) + 1e-38)


def test_kernel_argument_errors():
    with pytest.raises(ValueError, match="take 18 bytes, got 17"):
        _core.vec_dot(int(Q.Q4_0), bytes(17), np.zeros(32, dtype=np.float32))
    with pytest.raises(ValueError, match="multiple of the Q4_0 block size"):
        _core.vec_dot(int(Q.Q4_0), bytes(18), np.zeros(33, dtype=np.float32))
    with pytest.raises(NotImplementedError, match="Q5_K"):
        _core.vec_dot(int(Q.Q5_K), bytes(176), np.zeros(256, dtype=np.float32))
    with pytest.raises(ValueError, match="equal length"):
        _core.dot_f32(np.zeros(3, dtype=np.float32), np.zeros(4, dtype=np.float32))


# ---- ISA selection ----

def test_isa_selection_round_trip():
    original = _core.isa()
    assert original in ISAS and ISAS[0] == "scalar"
    try:
        for isa in ISAS:
            _core.set_isa(isa)
            assert _core.isa() == isa
    finally:
        _core.set_isa(original)
    with pytest.raises(ValueError, match="unknown ISA level 'avx3'"):
        _core.set_isa("avx3")
    for missing in {"avx2", "avx512", "neon", "neon_dotprod"} - set(ISAS):
        with pytest.raises(ValueError, match=f"{missing} is not available on this CPU \\(supported: scalar"):
            _core.set_isa(missing)
        with pytest.raises(ValueError, match="not available"):
            _core.vec_dot(int(Q.F32), bytes(4), np.ones(1, dtype=np.float32), isa=missing)


def run_with_env(value):
    env = dict(os.environ, MINICPM_EDGE_ISA=value, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = "from minicpm_edge import _core\ntry:\n    print(_core.isa())\nexcept ValueError as e:\n    print('ERR', e)\n"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_env_forces_isa_level():
    assert run_with_env("scalar") == "scalar"
    assert run_with_env(ISAS[-1]) == ISAS[-1]
    msg = run_with_env("sse9")
    assert msg.startswith("ERR MINICPM_EDGE_ISA=sse9 is not a known ISA level") and "scalar" in msg
    missing = sorted({"avx2", "avx512", "neon", "neon_dotprod"} - set(ISAS))  # never empty: x86 lacks neon
    msg = run_with_env(missing[0])
    assert msg == f"ERR MINICPM_EDGE_ISA={missing[0]} is not available on this CPU (supported: {', '.join(ISAS)})"
