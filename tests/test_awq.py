"""AWQ: the folded scales keep the float model's function (transformers as the oracle),
the Hessian form of the output error equals the error on the tokens themselves, and
the searched scales lower a layer's output error against plain RTN."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import WIKI_VALID, read_raw
from minicpm_edge import Model
from minicpm_edge.convert import awq, calibrate, convert, lowbit, parse_out_type
from minicpm_edge.convert.gguf_source import float_tensors, retype_gguf
from model_oracles import max_abs_relative, transformers_llama_logits


def loud_inputs(rng, n, k):
    x = rng.standard_normal((n, k)).astype(np.float32)
    x[:, rng.choice(k, 4, replace=False)] *= 25
    return x


def test_hessian_error_is_the_output_error():
    rng = np.random.default_rng(0)
    x = loud_inputs(rng, 300, 128)
    w = rng.standard_normal((16, 128)).astype(np.float32)
    t = lowbit.parse_lowbit("w3g32")
    s = rng.uniform(0.5, 2, 128).astype(np.float32)
    q = lowbit.dequantize(*lowbit.quantize_rtn(w * s, t), t) / s
    direct = float(np.sum(((q - w) @ x.T.astype(np.float64)) ** 2))
    assert awq.output_error([w], x.T @ x, t, s) == pytest.approx(direct, rel=1e-4)


@pytest.mark.parametrize("typ", ["w4g64", "w3g32", "w2g64s"])
def test_awq_scales_lower_output_error(typ):
    rng = np.random.default_rng(5)
    k = 256
    w = rng.standard_normal((48, k)).astype(np.float32)
    x = loud_inputs(rng, 1500, k)
    calib, held_out = x[:1000], x[1000:]
    t = lowbit.parse_lowbit(typ)
    s, alpha = awq.search_scales([w], calib.T @ calib, np.abs(calib).mean(0), t)
    assert alpha > 0
    rtn = lowbit.dequantize(*lowbit.quantize_rtn(w, t), t)
    scaled = lowbit.dequantize(*lowbit.quantize_rtn(w * s, t), t) / s
    for x in (calib, held_out):
        err = lambda q: np.linalg.norm((q - w) @ x.T)   # noqa: E731
        assert err(scaled) < 0.9 * err(rtn)


def test_awq_fold_keeps_the_float_function(tiny_models, tmp_path):
    hf = tiny_models / "llama"
    f32 = convert(hf, tmp_path / "f32.gguf", "f32", progress=False)
    cal = calibrate.capture(f32, read_raw(WIKI_VALID)[:20000], n_windows=2, ctx=64, n_threads=2, progress=False)
    # a fixed alpha, so that every site really is scaled
    scales = awq.AWQ(cal, float_tensors(f32), lowbit.parse_lowbit("w4g32"), alphas=(0.5,))
    out = retype_gguf(f32, tmp_path / "awq-f32.gguf", parse_out_type("f32"), progress=False, rewrite=scales)
    load_a, load_b = float_tensors(f32), float_tensors(out)
    for name in ("blk.0.attn_norm.weight", "blk.1.ffn_norm.weight", "blk.0.attn_q.weight", "blk.1.ffn_up.weight",
                 "blk.0.ffn_down.weight"):
        assert not np.allclose(load_a(name), load_b(name)), name   # the file really changed
    np.testing.assert_array_equal(load_a("blk.0.attn_output.weight"), load_b("blk.0.attn_output.weight"))
    assert sorted(scales.alphas) == [(l, s) for l in range(2) for s in (0, 2, 3)]
    ids = list(np.random.default_rng(1).integers(3, 500, 48))
    ref = transformers_llama_logits(hf, ids)
    got = Model(str(out), n_ctx=64, n_threads=2, int8_activations=False, kv_cache_type="f32").logits(ids)
    assert max_abs_relative(got, ref) <= 1e-4
