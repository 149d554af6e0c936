"""The C++ sampler against a numpy statement of llama.cpp's default chain
(penalty -> top-k -> top-p -> min-p -> temperature -> draw)."""
from __future__ import annotations

import numpy as np
import pytest

from minicpm_edge import _core


def reference_distribution(logits, temperature, top_k, top_p, min_p, repeat_penalty=1.0, history=()):
    l = np.asarray(logits, dtype=np.float64).copy()
    for t in set(history):
        l[t] = l[t] / repeat_penalty if l[t] > 0 else l[t] * repeat_penalty
    order = np.argsort(-l, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    p = np.exp(l[order] - l[order[0]])
    p /= p.sum()
    keep = len(order)
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
    if min_p > 0:
        keep = min(keep, int(np.sum(p >= min_p * p[0])))
    order = order[:keep]
    w = np.exp((l[order] - l[order[0]]) / temperature)
    out = np.zeros(len(l))
    out[order] = w / w.sum()
    return out


CASES = [
    dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0),
    dict(temperature=0.7, top_k=5, top_p=1.0, min_p=0.0),
    dict(temperature=1.3, top_k=0, top_p=0.8, min_p=0.0),
    dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.2),
    dict(temperature=0.9, top_k=8, top_p=0.9, min_p=0.05),
]


@pytest.mark.parametrize("case", CASES)
def test_distribution_matches_reference(case):
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 2, 12).astype(np.float32)
    expected = reference_distribution(logits, **case)
    n = 40000
    draws = _core.sample_token(logits, seed=123, n_draws=n, **case)
    freq = np.bincount(draws, minlength=len(logits)) / n
    # Never a token the reference excludes; frequencies within 5 sigma.
    assert np.all(freq[expected == 0] == 0)
    sigma = np.sqrt(expected * (1 - expected) / n) + 1e-9
    assert np.all(np.abs(freq - expected) <= 5 * sigma + 1e-4), (freq, expected)


def test_repetition_penalty_and_greedy():
    logits = np.array([3.0, 2.9, -1.0, -1.1], dtype=np.float32)
    assert _core.sample_token(logits, temperature=0.0)[0] == 0
    # Penalised token 0 (3.0 / 1.5 = 2.0) loses to token 1.
    assert _core.sample_token(logits, history=[0], temperature=0.0, repeat_penalty=1.5)[0] == 1
    # Negative logits are multiplied: token 2 becomes -1.5, below token 3.
    expected = reference_distribution(logits, 1.0, 0, 1.0, 0.0, repeat_penalty=1.5, history=[2])
    draws = _core.sample_token(logits, history=[2], temperature=1.0, top_k=0, top_p=1.0, min_p=0.0,
                               repeat_penalty=1.5, seed=5, n_draws=20000)
    freq = np.bincount(draws, minlength=4) / 20000
    assert np.allclose(freq, expected, atol=0.015)


def test_seed_reproducible():
    logits = np.random.default_rng(0).normal(size=100).astype(np.float32)
    a = _core.sample_token(logits, seed=42, n_draws=50, temperature=1.0)
    b = _core.sample_token(logits, seed=42, n_draws=50, temperature=1.0)
    c = _core.sample_token(logits, seed=43, n_draws=50, temperature=1.0)
    assert a == b and a != c


@pytest.mark.parametrize("bad", [dict(temperature=-1.0), dict(temperature=float("nan")), dict(top_p=0.0),
                                 dict(top_p=1.5), dict(min_p=-0.1), dict(repeat_penalty=0.0),
                                 dict(repeat_last_n=-2)])
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError):
        _core.sample_token(np.zeros(4, dtype=np.float32), **bad)
