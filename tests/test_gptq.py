"""GPTQ and the group-parameter search of the converter, against direct numpy
implementations written here from the papers (not from the converter's code)."""
from __future__ import annotations

import numpy as np
import pytest

from minicpm_edge.convert import ConvertError, gptq, group_search, lowbit
from minicpm_edge.convert.lowbit import LowBitType


def range_params(w: np.ndarray, bits: int, sym: bool):
    """FORMAT.md's RTN params of one group per row: w [M, G] -> (d, m) as f32 of binary16."""
    top = (1 << bits) - 1
    if sym:
        d = (np.abs(w).max(1) / np.float32(top / 2)).astype(np.float16).astype(np.float32)
        return d, None
    lo = w.min(1)
    d = ((w.max(1) - lo) / np.float32(top)).astype(np.float16).astype(np.float32)
    return d, lo.astype(np.float16).astype(np.float32)


def quantize_column(x, d, m, bits, sym):
    top = (1 << bits) - 1
    safe = np.where(d == 0, 1, d)
    q = np.clip(np.rint(x / safe + top / 2) if sym else np.rint((x - m) / safe), 0, top)
    q[d == 0] = 0
    deq = d * (q - top / 2) if sym else d * q + m
    return q.astype(np.uint8), deq


def gptq_reference(w, h, bits, group, sym, act_order, damp=0.01):
    """The algorithm of Frantar et al. without its speed-ups: columns one at a time, the
    remaining weights corrected by e * Hinv[j, :] / Hinv[j, j], and the inverse Hessian
    of the remaining columns updated by the OBS downdate
    Hinv -= Hinv[:, j] Hinv[j, :] / Hinv[j, j] (no Cholesky, no blocks), in float64."""
    W = w.astype(np.float64).copy()
    H = h.astype(np.float64).copy()
    rows, cols = W.shape
    energy = np.diag(H).copy()
    dead = energy <= 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * np.mean(np.diag(H)) * np.eye(cols)
    Hinv = np.linalg.inv(H)
    order = np.argsort(-energy, kind="stable") if act_order else np.arange(cols)
    n_groups = cols // group
    d = np.zeros((rows, n_groups), np.float32)
    m = None if sym else np.zeros((rows, n_groups), np.float32)
    if act_order:   # static groups: params from the unquantized weights
        for g in range(n_groups):
            dg, mg = range_params(W[:, g * group:(g + 1) * group].astype(np.float32), bits, sym)
            d[:, g] = dg
            if m is not None:
                m[:, g] = mg
    codes = np.zeros((rows, cols), np.uint8)
    for j in order:
        g = j // group
        if not act_order and j % group == 0:
            dg, mg = range_params(W[:, j:j + group].astype(np.float32), bits, sym)
            d[:, g] = dg
            if m is not None:
                m[:, g] = mg
        q, deq = quantize_column(W[:, j].astype(np.float32), d[:, g], None if m is None else m[:, g], bits, sym)
        codes[:, j] = q
        e = (W[:, j] - deq) / Hinv[j, j]
        W -= np.outer(e, Hinv[j, :])
        Hinv -= np.outer(Hinv[:, j], Hinv[j, :]) / Hinv[j, j]
    return codes, d, m


def correlated_inputs(rng, n, k):
    """Activations with a few loud channels and correlated ones, like an LLM's."""
    mix = rng.standard_normal((k, k)).astype(np.float32) / np.sqrt(k)
    x = rng.standard_normal((n, k)).astype(np.float32) @ (np.eye(k, dtype=np.float32) + mix)
    x[:, rng.choice(k, 3, replace=False)] *= 8
    return x


def output_error(w, wq, x):
    return float(np.linalg.norm((w - wq) @ x.T) / np.linalg.norm(w @ x.T))


