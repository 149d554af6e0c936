"""The matmul driver end to end (interleaved weight packing, activation
conversion, the threaded split, rows past the last group of 8) on every ISA
level this machine runs, against numpy in float64 on the gguf package's
dequantization of the same bytes:
  int8 activations: x is quantized to Q8_0 by gguf-py and dequantized, as the
    kernels see it; the result must agree to f32 rounding;
  exact activations: f32 x against the dequantized weights.
Packed groups also have to agree bit for bit across ISA levels (the contracts
of GemmX8Fn, GemmPanelFn and GemvPanel16Fn in kernels/dispatch.h)."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

from minicpm_edge import _core

ISAS = _core.supported_isas()
# (rows, cols, tokens): whole groups, a ragged row tail, one to many tokens
# (token tiles of 4 with remainders 1..3), and SmolLM2's 576 columns.
SHAPES = [(8, 32, 1), (24, 96, 5), (19, 64, 3), (64, 576, 9), (40, 160, 18), (7, 64, 2)]


def _case(qtype, rows, cols, n_tok, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    # A few large columns, as activations of real models have.
    x = rng.standard_normal((n_tok, cols)).astype(np.float32)
    x[:, rng.integers(0, cols, 2)] *= 20.0
    wq = quantize(w, qtype)
    return wq, dequantize(wq, qtype).astype(np.float64), x


def _rel_err(got, ref):
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", [Q.Q4_0, Q.Q4_1, Q.Q8_0])
@pytest.mark.parametrize("rows,cols,n_tok", SHAPES)
def test_int8_matmul_matches_numpy(isa, qtype, rows, cols, n_tok):
    wq, wd, x = _case(qtype, rows, cols, n_tok, rows * 1000 + cols + n_tok)
    xd = dequantize(quantize(x, Q.Q8_0), Q.Q8_0).astype(np.float64)
    ref = xd @ wd.T
    for threads in (1, 2, 3):
        for pack in (True, False):
            got = _core.matmul(int(qtype), wq.tobytes(), rows, x, int8=True, pack=pack, n_threads=threads, isa=isa)
            # Q4_1's unpacked dot takes Q8_1 activations, whose stored sum
            # d*sum(q) is rounded to binary16 (ggml's format).
            tol = 2e-3 if (qtype == Q.Q4_1 and (not pack or rows % 8)) else 2e-6
            assert _rel_err(got, ref) < tol, (threads, pack)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", [Q.Q4_0, Q.Q4_1, Q.Q8_0, Q.F16, Q.F32])
@pytest.mark.parametrize("rows,cols,n_tok", SHAPES)
def test_exact_matmul_matches_numpy(isa, qtype, rows, cols, n_tok):
    wq, wd, x = _case(qtype, rows, cols, n_tok, rows + cols * 7 + n_tok)
    ref = x.astype(np.float64) @ wd.T
    got = _core.matmul(int(qtype), wq.tobytes(), rows, x, int8=False, n_threads=2, isa=isa)
    assert _rel_err(got, ref) < 2e-6


@pytest.mark.parametrize("qtype", [Q.Q4_0, Q.Q4_1, Q.Q8_0])
def test_packed_groups_identical_across_isas(qtype):
    wq, _, x = _case(qtype, 48, 320, 7, 5)
    outs = {isa: _core.matmul(int(qtype), wq.tobytes(), 48, x, n_threads=2, isa=isa) for isa in ISAS}
    for isa, y in outs.items():
        np.testing.assert_array_equal(y, outs["scalar"], err_msg=isa)


def test_bad_arguments_raise():
    wq = quantize(np.ones((8, 32), np.float32), Q.Q4_0).tobytes()
    with pytest.raises(ValueError):
        _core.matmul(int(Q.Q4_0), wq, 9, np.ones((1, 32), np.float32))
    with pytest.raises(ValueError):
        _core.matmul(int(Q.Q4_0), wq, 8, np.ones((1, 33), np.float32))
    with pytest.raises(ValueError):
        _core.matmul(int(Q.Q4_0), wq, 8, np.ones(32, np.float32))
    with pytest.raises(ValueError):
        _core.matmul(int(Q.Q4_0), wq, 8, np.ones((1, 32), np.float32), n_threads=0)


@pytest.mark.parametrize("qtype", [Q.F16, Q.Q4_0])
def test_f32_panel_identical_across_isas(qtype):
    """The f32 panel GEMM (F16 weights; any type in exact mode) is one fma per
    column in order on every level, so the bits agree too."""
    wq, _, x = _case(qtype, 40, 1088, 13, 11)
    outs = {isa: _core.matmul(int(qtype), wq.tobytes(), 40, x, int8=False, n_threads=3, isa=isa) for isa in ISAS}
    for isa, y in outs.items():
        np.testing.assert_array_equal(y, outs["scalar"], err_msg=isa)


# F16/BF16 weights are packed into k-major panels of 16 rows: shapes with
# whole panels, a ragged row tail, no whole panel at all, and column counts
# that leave 1-3 columns past the last step of 4; 1-3 tokens take the decode
# GEMV, 4 and more the panel GEMM.
SHAPES16 = [(16, 32, 1), (37, 70, 2), (48, 131, 3), (40, 576, 5), (16, 7, 1), (5, 64, 1), (33, 2049, 2)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("qtype", [Q.F16, Q.BF16])
@pytest.mark.parametrize("rows,cols,n_tok", SHAPES16)
def test_16bit_panels_match_numpy(isa, qtype, rows, cols, n_tok):
    wq, wd, x = _case(qtype, rows, cols, n_tok, rows * 31 + cols + n_tok)
    ref = x.astype(np.float64) @ wd.T
    for threads in (1, 2, 3):
        for pack in (True, False):
            got = _core.matmul(int(qtype), wq.tobytes(), rows, x, pack=pack, n_threads=threads, isa=isa)
            assert _rel_err(got, ref) < 4e-6, (threads, pack)


@pytest.mark.parametrize("qtype", [Q.F16, Q.BF16])
@pytest.mark.parametrize("n_tok", [1, 2, 3])
def test_16bit_panel_gemv_identical_across_isas(qtype, n_tok):
    wq, _, x = _case(qtype, 48, 1027, n_tok, 17 + n_tok)
    outs = {isa: _core.matmul(int(qtype), wq.tobytes(), 48, x, n_threads=2, isa=isa) for isa in ISAS}
    for isa, y in outs.items():
        np.testing.assert_array_equal(y, outs["scalar"], err_msg=isa)
