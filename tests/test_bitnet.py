"""BitNet b1.58 (architecture `bitnet`, ternary t2 matrices) against transformers on
tiny randomly initialised models, 64 tokens, prefill and step-by-step decode:

- float master weights -> t2: our default arithmetic (int8 per-token activations,
  integer ternary dots) against transformers with BitNet's BitLinear quantizers
  (AutoBitLinear, online); exact arithmetic against the ternarized weights in f32;
- the packed release format (uint8 codes + weight_scale) against transformers'
  BitLinear, which loads that format itself;
- llama.cpp's TQ1_0 / TQ2_0 files (written by the gguf package's quantizer), run
  directly and converted to t2.
The LM head is F32 in these files so the comparison isolates the ternary layers
(a Q8_0 head adds its own int8 activation rounding, ~6e-3 of the logit range)."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader, quants

from minicpm_edge import Model
from minicpm_edge.convert import convert
from model_oracles import max_abs_relative, ours_prefill_and_decode, transformers_bitnet_logits

TOL = 1e-3
N_TOKENS = 64


def _ids(n_vocab: int) -> list[int]:
    return np.random.default_rng(99).integers(0, n_vocab, N_TOKENS).tolist()


def _ours(gguf, ids, **kw):
    return ours_prefill_and_decode(gguf, ids, kv_cache_type="f32", **kw)


@pytest.fixture(scope="module")
def converted(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("bitnet")
    cache = {}

    def get(src, typ, head="f32"):
        key = (str(src), typ, head)
        if key not in cache:
            name = f"{src.stem if src.is_file() else src.name}-{typ}-{head}.gguf"
            cache[key] = convert(src, out / name, out_type=typ, output_tensor_type=head, progress=False)
        return cache[key]
    return get


def _embedding(gguf) -> np.ndarray:
    """The file's token embedding (Q8_0 in these files) as the gguf package decodes it."""
    t = next(t for t in GGUFReader(str(gguf)).tensors if t.name == "token_embd.weight")
    return quants.dequantize(t.data, t.tensor_type)


def _check(ours, ref, what):
    prefill, decode = ours
    err_p, err_d = max_abs_relative(prefill, ref), max_abs_relative(decode, ref)
    print(f"{what}: prefill {err_p:.2e} decode {err_d:.2e}")
    assert err_p < TOL and err_d < TOL, (what, err_p, err_d)


@pytest.mark.parametrize("layout", ["t2", "tl3"])
def test_ternary_matches_transformers_bitlinear(tiny_models, converted, layout):
    gguf = converted(tiny_models / "bitnet", layout)
    ids, embed = _ids(Model(str(gguf)).n_vocab), _embedding(gguf)
    _check(_ours(gguf, ids), transformers_bitnet_logits(tiny_models / "bitnet", ids, embed=embed), f"{layout} int8")
    exact = transformers_bitnet_logits(tiny_models / "bitnet", ids, act_quant=False, embed=embed)
    _check(_ours(gguf, ids, int8_activations=False), exact, f"{layout} exact")
    # The activation quantization is part of the model: leaving it out moves logits
    # far beyond the tolerance, so the int8 comparison above is not vacuous.
    assert max_abs_relative(_ours(gguf, ids)[0], exact) > 10 * TOL


def test_packed_release_matches_transformers_bitlinear(tiny_models, converted):
    src = tiny_models / "bitnet-packed"
    gguf = converted(src, "t2")
    ids = _ids(Model(str(gguf)).n_vocab)
    _check(_ours(gguf, ids), transformers_bitnet_logits(src, ids), "packed -> t2")


def _decoded_layers(gguf, hf_dir) -> dict[str, np.ndarray]:
    """HF name -> float32 values of the decoder linears of a GGUF, decoded by the gguf package."""
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    out = {}
    for t in GGUFReader(str(gguf)).tensors:
        parts = t.name.split(".")
        if parts[0] == "blk" and parts[2] in names and parts[-1] == "weight":
            out[f"model.layers.{parts[1]}.{names[parts[2]]}.weight"] = quants.dequantize(t.data, t.tensor_type)
    return out


@pytest.mark.parametrize("typ", ["tq2_0", "tq1_0"])
def test_llama_cpp_ternary_files(tiny_models, converted, typ):
    """Exact arithmetic against transformers holding the weights the gguf package decodes
    from the file; in the default arithmetic, the file read directly (its blocks taken
    into t2 at load) equals its conversion to t2 (decoded by the gguf package) bit for
    bit. (Against transformers the int8 path may differ by a few activation rounding
    steps here: float differences of 1e-7 upstream move a value across a rounding
    boundary now and then, and one step moves this tiny model's logits by ~1e-2 of their
    range; the t2 test above happens to have none.)"""
    hf = tiny_models / "bitnet"
    tq = converted(hf, typ)
    types = {t.tensor_type.name for t in GGUFReader(str(tq)).tensors if t.name.endswith("ffn_up.weight")}
    assert types == {typ.upper()}
    ids = _ids(Model(str(tq)).n_vocab)
    ref = transformers_bitnet_logits(hf, ids, act_quant=False, weights=_decoded_layers(tq, hf), embed=_embedding(tq))
    _check(_ours(tq, ids, int8_activations=False), ref, f"{typ} exact")
    direct, as_t2 = _ours(tq, ids), _ours(converted(tq, "t2"), ids)
    assert np.array_equal(direct[0], as_t2[0]) and np.array_equal(direct[1], as_t2[1])


def test_t2_file_layout(tiny_models, converted):
    """The t2 tensors decode (by FORMAT.md's rule, spelled out here) to BitNet's
    absmean ternarization of the master weights, which the f32 file also holds."""
    from safetensors.numpy import load_file
    gguf = converted(tiny_models / "bitnet", "t2")
    reader = GGUFReader(str(gguf))
    tensors = {t.name: t for t in reader.tensors}
    master = load_file(str(tiny_models / "bitnet" / "model.safetensors"))["model.layers.1.mlp.down_proj.weight"]
    codes = np.asarray(tensors["blk.1.ffn_down.weight"].data).view(np.uint8)
    scale = float(np.asarray(tensors["blk.1.ffn_down.weight.scale"].data)[0])
    rows, nbytes = codes.shape
    assert (rows, nbytes * 4) == master.shape
    chunk = codes.reshape(rows, -1, 32)
    t = np.stack([(chunk >> (2 * i)) & 3 for i in range(4)], axis=2).reshape(rows, -1).astype(np.int8) - 1
    iscale = np.float32(1) / max(np.float32(np.abs(master).mean()), np.float32(1e-5))
    expect = np.clip(np.rint(master * iscale), -1, 1)
    assert np.mean(t == expect) > 0.999            # a tie may round differently on another mean's last bit
    assert scale == pytest.approx(1 / iscale, rel=1e-6)
    assert reader.fields["minicpm_edge.ternary.blk.1.ffn_down.weight"].contents() == [2]
    assert reader.fields["minicpm_edge.ffn_activation"].contents() == "relu2"
