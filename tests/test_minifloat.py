"""Minifloat codecs, exhaustively over each format's code space, against ml_dtypes
(the float8/float6/float4 types of JAX) -- and, for the 3-bit E2M0 it lacks, against
a brute-force nearest-value search."""
from __future__ import annotations

import numpy as np
import pytest

import ml_dtypes

from minicpm_edge.convert import minifloat as mf

ORACLE = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn,
          "e2m3": ml_dtypes.float6_e2m3fn, "e2m1": ml_dtypes.float4_e2m1fn}
MAX = {"e4m3": 448.0, "e5m2": 57344.0, "e3m2": 28.0, "e2m3": 7.5, "e2m1": 6.0, "e2m0": 4.0}


def oracle_decode(name, codes):
    return np.asarray(codes, np.uint8).view(ORACLE[name]).astype(np.float64)


def probes(values):
    """Every finite value, every midpoint between neighbours (the ties), and points a
    hair either side of each midpoint, both signs."""
    v = np.unique(np.abs(values[np.isfinite(values)]))
    mids = (v[:-1] + v[1:]) / 2
    eps = np.maximum(mids * 2.0 ** -20, 2.0 ** -40)
    pos = np.concatenate([v, mids, mids - eps, mids + eps])
    return np.concatenate([pos, -pos]).astype(np.float32)


@pytest.mark.parametrize("name", sorted(ORACLE))
def test_decode_table_is_the_standard(name):
    fmt = mf.FORMATS[name]
    codes = np.arange(1 << fmt.bits)
    ref = oracle_decode(name, codes)
    np.testing.assert_array_equal(np.isnan(fmt.table), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_array_equal(fmt.table[ok], ref[ok])
    assert fmt.max_finite == MAX[name]


@pytest.mark.parametrize("name", sorted(ORACLE))
def test_encode_rounds_to_nearest_even(name):
    fmt = mf.FORMATS[name]
    x = probes(fmt.table)
    got = fmt.decode(fmt.encode(x))
    ref = x.astype(ORACLE[name]).astype(np.float32)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))   # -0 stays -0


@pytest.mark.parametrize("name", sorted(MAX))
def test_encode_saturates(name):
    fmt = mf.FORMATS[name]
    big = np.array([MAX[name] * 1.01, MAX[name] * 1e3, 3e38, -MAX[name] * 1.5], np.float32)
    np.testing.assert_array_equal(fmt.cast(big), [MAX[name], MAX[name], MAX[name], -MAX[name]])
    with pytest.raises(ValueError, match="non-finite"):
        fmt.encode(np.array([1.0, np.nan]))


def test_e2m0_by_brute_force():
    fmt = mf.E2M0
    assert sorted(set(np.abs(fmt.table).tolist())) == [0.0, 1.0, 2.0, 4.0]
    x = np.concatenate([probes(fmt.table), np.linspace(-5, 5, 4001, dtype=np.float32)])
    got = fmt.encode(x)
    for xi, c in zip(x.tolist(), got.tolist()):
        dist = [abs(abs(xi) - fmt.table[k]) if abs(xi) <= 4 else abs(4 - fmt.table[k]) for k in range(4)]
        best = min(dist)
        ties = [k for k in range(4) if dist[k] == best]
        want = ties[0] if len(ties) == 1 else next(k for k in ties if k % 2 == 0)
        assert c & 3 == want and (c >> 2) == int(np.signbit(np.float32(xi))), (xi, c)


