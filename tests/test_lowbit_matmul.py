"""Low-bit (w{b}g{G}) matmul through the table-lookup kernels, on every ISA
level this machine runs, against numpy:

* the file layout is produced here from docs/FORMAT.md (RTN, little-endian
  bit strings, binary16 scales), not by the converter;
* int8=False (weights decoded to f32) must match x @ W^T of the dequantized
  weights to f32 rounding;
* the per-token int8 tables must equal a numpy emulation of the LutBuildFn
  contract (kernels/dispatch.h) byte for byte, and the int8 result must
  match the contract's arithmetic emulated in float64 closely and stay
  within the analytic bound of table rounding from the exact product;
* every level gives the same bits."""
import numpy as np
import pytest

from minicpm_edge import _core

ISAS = _core.supported_isas()
FORMATS = [(b, g, asym) for b in (1, 2, 3, 4) for g in (32, 64, 128) for asym in (True, False)]


def quantize_rtn(w, bits, group, asym):
    """docs/FORMAT.md RTN: returns codes [rows, K] and binary16 d, m [rows, K/G]."""
    rows, k = w.shape
    wg = w.reshape(rows, k // group, group).astype(np.float32)
    top = (1 << bits) - 1
    if asym:
        lo, hi = wg.min(-1), wg.max(-1)
        d = ((hi - lo) / top).astype(np.float16)
        m = lo.astype(np.float16)
        df = d.astype(np.float32)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(df > 0, np.rint((wg - m.astype(np.float32)[..., None]) / df), 0)
    else:
        d = (np.abs(wg).max(-1) / (top / 2)).astype(np.float16)
        m = None
        df = d.astype(np.float32)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(df > 0, np.rint(wg / df + top / 2), 0)
    return np.clip(q, 0, top).astype(np.uint8).reshape(rows, k), d, m


def pack_bits(q, bits):
    """Each row as a little-endian bit string of `bits`-bit codes."""
    rows, k = q.shape
    bitarr = ((q[..., None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(rows, k * bits)
    return np.packbits(bitarr, axis=-1, bitorder="little")


def dequantize(q, d, m, bits, group):
    rows, k = q.shape
    df = np.repeat(d.astype(np.float32), group, axis=1)
    if m is None:
        return (df * (q.astype(np.float32) - np.float32(((1 << bits) - 1) / 2))).astype(np.float64)
    return (q.astype(np.float32) * df + np.repeat(m.astype(np.float32), group, axis=1)).astype(np.float64)


def tables_numpy(x, group):
    """The LutBuildFn contract in float32 numpy: tables, half sigma, group sums."""
    c = x.astype(np.float32).reshape(-1, 4)
    t = np.arange(16)
    signs = np.where((t[:, None] >> np.arange(4)) & 1, 1, -1).astype(np.float32)  # [16, 4]
    v = c[:, None, :] * signs[None]                                                # exact sign flips
    T = (v[..., 0] + v[..., 1]) + (v[..., 2] + v[..., 3])                          # [chunks, 16] f32
    a_chunk = (np.abs(c[:, 0]) + np.abs(c[:, 1])) + (np.abs(c[:, 2]) + np.abs(c[:, 3]))
    a = a_chunk.reshape(-1, group // 4).max(-1)
    with np.errstate(divide="ignore"):
        inv = np.where(a > 0, np.float32(127) / a, np.float32(0)).astype(np.float32)
    prod = T * np.repeat(inv, group // 4)[:, None]
    tables = np.rint(np.clip(prod, -127, 127)).astype(np.int8)
    half_sigma = (a / np.float32(127)) * np.float32(0.5)
    xsum = np.array([np.float32(sum(np.float32(s) for s in T[j * (group // 4):(j + 1) * (group // 4), 15]))
                     for j in range(len(a))], np.float32)
    return tables, half_sigma.astype(np.float32), xsum


def lut_product_numpy(q, d, m, bits, group, x):
    """The LutGemvFn arithmetic in float64 from the numpy tables."""
    tables, hs, xs = tables_numpy(x, group)
    rows, k = q.shape
    ng = k // group
    planes = (q[..., None] >> np.arange(bits)) & 1                       # [rows, K, b]
    pat = (planes.reshape(rows, k // 4, 4, bits) << np.arange(4)[None, None, :, None]).sum(2)  # [rows, K/4, b]
    looked = tables[np.arange(k // 4)[None, :, None], pat].astype(np.int64)  # [rows, K/4, b]
    S = (looked * (1 << np.arange(bits))).sum(-1).reshape(rows, ng, group // 4).sum(-1)  # exact ints
    df = d.astype(np.float64)
    y = (S * df * hs.astype(np.float64)).sum(-1)
    if m is not None:
        y += ((df * ((1 << bits) - 1) / 2 + m.astype(np.float64)) * xs.astype(np.float64)).sum(-1)
    bound = (np.abs(df) * hs.astype(np.float64) * 0.5 * ((1 << bits) - 1) * (group // 4)).sum(-1)
    return y, bound


def _case(bits, group, asym, rows, k, n_tok, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, k)).astype(np.float32)
    x = rng.standard_normal((n_tok, k)).astype(np.float32)
    x[:, rng.integers(0, k, 2)] *= 20.0
    q, d, m = quantize_rtn(w, bits, group, asym)
    return q, d, m, x


def _run(q, d, m, bits, group, x, **kw):
    return _core.lowbit_matmul(bits, group, pack_bits(q, bits).tobytes(), d.tobytes(),
                               None if m is None else m.tobytes(), q.shape[0], x, **kw)


@pytest.mark.parametrize("bits,group,asym", FORMATS)
def test_tables_match_numpy_contract(bits, group, asym):
    rng = np.random.default_rng(bits * 1000 + group)
    x = rng.standard_normal(4 * group).astype(np.float32)
    x[3] = 0.0
    x[group:2 * group] = 0.0            # a group of zeros: a = 0, all entries 0
    want = tables_numpy(x, group)
    for isa in ISAS:
        got = _core.lut_tables(x, group, isa=isa)
        np.testing.assert_array_equal(got[0], want[0], err_msg=isa)
        np.testing.assert_array_equal(got[1], want[1], err_msg=isa)
        np.testing.assert_array_equal(got[2], want[2], err_msg=isa)


@pytest.mark.parametrize("bits,group,asym", FORMATS)
def test_lowbit_matmul_matches_numpy(bits, group, asym):
    # 37 rows: two whole tiles of 16 and a padded one; K = 2 or 3 groups.
    rows, k = 37, 2 * 128 if group < 128 else 3 * 128
    for n_tok in (1, 3, 5):
        q, d, m, x = _case(bits, group, asym, rows, k, n_tok, bits * 97 + group + n_tok)
        wd = dequantize(q, d, m, bits, group)
        exact = x.astype(np.float64) @ wd.T
        scale = np.abs(x).astype(np.float64) @ np.abs(wd).T
        for isa in ISAS:
            got = _run(q, d, m, bits, group, x, int8=False, n_threads=2, isa=isa)
            assert np.all(np.abs(got - exact) <= 4e-6 * scale + 1e-30), isa
        outs = {}
        for isa in ISAS:
            for threads in (1, 2, 3):
                y = _run(q, d, m, bits, group, x, n_threads=threads, isa=isa)
                if isa in outs:
                    np.testing.assert_array_equal(y, outs[isa], err_msg=f"{isa} threads={threads}")
                outs[isa] = y
        for isa, y in outs.items():
            np.testing.assert_array_equal(y, outs["scalar"], err_msg=isa)
        for t in range(n_tok):
            want, bound = lut_product_numpy(q, d, m, bits, group, x[t])
            y = outs["scalar"][t].astype(np.float64)
            assert np.all(np.abs(y - want) <= 2e-6 * scale[t] + 1e-30), t
            assert np.all(np.abs(y - exact[t]) <= bound * 1.001 + 4e-6 * scale[t]), t


def test_lowbit_matmul_bad_arguments():
    q, d, m, x = _case(2, 64, True, 16, 128, 1, 0)
    with pytest.raises(ValueError):
        _core.lowbit_matmul(5, 64, pack_bits(q, 2).tobytes(), d.tobytes(), m.tobytes(), 16, x)
    with pytest.raises(ValueError):
        _core.lowbit_matmul(2, 48, pack_bits(q, 2).tobytes(), d.tobytes(), m.tobytes(), 16, x)
    with pytest.raises(ValueError):
        _core.lowbit_matmul(2, 64, pack_bits(q, 2).tobytes()[:-1], d.tobytes(), m.tobytes(), 16, x)
    with pytest.raises(ValueError):
        _core.lowbit_matmul(2, 64, pack_bits(q, 2).tobytes(), d.tobytes(), m.tobytes(), 16, x[:, :96])


def test_lowbit_prefill_token_blocks():
    """Many tokens (the driver splits them into blocks whose tables fit in L2):
    every token's row must equal that token alone, and the contract's value."""
    q, d, m, x = _case(2, 64, True, 40, 2048, 100, 11)
    y = _run(q, d, m, 2, 64, x, n_threads=3)
    for t in (0, 37, 99):
        np.testing.assert_array_equal(y[t], _run(q, d, m, 2, 64, x[t:t + 1], n_threads=1)[0])
        want, _ = lut_product_numpy(q, d, m, 2, 64, x[t])
        scale = np.abs(x[t]).astype(np.float64) @ np.abs(dequantize(q, d, m, 2, 64)).T
        assert np.all(np.abs(y[t] - want) <= 2e-6 * scale)


# ---- prefill through the int8 GEMM (tiles converted to Q4_1x8 groups) -------------------------
def int8_gemm_numpy(q, d, m, bits, group, x):
    """The int8 path's value, emulated: activations quantized to Q8_0 by the gguf
    package (bit-exact with ggml), each 32-block's exact integer dot with the codes,
    scaled by d_w * d_x, plus m_w * d_x * (sum of the block's int8 quants); symmetric
    formats use m = binary16(-d (2^b - 1) / 2), as lut_tile_to_q4_1x8 documents."""
    from gguf import GGMLQuantizationType, quants
    n_tok, k = x.shape
    blocks = quants.quantize(x.astype(np.float32), GGMLQuantizationType.Q8_0).reshape(n_tok, k // 32, 34)
    dx = blocks[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float64)
    xq = blocks[:, :, 2:].view(np.int8).astype(np.int64)
    center = ((1 << bits) - 1) / 2
    dw = np.repeat(d.astype(np.float64), group // 32, axis=1)
    if m is None:
        mw = (-(d.astype(np.float32) * np.float32(center))).astype(np.float16).astype(np.float64)
    else:
        mw = m.astype(np.float64)
    mw = np.repeat(mw, group // 32, axis=1)
    qb = q.astype(np.int64).reshape(q.shape[0], k // 32, 32)
    s = np.einsum("rbi,tbi->trb", qb, xq.reshape(n_tok, k // 32, 32))
    return np.einsum("trb,rb,tb->tr", s, dw, dx) + np.einsum("rb,tb,tb->tr", mw, dx, xq.sum(axis=2))


@pytest.fixture
def gemm_path():
    yield _core.set_lowbit_gemm
    _core.set_lowbit_gemm("auto")


@pytest.mark.parametrize("bits,group,asym", FORMATS)
def test_int8_gemm_path_matches_numpy(gemm_path, bits, group, asym):
    rows, k, n_tok = 37, 2 * 128 if group < 128 else 3 * 128, 9
    q, d, m, x = _case(bits, group, asym, rows, k, n_tok, bits * 31 + group)
    gemm_path("int8")
    outs = {isa: _run(q, d, m, bits, group, x, n_threads=2, isa=isa) for isa in ISAS}
    for isa, y in outs.items():
        np.testing.assert_array_equal(y, outs["scalar"], err_msg=isa)
    want = int8_gemm_numpy(q, d, m, bits, group, x)
    scale = np.abs(x).astype(np.float64) @ np.abs(dequantize(q, d, m, bits, group)).T
    assert np.all(np.abs(outs["scalar"] - want) <= 2e-6 * scale + 1e-30)
    exact = x.astype(np.float64) @ dequantize(q, d, m, bits, group).T
    assert np.all(np.abs(outs["scalar"] - exact) <= 1e-2 * scale)


def test_gemm_path_choice(gemm_path):
    """Auto takes the int8 GEMM for w4 from 192 tokens and w3 from 320, never for w1/w2
    or one token (the measured crossovers in kernels/matmul.cpp)."""
    def outputs(bits, n_tok):
        q, d, m, x = _case(bits, 64, True, 16, 128, n_tok, bits)
        got = {}
        for path in ("auto", "lut", "int8"):
            gemm_path(path)
            got[path] = _run(q, d, m, bits, 64, x, n_threads=2)
        assert not np.array_equal(got["lut"], got["int8"])
        return got
    for bits, n_tok, path in ((4, 200, "int8"), (4, 150, "lut"), (3, 330, "int8"), (3, 200, "lut"),
                              (2, 600, "lut"), (1, 600, "lut")):
        got = outputs(bits, n_tok)
        np.testing.assert_array_equal(got["auto"], got[path], err_msg=f"w{bits} n_tok={n_tok}")
    with pytest.raises(ValueError):
        _core.set_lowbit_gemm("fast")
