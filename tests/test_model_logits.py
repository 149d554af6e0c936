"""Tiny randomly initialised models, converted by our converter, against
independent references on 64 tokens, prefill and step-by-step decode:
Llama vs transformers; MiniCPM and MiniCPM4 vs llama.cpp (llama-cpp-python, same
GGUF) and vs transformers' Llama code with MiniCPM's μP scalars folded in."""
from __future__ import annotations

import numpy as np
import pytest

from minicpm_edge import Model
from minicpm_edge.convert import convert
from model_oracles import (llama_cpp_logits, max_abs_relative, minicpm_as_llama_logits, ours_prefill_and_decode,
                           transformers_llama_logits)

TOL = {"f32": 1e-4, "f16": 2e-2}
# The f32 cases run with an f32 KV cache: rounding keys and values to binary16
# (the default cache) alone moves logits by up to KV_F16_TOL of their range.
KV = {"f32": "f32", "f16": "f16"}
KV_F16_TOL = 2e-3
N_TOKENS = 64


def _ids(n_vocab: int) -> list[int]:
    return np.random.default_rng(1234).integers(0, n_vocab, N_TOKENS).tolist()


_ours = ours_prefill_and_decode


@pytest.fixture(scope="module")
def converted(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    cache = {}

    def get(name, typ):
        if (name, typ) not in cache:
            cache[name, typ] = convert(tiny_models / name, out / f"{name}-{typ}.gguf", out_type=typ, progress=False)
        return cache[name, typ]
    return get


@pytest.mark.parametrize("typ", ["f32", "f16"])
@pytest.mark.parametrize("name", ["llama", "llama-tied"])
def test_llama_matches_transformers(tiny_models, converted, name, typ):
    gguf = converted(name, typ)
    m = Model(str(gguf), n_ctx=128)
    ids = _ids(m.n_vocab)
    ref = transformers_llama_logits(tiny_models / name, ids)
    prefill, decode = _ours(gguf, ids, kv_cache_type=KV[typ])
    err_p, err_d = max_abs_relative(prefill, ref), max_abs_relative(decode, ref)
    print(f"{name} {typ}: prefill {err_p:.2e} decode {err_d:.2e}")
    assert err_p < TOL[typ] and err_d < TOL[typ], (err_p, err_d)


@pytest.mark.parametrize("typ", ["f32", "f16"])
@pytest.mark.parametrize("name", ["minicpm", "minicpm4"])
def test_minicpm_matches_llama_cpp(converted, name, typ):
    gguf = converted(name, typ)
    m = Model(str(gguf), n_ctx=128)
    ids = _ids(m.n_vocab)
    ref = llama_cpp_logits(gguf, ids)
    prefill, decode = _ours(gguf, ids, kv_cache_type=KV[typ])
    err_p, err_d = max_abs_relative(prefill, ref), max_abs_relative(decode, ref)
    print(f"{name} {typ} vs llama.cpp: prefill {err_p:.2e} decode {err_d:.2e}")
    assert err_p < TOL[typ] and err_d < TOL[typ], (err_p, err_d)


@pytest.mark.parametrize("name", ["minicpm", "minicpm4"])
def test_minicpm_scales_match_transformers(tiny_models, converted, name):
    gguf = converted(name, "f32")
    m = Model(str(gguf), n_ctx=128)
    ids = _ids(m.n_vocab)
    ref = minicpm_as_llama_logits(tiny_models / name, ids)
    prefill, _ = _ours(gguf, ids, kv_cache_type="f32")
    err = max_abs_relative(prefill, ref)
    print(f"{name} f32 vs transformers (folded scalars): {err:.2e}")
    assert err < TOL["f32"], err


@pytest.mark.parametrize("typ", ["f16", "q8_0", "q4_0"])
def test_llama_cpp_runs_our_llama_files(converted, typ):
    """Our converter's llama files load in llama.cpp and give the logits we give.
    With int8_activations (the default) prefill and decode do llama.cpp's int8
    arithmetic (Q8_0 activation blocks, integer dots), so they must agree to
    float rounding; only the order of the float sums differs."""
    gguf = converted("llama", typ)
    m = Model(str(gguf), n_ctx=128)
    ids = _ids(m.n_vocab)
    ref = llama_cpp_logits(gguf, ids)
    prefill, decode = _ours(gguf, ids, int8_activations=True, kv_cache_type="f16" if typ == "f16" else "f32")
    err_p, err_d = max_abs_relative(prefill, ref), max_abs_relative(decode, ref)
    print(f"llama {typ} vs llama.cpp: prefill {err_p:.2e} decode {err_d:.2e}")
    if typ == "f16":
        assert err_p < TOL["f16"] and err_d < TOL["f16"], (err_p, err_d)
    else:
        assert err_d < 1e-4 and err_p < 1e-4, (err_p, err_d)


@pytest.mark.parametrize("name", ["llama", "minicpm", "minicpm4"])
def test_f16_kv_cache_stays_within_its_tolerance(tiny_models, converted, name):
    """The default binary16 KV cache against the f32 oracle: within KV_F16_TOL
    of the logits' range, and no further from it than llama.cpp's own f16
    cache (which also rounds the queries and softmax weights to binary16)."""
    gguf = converted(name, "f32")
    m = Model(str(gguf), n_ctx=128)
    assert m.kv_cache_type == "f16"
    ids = _ids(m.n_vocab)
    ref = transformers_llama_logits(tiny_models / name, ids) if name == "llama" else llama_cpp_logits(gguf, ids)
    llama_cpp_f16 = max_abs_relative(llama_cpp_logits(gguf, ids, kv_cache_type="f16"), ref)
    exact_p, _ = _ours(gguf, ids, kv_cache_type="f32")
    prefill, decode = _ours(gguf, ids)
    err_exact, err_p, err_d = (max_abs_relative(x, ref) for x in (exact_p, prefill, decode))
    print(f"{name}: f32 KV {err_exact:.2e}, f16 KV prefill {err_p:.2e} decode {err_d:.2e}, "
          f"llama.cpp f16 KV {llama_cpp_f16:.2e}")
    assert err_exact < TOL["f32"], err_exact
    assert err_p < KV_F16_TOL and err_d < KV_F16_TOL, (err_p, err_d)
    assert max(err_p, err_d) <= 1.5 * llama_cpp_f16 + TOL["f32"], (err_p, err_d, llama_cpp_f16)