def test_e8m0():
    codes = np.arange(256)
    ref = codes.astype(np.uint8).view(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    got = mf.e8m0_decode(codes)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(got[:255], ref[:255])
    np.testing.assert_array_equal(mf.e8m0_encode_exponent([-200, -127, 0, 5, 127, 300]), [0, 0, 127, 132, 254, 254])


def _rng_weights(rows=6, cols=96, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32) * rng.uniform(1e-3, 4, size=(rows, 1)).astype(np.float32)
    w[0, :32] = 0.0                 # an all-zero block
    w[1, 5] = 40.0                  # an outlier
    return w


def _saturating_cast(x, name):
    return np.clip(x, -MAX[name], MAX[name]).astype(ORACLE[name]).astype(np.float32)


@pytest.mark.parametrize("name", sorted(ORACLE))
def test_group_scaled_against_oracle(name):
    w = _rng_weights()
    got = mf.group_scaled(w, mf.FORMATS[name], 32)
    ref = np.zeros_like(w)
    for r in range(w.shape[0]):
        for b in range(0, w.shape[1], 32):
            blk = w[r, b:b + 32]
            d = np.float32(np.float16(np.abs(blk).max() / np.float32(MAX[name])))
            if d > 0:
                ref[r, b:b + 32] = _saturating_cast(blk / d, name) * d
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e3m2", "e2m3", "e2m1"])
def test_mx_against_spec(name):
    emax = {"e4m3": 8, "e5m2": 15, "e3m2": 4, "e2m3": 2, "e2m1": 2}[name]
    w = _rng_weights(seed=1)
    got = mf.mx(w, mf.FORMATS[name])
    ref = np.zeros_like(w)
    for r in range(w.shape[0]):
        for b in range(0, w.shape[1], 32):
            blk = w[r, b:b + 32]
            amax = float(np.abs(blk).max())
            if amax == 0:
                continue
            x = 2.0 ** (int(np.floor(np.log2(amax))) - emax)
            ref[r, b:b + 32] = _saturating_cast((blk / np.float32(x)).astype(np.float32), name) * np.float32(x)
    np.testing.assert_array_equal(got, ref)


def test_nvfp4_against_recipe():
    w = _rng_weights(seed=2)
    got = mf.nvfp4(w)
    s_t = np.float32(np.abs(w).max() / (6.0 * 448.0))
    ref = np.zeros_like(w)
    for r in range(w.shape[0]):
        for b in range(0, w.shape[1], 16):
            blk = w[r, b:b + 16]
            s_b = np.float32(np.float32(np.abs(blk).max() / (np.float32(6.0) * s_t)).astype(ml_dtypes.float8_e4m3fn))
            scale = np.float32(s_b * s_t)
            if scale > 0:
                ref[r, b:b + 16] = _saturating_cast((blk / scale).astype(np.float32), "e2m1") * scale
    np.testing.assert_array_equal(got, ref)
    # 4 + 8/16 bits per weight buys a smaller error than MXFP4's power-of-two scales
    assert np.mean((got - w) ** 2) < np.mean((mf.mx(w, mf.E2M1) - w) ** 2)


def obs_reference(w, h, cast, scales, group, damp=0.01):
    """GPTQ as Frantar et al. state it, without its speed-ups (act-order, static group
    scales given, the OBS downdate of the explicit inverse Hessian, float64)."""
    W = w.astype(np.float64).copy()
    H = h.astype(np.float64).copy()
    energy = np.diag(H).copy()
    H += damp * np.mean(energy) * np.eye(len(H))
    Hinv = np.linalg.inv(H)
    out = np.zeros_like(w)
    for j in np.argsort(-energy, kind="stable"):
        s = scales[:, j // group]
        q = np.where(s > 0, cast((W[:, j] / np.where(s > 0, s, 1)).astype(np.float32)) * s, 0.0)
        out[:, j] = q
        e = (W[:, j] - q) / Hinv[j, j]
        W -= np.outer(e, Hinv[j, :])
        Hinv -= np.outer(Hinv[:, j], Hinv[j, :]) / Hinv[j, j]
    return out


@pytest.mark.parametrize("kind", ["e2m1g32", "e4m3g32", "mxfp4", "nvfp4"])
def test_gptq_on_minifloat_grids(kind):
    rng = np.random.default_rng(11)
    k = 128
    w = rng.standard_normal((10, k)).astype(np.float32)
    x = rng.standard_normal((500, k)).astype(np.float32) @ (np.eye(k) + rng.standard_normal((k, k)) / np.sqrt(k))
    x[:, :3] *= 8
    h = x.T @ x
    if kind == "nvfp4":
        fmt, group, s_t = mf.E2M1, 16, mf.nvfp4_tensor_scale(w)
        scale = lambda g: mf.nvfp4_scale(g, s_t)   # noqa: E731
        rtn = mf.nvfp4(w)
    elif kind == "mxfp4":
        fmt, group, scale, rtn = mf.E2M1, 32, (lambda g: mf.mx_scale(g, mf.E2M1)), mf.mx(w, mf.E2M1)
    else:
        fmt, group = mf.FORMATS[kind[:4]], 32
        scale, rtn = (lambda g: mf.group_scale(g, fmt)), mf.group_scaled(w, fmt, 32)
    got = mf.gptq_values(w, h, fmt, group, scale)
    # every value is on the grid: a code of the format times its group's scale
    scales = scale(w.reshape(10, k // group, group))
    np.testing.assert_array_equal(got, mf.scaled_cast(got.reshape(10, k // group, group), scales, fmt).reshape(w.shape))
    ref = obs_reference(w, h, lambda v: _saturating_cast(v, fmt.name), scales, group)
    assert np.mean(np.isclose(got, ref, rtol=1e-5, atol=1e-7)) >= 0.99
    err = lambda v: np.linalg.norm((w - v) @ x.T)   # noqa: E731
    assert err(got) < 0.9 * err(rtn)
