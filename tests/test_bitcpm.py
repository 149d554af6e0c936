"""BitCPM4 (ternary MiniCPM4): its fake-quantized checkpoints hold t * s per group of 32
inputs (t in {-1, 0, 1}, s the group's absmean). `--type w2g32` stores such groups
exactly (d = s, m = -s, q = t + 1) and the model runs through the MiniCPM path and the
2-bit table-lookup kernels. The reference is transformers' Llama code with MiniCPM's
scalars folded in (as in test_model_logits.py), holding the file's own Q8_0 embedding
and head so that only the ternary layers are compared."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from gguf import GGUFReader, quants
from safetensors.numpy import load_file, save_file

from minicpm_edge import Model
from minicpm_edge.convert import convert, lowbit
from model_oracles import max_abs_relative, minicpm_as_llama_logits


@pytest.fixture(scope="module")
def bitcpm(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("bitcpm")
    src = tiny_models / "bitcpm4"
    return src, convert(src, out / "bitcpm4-w2g32.gguf", out_type="w2g32", progress=False), out


def _bf16_tensors(path):
    import torch
    from safetensors.torch import load_file as load_torch
    return {k: v.float().numpy() for k, v in load_torch(str(path)).items()}


def test_ternary_groups_are_stored_exactly(bitcpm):
    src, gguf, _ = bitcpm
    master = _bf16_tensors(src / "model.safetensors")
    reader = GGUFReader(str(gguf))
    groups = lowbit.read_descriptors(reader)
    by_name = {t.name: t for t in reader.tensors}
    name, hf = "blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"
    t = groups[name]
    values = lowbit.decode([np.asarray(by_name[n].data) for n in t.part_names(name)], t)
    assert np.array_equal(values, master[hf])
    # RTN's range rule alone would have lost the zeros: levels -s, -s/3, s/3, s.
    g = master[hf].reshape(master[hf].shape[0], -1, 32)
    assert (g == 0).any() and len(np.unique(np.abs(g[0, 0]))) == 2


def test_bitcpm_matches_transformers(bitcpm):
    src, gguf, out = bitcpm
    ref_dir = out / "ref"
    shutil.copytree(src, ref_dir, dirs_exist_ok=True)
    tensors = _bf16_tensors(src / "model.safetensors")
    file_tensors = {t.name: t for t in GGUFReader(str(gguf)).tensors}
    for hf, gg in (("model.embed_tokens.weight", "token_embd.weight"), ("lm_head.weight", "output.weight")):
        t = file_tensors[gg]
        tensors[hf] = quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    save_file(tensors, str(ref_dir / "model.safetensors"))
    ids = np.random.default_rng(11).integers(0, 512, 64).tolist()
    ref = minicpm_as_llama_logits(ref_dir, ids)
    exact = Model(str(gguf), n_ctx=128, kv_cache_type="f32", int8_activations=False).logits(ids)
    lut = Model(str(gguf), n_ctx=128, kv_cache_type="f32").logits(ids)
    err_exact, err_lut = max_abs_relative(exact, ref), max_abs_relative(lut, ref)
    print(f"bitcpm4 w2g32: exact {err_exact:.2e}, table lookup (int8 tables) {err_lut:.2e}")
    assert err_exact < 1e-4
    assert err_lut < 3e-2     # int8 tables and activations, as every low-bit file
