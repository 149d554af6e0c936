"""Calibration capture: the linear-layer inputs our runtime shows the converter, against
the inputs transformers' Llama feeds the same projections (forward pre-hooks)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import WIKI_VALID, read_raw
from minicpm_edge import Model
from minicpm_edge.convert import ConvertError, calibrate, convert


def transformers_linear_inputs(hf_dir, windows):
    """Per (layer, site): the rows of every input q_proj, o_proj, gate_proj, down_proj
    and the LM head (under calibrate's head key) receive, over all windows."""
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(hf_dir), torch_dtype=torch.float32)
    model.eval()
    seen: dict[tuple[int, int], list[np.ndarray]] = {}
    hooks = []
    for l, layer in enumerate(model.model.layers):
        for site, mod in enumerate((layer.self_attn.q_proj, layer.self_attn.o_proj, layer.mlp.gate_proj,
                                    layer.mlp.down_proj)):
            def hook(_m, args, key=(l, site)):
                seen.setdefault(key, []).append(args[0][0].double().numpy())
            hooks.append(mod.register_forward_pre_hook(hook))

    def head_hook(_m, args):
        seen.setdefault((calibrate.HEAD_LAYER, calibrate.HEAD_SITE), []).append(args[0][0].double().numpy())
    hooks.append(model.lm_head.register_forward_pre_hook(head_hook))
    with torch.no_grad():
        for w in windows:
            model(torch.tensor([w]))
    for h in hooks:
        h.remove()
    return {k: np.concatenate(v) for k, v in seen.items()}


def test_capture_matches_transformers(tiny_models, tmp_path):
    hf = tiny_models / "llama"
    path = convert(hf, tmp_path / "f32.gguf", "f32", progress=False)
    model = Model(path, n_ctx=256, n_threads=2, int8_activations=False, kv_cache_type="f32", n_batch=48)
    ids = model.tokenize(read_raw(WIKI_VALID)[:20000])
    windows = calibrate.calibration_windows(ids, 3, 100)   # 100 > n_batch: two batches per window
    assert len(windows) == 3 and all(len(w) == 100 for w in windows)
    cal = calibrate.capture_tokens(model, windows, progress=False)
    ref = transformers_linear_inputs(hf, windows)
    assert cal.n_tokens == 300 and set(cal.sites) == set(ref)
    for key, x in ref.items():
        s = cal.sites[key]
        h = x.T @ x
        assert s.n_tokens == 300
        assert np.abs(s.hessian - h).max() <= 1e-4 * np.abs(h).max(), key
        np.testing.assert_allclose(s.abs_sum, np.abs(x).sum(0), rtol=1e-4, atol=1e-4 * np.abs(x).sum(0).max())
        np.testing.assert_allclose(s.abs_max, np.abs(x).max(0), rtol=1e-4, atol=1e-5)
    # the tensors that read each site
    assert cal.for_tensor("blk.1.attn_k.weight") is cal.sites[(1, 0)]
    assert cal.for_tensor("blk.0.ffn_down.weight") is cal.sites[(0, 3)]
    assert cal.for_tensor("blk.0.attn_output.weight") is cal.sites[(0, 1)]
    head = cal.sites[(calibrate.HEAD_LAYER, calibrate.HEAD_SITE)]
    assert cal.for_tensor("output.weight") is head and cal.for_tensor("token_embd.weight") is head
    assert cal.for_tensor("blk.0.attn_norm.weight") is None and cal.for_tensor("output_norm.weight") is None
    # the model is usable afterwards and its cache is empty
    assert model.n_past == 0


def test_layer_passes_match_one_capture(tiny_models, tmp_path):
    """Hessians captured a layer per pass (a small memory budget) are those of one
    capture of all layers, and the converter's file order runs each pass once."""
    path = convert(tiny_models / "llama", tmp_path / "f32.gguf", "f32", progress=False)
    model = Model(path, n_ctx=128, n_threads=2, int8_activations=False, kv_cache_type="f32")
    windows = calibrate.calibration_windows(model.tokenize(read_raw(WIKI_VALID)[:8000]), 2, 64)
    whole = calibrate.capture_tokens(model, windows, progress=False)
    c = model.config
    one_layer = 4 * (2 * c["n_embd"] ** 2 + (c["n_head"] * c["head_dim"]) ** 2 + c["n_ff"] ** 2)
    passes = calibrate.LayerPasses(model, windows, max_bytes=one_layer, progress=False)
    assert [list(p) for p in passes.passes] == [[0], [1]]
    names = [f"blk.{l}.{k}.weight" for l in range(2) for k in ("attn_q", "attn_k", "attn_v", "attn_output",
                                                                 "ffn_gate", "ffn_up", "ffn_down")]
    names.append("output.weight")   # the head's input, taken by the last pass
    for name in names:
        got, ref = passes.for_tensor(name), whole.for_tensor(name)
        np.testing.assert_array_equal(got.hessian, ref.hessian)
        np.testing.assert_array_equal(got.abs_max, ref.abs_max)
    assert passes.runs == 2
    assert passes.for_tensor("blk.7.attn_q.weight") is None and passes.for_tensor("output_norm.weight") is None


def test_calibration_windows():
    ids = list(range(1000))
    w = calibrate.calibration_windows(ids, 4, 100)
    assert [x[0] for x in w] == [0, 300, 600, 900]          # spread over the text
    assert len(calibrate.calibration_windows(ids, 50, 100)) == 10   # what the text holds
    assert calibrate.calibration_windows(ids[:40], 8, 100) == [ids[:40]]
    with pytest.raises(ConvertError):
        calibrate.calibration_windows(ids[:5], 8, 100)
    with pytest.raises(ConvertError):
        calibrate.calibration_windows(ids, 0, 100)