@pytest.mark.parametrize("bits,group,sym", [(4, 32, False), (2, 64, False), (3, 32, True), (4, 128, True)])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_matches_reference(bits, group, sym, act_order):
    rng = np.random.default_rng(bits * 100 + group + sym)
    k = 256
    w = rng.standard_normal((12, k)).astype(np.float32)
    x = correlated_inputs(rng, 600, k)
    x[:, 5] = 0      # a dead input
    h = (x.T @ x).astype(np.float64)
    t = LowBitType(bits, group, sym)
    codes, d, m = gptq.gptq_quantize(w, h, t, act_order=act_order, search=False)
    ref_codes, ref_d, ref_m = gptq_reference(w, h, bits, group, sym, act_order)
    # float32 blocked arithmetic against float64 downdates: a rounding tie may flip
    # a code, which then steers the columns after it a little.
    assert (codes == ref_codes).mean() >= 0.995
    ours = lowbit.dequantize(codes, d, m, t)
    ref = lowbit.dequantize(ref_codes, ref_d.astype(np.float16), None if ref_m is None else ref_m.astype(np.float16), t)
    assert output_error(w, ours, x) == pytest.approx(output_error(w, ref, x), rel=0.02)
    # the dead input's weights were zeroed before quantizing: each decodes to its
    # group's grid point nearest 0, at most half a step away
    assert np.all(np.abs(ours[:, 5]) <= d[:, 5 // group].astype(np.float32) / 2 * (1 + 1e-3))


@pytest.mark.parametrize("typ", ["w4g64", "w2g64", "w3g128s"])
def test_gptq_lowers_output_error_vs_rtn(typ):
    rng = np.random.default_rng(7)
    k = 512
    w = rng.standard_normal((64, k)).astype(np.float32)
    x = correlated_inputs(rng, 2000, k)
    calib, held_out = x[:1000], x[1000:]
    t = lowbit.parse_lowbit(typ)
    rtn = lowbit.dequantize(*lowbit.quantize_rtn(w, t), t)
    h = calib.T.astype(np.float64) @ calib
    q = lowbit.dequantize(*gptq.gptq_quantize(w, h, t), t)
    # on the calibration inputs and on inputs it never saw
    for x in (calib, held_out):
        assert output_error(w, q, x) < 0.8 * output_error(w, rtn, x)


def test_gptq_rejects_bad_hessian():
    t = lowbit.parse_lowbit("w4g64")
    w = np.ones((4, 128), np.float32)
    with pytest.raises(ConvertError, match="Hessian"):
        gptq.gptq_quantize(w, np.eye(64), t)
    h = np.eye(128)
    h[3, 3] = np.nan
    with pytest.raises(ConvertError, match="Hessian"):
        gptq.gptq_quantize(w, h, t)


def test_inverse_cholesky_upper():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 40))
    h = x.T @ x
    u = gptq.inverse_cholesky_upper(h, damp=0.01)
    damped = h + 0.01 * np.mean(np.diag(h)) * np.eye(40)
    assert np.allclose(np.triu(u), u)
    np.testing.assert_allclose(u.T @ u, np.linalg.inv(damped), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("typ", ["w4g32", "w2g64", "w3g32s", "w1g64"])
def test_group_search_never_worse_than_range(typ):
    rng = np.random.default_rng(3)
    t = lowbit.parse_lowbit(typ)
    g = rng.standard_t(3, size=(500, t.group)).astype(np.float32)   # heavy tails: outliers to clip
    weight = rng.uniform(0.1, 5, size=t.group).astype(np.float32)

    def err(d, m):
        return ((lowbit.group_values(lowbit.group_codes(g, d, m, t), d, m, t) - g) ** 2 * weight).sum(-1)

    d0, m0 = lowbit.rtn_params(g, t)
    d1, m1 = group_search.search_params(g, t, weight)
    e0, e1 = err(d0, m0), err(d1, m1)
    assert np.all(e1 <= e0 * (1 + 1e-6))
    assert e1.sum() < 0.9 * e0.sum()
    assert d1.dtype == np.float16 and (m1 is None) == t.symmetric
