"""The whole model gives the same answers on every ISA level this machine
runs: the default model (SmolLM2-135M-Instruct Q4_1), 512 teacher-forced
tokens of WikiText-2, each SIMD level against the scalar reference.

Every kernel on the model's path gives the scalar reference's bits on every
level: the packed int8 GEMMs and the f32 panel GEMM (kernels/dispatch.h), the
int8 activation quantizers, the element-wise ops (kernels/ops.h) and the
attention tile kernel (kernels/attention.h), each by one evaluation order that
the scalar code spells out and the SIMD levels reproduce. So the logits must
be identical, bit for bit, in exact mode (f32 activations) and in int8 mode,
and top-1 identical at all 512 positions. A single differing bit anywhere in
30 layers would show here.

This compares levels with one another only; how close the logits are to an
independent oracle (transformers on the same GGUF, llama.cpp's perplexity) is
tests/test_default_model.py's concern, and what it shows for the default level
holds for every level once they agree bit for bit."""
import numpy as np
import pytest

from conftest import WIKI_TEST, read_raw
from minicpm_edge import Model, _core

N_TOKENS = 512


def _logits_per_isa(model, ids):
    previous = _core.isa()
    out = {}
    try:
        for isa in _core.supported_isas():
            _core.set_isa(isa)
            model.reset()
            out[isa] = model.logits(ids)
    finally:
        _core.set_isa(previous)
    return out


def _ids(model):
    ids = model.tokenize(read_raw(WIKI_TEST)[:20000])[:N_TOKENS]
    assert len(ids) == N_TOKENS
    return ids


def _assert_identical_across_isas(model, mode):
    out = _logits_per_isa(model, _ids(model))
    assert len(out) >= 2, "only the scalar level runs here: nothing to compare"
    ref = out["scalar"]
    assert ref.shape[0] == N_TOKENS and np.isfinite(ref).all()
    for isa, got in out.items():
        diff = float(np.abs(got - ref).max())
        same_top1 = int((got.argmax(-1) == ref.argmax(-1)).sum())
        print(f"{isa} vs scalar ({mode}): max |dlogit| {diff:.3g}, top-1 identical at {same_top1}/{N_TOKENS}")
        np.testing.assert_array_equal(got, ref, err_msg=f"{isa} vs scalar ({mode})")
        # ... and the same bits (assert_array_equal takes -0 for +0).
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), isa
        assert same_top1 == N_TOKENS, isa


@pytest.mark.slow
def test_exact_mode_logits_are_identical_across_isas(default_model):
    m = Model(str(default_model), n_ctx=N_TOKENS, n_threads=2, int8_activations=False)
    _assert_identical_across_isas(m, "exact")


@pytest.mark.slow
def test_int8_mode_logits_are_identical_across_isas(default_model):
    m = Model(str(default_model), n_ctx=N_TOKENS, n_threads=2)
    _assert_identical_across_isas(m, "int8")
