"""Converter tests: HF checkpoints and GGUF files -> GGUF, checked against independent oracles.

Oracles: the checkpoint itself read with safetensors/torch, config.json read here,
gguf-py's reader and reference quantizers, sentencepiece, tokenizers and
transformers (RoPE and GGUF tokenizer loading). The tiny checkpoints come from
tools/make_tiny_models.py.
"""
from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter

from minicpm_edge.convert import (CheckpointFormatError, ConvertError, MissingConfigError, MissingTensorError,
                                  ShapeMismatchError, SourceNotFoundError, UnknownOutTypeError,
                                  UnsupportedArchitectureError, convert)

REPO = Path(__file__).resolve().parents[1]
OUT_TYPES = {"f32": Q.F32, "f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}
FILE_TYPES = {"f32": 0, "f16": 1, "bf16": 32, "q8_0": 7, "q4_0": 2, "q4_1": 3}
MODELS = ("llama", "llama-tied", "minicpm", "minicpm4")


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_tiny_models", REPO / "tools" / "make_tiny_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tool():
    return _load_tool()


@pytest.fixture(scope="session")
def tiny(tool, tmp_path_factory) -> dict[str, Path]:
    return tool.make_all(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def converted(tiny, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("gguf")
    cache: dict[tuple[str, str], Path] = {}

    def get(model: str, out_type: str) -> Path:
        if (model, out_type) not in cache:
            cache[model, out_type] = convert(tiny[model], out_dir / f"{model}-{out_type}.gguf", out_type,
                                             progress=False)
        return cache[model, out_type]
    return get


def config(d: Path) -> dict:
    return json.loads((d / "config.json").read_text())


def hf_weights(d: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as float32, read with torch (which knows bfloat16)."""
    from safetensors.torch import load_file
    out = {}
    for f in sorted(d.glob("*.safetensors")):
        out.update({k: v.float().numpy() for k, v in load_file(str(f)).items()})
    return out


def fields(r: GGUFReader) -> dict:
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}


def tensors(r: GGUFReader) -> dict:
    return {t.name: t for t in r.tensors}


def dequant(t) -> np.ndarray:
    shape = tuple(reversed(t.shape.tolist()))
    return gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)


def unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """GGUF (interleaved-pair RoPE) row order back to HF's half-split order."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_TO_GGUF = {
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{HF_TO_GGUF[rest]}"


# ---- weights -----------------------------------------------------------------------------
@pytest.mark.parametrize("out_type", OUT_TYPES)
@pytest.mark.parametrize("model", MODELS)
def test_weights_roundtrip(tiny, converted, model, out_type):
    """Every tensor decodes back to the checkpoint's values, up to the chosen type's rounding."""
    cfg = config(tiny[model])
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hf = hf_weights(tiny[model])
    r = GGUFReader(converted(model, out_type))
    ts = tensors(r)
    tied = cfg["tie_word_embeddings"]
    checked = 0
    for name, w in hf.items():
        if tied and name == "lm_head.weight":
            continue
        t = ts[gguf_name(name)]
        assert tuple(t.shape.tolist()) == tuple(reversed(w.shape)), name   # ggml order = reversed HF order
        got = dequant(t)
        if name.endswith("q_proj.weight"):
            got = unpermute(got, n_head)
        elif name.endswith("k_proj.weight"):
            got = unpermute(got, n_kv)
        if w.ndim == 1 or name.endswith("norm.weight"):
            expect_type = Q.F32
        elif w.shape[-1] % 32 != 0 and out_type.startswith("q"):
            expect_type = Q.F16       # llama.cpp's fallback for rows that are not whole blocks
        else:
            expect_type = OUT_TYPES[out_type]
        assert t.tensor_type == expect_type, name
        # Row permutation commutes with row-wise block quantization, so compare to the
        # gguf package's own round trip of the HF weight.
        expected = gguf.quants.dequantize(gguf.quants.quantize(w, expect_type), expect_type).reshape(w.shape)
        np.testing.assert_array_equal(got, expected, err_msg=name)
        checked += 1
    assert checked == len(hf) - (1 if tied and "lm_head.weight" in hf else 0)
    assert ("output.weight" in ts) == (not tied)
    weights = [n for n in ts if not n.startswith("rope_")]
    assert len(weights) == checked


def test_f32_is_exact_and_qk_really_permuted(tiny, converted):
    hf = hf_weights(tiny["llama"])
    ts = tensors(GGUFReader(converted("llama", "f32")))
    q = dequant(ts["blk.0.attn_q.weight"])
    np.testing.assert_array_equal(dequant(ts["blk.0.attn_v.weight"]), hf["model.layers.0.self_attn.v_proj.weight"])
    assert not np.array_equal(q, hf["model.layers.0.self_attn.q_proj.weight"])
    np.testing.assert_array_equal(unpermute(q, 4), hf["model.layers.0.self_attn.q_proj.weight"])


@pytest.mark.parametrize("model", ["llama", "minicpm4"])
def test_permuted_qk_give_hf_attention_scores_under_interleaved_rope(tiny, converted, model):
    """The permutation is the right one: ggml's NORM RoPE (adjacent pairs) on the GGUF
    weights yields the same q.k scores as transformers' rotate_half RoPE on the HF weights."""
    import torch
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    cfg = config(tiny[model])
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg["hidden_size"] // n_head
    theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    hf = hf_weights(tiny[model])
    ts = tensors(GGUFReader(converted(model, "f32")))
    x = np.random.default_rng(0).standard_normal((2, cfg["hidden_size"])).astype(np.float32)
    pos = np.array([3, 11])
    inv_freq = theta ** (-np.arange(0, d, 2) / d)
    ang = pos[:, None] * inv_freq[None, :]                            # [2, d/2]

    def project(w, heads):
        return (x @ w.T).reshape(2, heads, d)

    # HF: half-split rotation, via transformers
    emb = torch.tensor(np.concatenate([ang, ang], axis=-1), dtype=torch.float32)
    qh = torch.tensor(project(hf["model.layers.0.self_attn.q_proj.weight"], n_head)).transpose(0, 1)[None]
    kh = torch.tensor(project(hf["model.layers.0.self_attn.k_proj.weight"], n_kv)).transpose(0, 1)[None]
    qh, kh = apply_rotary_pos_emb(qh, kh, emb.cos()[None], emb.sin()[None])
    qh, kh = qh[0].transpose(0, 1).numpy(), kh[0].transpose(0, 1).numpy()     # [pos, head, d]

    # GGUF: rotate adjacent pairs (2i, 2i+1)
    def rope_pairs(v):
        a, b = v[..., 0::2], v[..., 1::2]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = a * c - b * s, a * s + b * c
        return out
    qg = rope_pairs(project(dequant(ts["blk.0.attn_q.weight"]), n_head))
    kg = rope_pairs(project(dequant(ts["blk.0.attn_k.weight"]), n_kv))

    group = n_head // n_kv
    for h in range(n_head):
        s_hf = qh[0, h] @ kh[1, h // group]
        s_gg = qg[0, h] @ kg[1, h // group]
        assert s_gg == pytest.approx(s_hf, rel=1e-4, abs=1e-5)


# ---- metadata ----------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_hyperparameters(tiny, converted, model):
    cfg = config(tiny[model])
    f = fields(GGUFReader(converted(model, "q8_0")))
    arch = "minicpm" if model.startswith("minicpm") else "llama"
    theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    assert f["general.architecture"] == arch
    assert f["general.file_type"] == FILE_TYPES["q8_0"]
    assert f["general.quantization_version"] == 2
    assert f[f"{arch}.context_length"] == cfg["max_position_embeddings"]
    assert f[f"{arch}.embedding_length"] == cfg["hidden_size"]
    assert f[f"{arch}.block_count"] == cfg["num_hidden_layers"]
    assert f[f"{arch}.feed_forward_length"] == cfg["intermediate_size"]
    assert f[f"{arch}.attention.head_count"] == cfg["num_attention_heads"]
    assert f[f"{arch}.attention.head_count_kv"] == cfg["num_key_value_heads"]
    assert f[f"{arch}.attention.layer_norm_rms_epsilon"] == pytest.approx(cfg["rms_norm_eps"], rel=1e-6)
    assert f[f"{arch}.rope.freq_base"] == pytest.approx(theta)
    assert f[f"{arch}.rope.dimension_count"] == cfg["hidden_size"] // cfg["num_attention_heads"]
    assert f[f"{arch}.vocab_size"] == cfg["vocab_size"]


@pytest.mark.parametrize("out_type", list(FILE_TYPES))
def test_file_type(converted, out_type):
    assert fields(GGUFReader(converted("minicpm", out_type)))["general.file_type"] == FILE_TYPES[out_type]


def test_minicpm_scalars(tiny, converted):
    cfg = config(tiny["minicpm"])
    r = GGUFReader(converted("minicpm", "f16"))
    f = fields(r)
    assert f["minicpm.embedding_scale"] == pytest.approx(cfg["scale_emb"])
    assert f["minicpm.residual_scale"] == pytest.approx(cfg["scale_depth"] / math.sqrt(cfg["num_hidden_layers"]))
    assert f["minicpm.logit_scale"] == pytest.approx(cfg["hidden_size"] / cfg["dim_model_base"])
    assert f["minicpm_edge.arch_variant"] == "minicpm"
    assert not any(k.startswith(("minicpm.rope.scaling", "minicpm_edge.sparse")) for k in f)
    assert not any(n.startswith("rope_") for n in tensors(r))


def test_minicpm4_longrope_and_sparse(tiny, converted):
    import torch  # noqa: F401  (transformers' RoPE helpers need it)
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = config(tiny["minicpm4"])
    rope = cfg["rope_scaling"]
    r = GGUFReader(converted("minicpm4", "q4_0"))
    f, ts = fields(r), tensors(r)
    assert f["minicpm.rope.scaling.type"] == "longrope"
    assert f["minicpm.rope.scaling.original_context_length"] == rope["original_max_position_embeddings"]
    # LongRoPE attention factor, as transformers computes it for this configuration
    ref = LlamaConfig(hidden_size=cfg["hidden_size"], num_attention_heads=cfg["num_attention_heads"],
                      max_position_embeddings=cfg["max_position_embeddings"],
                      rope_parameters={**rope, "rope_theta": cfg["rope_theta"]})
    _, attention_factor = ROPE_INIT_FUNCTIONS["longrope"](ref, "cpu")
    assert attention_factor > 1.0
    assert f["minicpm.rope.scaling.attn_factor"] == pytest.approx(attention_factor, rel=1e-6)
    for which in ("long", "short"):
        t = ts[f"rope_factors_{which}.weight"]
        assert t.tensor_type == Q.F32
        np.testing.assert_array_equal(np.asarray(t.data), np.float32(rope[f"{which}_factor"]))
    sparse = {k.removeprefix("minicpm_edge.sparse."): v for k, v in f.items() if k.startswith("minicpm_edge.sparse.")}
    assert sparse == cfg["sparse_config"]
    assert r.fields["minicpm_edge.sparse.use_nope"].types == [gguf.GGUFValueType.BOOL]
    assert f["minicpm_edge.arch_variant"] == "minicpm4"
    assert "output.weight" in ts


def test_llama3_rope_freqs(tiny, converted):
    import torch  # noqa: F401
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = config(tiny["llama-tied"])
    ref = LlamaConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](ref, "cpu")
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg["rope_parameters"]["rope_theta"] ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    t = tensors(GGUFReader(converted("llama-tied", "q8_0")))["rope_freqs.weight"]
    assert t.tensor_type == Q.F32
    divisors = np.asarray(t.data)
    assert len(set(np.round(divisors, 4))) > 2      # unscaled, blended and fully scaled bands all present
    np.testing.assert_allclose(divisors, base / scaled.double().numpy(), rtol=1e-5)
    assert "llama.rope.scaling.type" not in fields(GGUFReader(converted("llama-tied", "q8_0")))


def test_linear_rope_scaling(tiny, tmp_path):
    d = _copy(tiny["llama"], tmp_path / "m")
    _edit_config(d, rope_parameters={"rope_type": "linear", "factor": 2.5, "rope_theta": 50000.0})
    r = GGUFReader(convert(d, tmp_path / "o.gguf", "f16", progress=False))
    f = fields(r)
    assert f["llama.rope.scaling.type"] == "linear"
    assert f["llama.rope.scaling.factor"] == pytest.approx(2.5)
    assert f["llama.rope.freq_base"] == pytest.approx(50000.0)
    assert "rope_freqs.weight" not in tensors(r)


def test_unsupported_rope_scaling(tiny, tmp_path):
    d = _copy(tiny["llama"], tmp_path / "m")
    _edit_config(d, rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    with pytest.raises(UnsupportedArchitectureError, match="dynamic"):
        convert(d, tmp_path / "o.gguf", "f16", progress=False)


# ---- tokenizers --------------------------------------------------------------------------
def test_bpe_vocab(tiny, converted):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    d = tiny["llama"]
    path = converted("llama", "q4_0")
    f = fields(GGUFReader(path))
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    by_id = {i: t for t, i in tok.get_vocab(with_added_tokens=True).items()}
    assert f["tokenizer.ggml.model"] == "gpt2"
    assert f["tokenizer.ggml.pre"] == "default"           # a freshly trained tokenizer is unknown to llama.cpp
    assert f["tokenizer.ggml.tokens"] == [by_id[i] for i in range(len(by_id))]
    assert f["tokenizer.ggml.token_type"][:3] == [3, 3, 3] and set(f["tokenizer.ggml.token_type"][3:]) == {1}
    spec = json.loads((d / "tokenizer.json").read_text())
    assert f["tokenizer.ggml.merges"] == [" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]]
    assert (f["tokenizer.ggml.bos_token_id"], f["tokenizer.ggml.eos_token_id"]) == (1, 2)
    assert f["tokenizer.ggml.eot_token_id"] == tok.token_to_id("<|im_end|>")
    assert f["tokenizer.ggml.add_bos_token"] is False     # the tokenizer adds no BOS
    assert f["tokenizer.chat_template"] == (d / "chat_template.jinja").read_text()
    # transformers rebuilds a tokenizer from our GGUF metadata that tokenizes like the original
    text = "Hello world, this is a test.\n  Tabs\tand ünïcödé 你好 <|im_start|>user 12345"
    rebuilt = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    assert rebuilt.encode(text) == tok.encode(text).ids


def test_sentencepiece_vocab(tiny, converted):
    import sentencepiece as spm

    d = tiny["minicpm4"]
    f = fields(GGUFReader(converted("minicpm4", "q8_0")))
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    added = json.loads((d / "added_tokens.json").read_text())
    n = config(d)["vocab_size"]
    tokens, scores, types = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.scores"], f["tokenizer.ggml.token_type"]
    assert f["tokenizer.ggml.model"] == "llama" and f["tokenizer.ggml.pre"] == "default"
    assert len(tokens) == len(scores) == len(types) == n
    specials = {0, 1, 2, *added.values()}     # listed in tokenizer_config's added_tokens_decoder
    for i in range(sp.vocab_size()):
        assert tokens[i] == sp.id_to_piece(i)
        if i not in specials:
            assert scores[i] == pytest.approx(sp.get_score(i))
            assert types[i] == (6 if sp.is_byte(i) else 1)
    for text, i in added.items():
        assert tokens[i] == text and types[i] == 3
    assert tokens[-2:] == [f"[PAD{n - 2}]", f"[PAD{n - 1}]"] and types[-2:] == [5, 5]
    assert f["tokenizer.ggml.bos_token_id"] == 1
    assert f["tokenizer.ggml.eos_token_id"] == config(d)["eos_token_id"][0]
    assert f["tokenizer.ggml.eot_token_id"] == added["<|im_end|>"]
    assert f["tokenizer.ggml.add_bos_token"] is True and f["tokenizer.ggml.add_eos_token"] is False
    assert f["tokenizer.chat_template"] == json.loads((d / "tokenizer_config.json").read_text())["chat_template"]


# ---- GGUF -> GGUF ------------------------------------------------------------------------
def test_retype_gguf(converted, tmp_path):
    src = converted("minicpm4", "f16")
    out = convert(src, tmp_path / "retyped.gguf", "q8_0", progress=False)
    a, b = GGUFReader(src), GGUFReader(out)
    fa, fb = fields(a), fields(b)
    assert fb.pop("general.file_type") == FILE_TYPES["q8_0"]
    assert fa.pop("general.file_type") == FILE_TYPES["f16"]
    assert fa == fb
    assert all(a.fields[k].types == b.fields[k].types for k in fa)
    ta, tb = tensors(a), tensors(b)
    assert list(ta) == list(tb)
    for name, t in ta.items():
        u = tb[name]
        assert (u.shape == t.shape).all()
        if t.tensor_type == Q.F32:
            assert u.tensor_type == Q.F32
            np.testing.assert_array_equal(dequant(u), dequant(t))
        else:
            assert u.tensor_type == Q.Q8_0
            np.testing.assert_array_equal(
                np.asarray(u.data), gguf.quants.quantize(dequant(t), Q.Q8_0), err_msg=name)


def test_retype_same_type_copies_bytes(converted, tmp_path):
    src = converted("llama", "q4_0")
    out = convert(src, tmp_path, "q4_0", progress=False)
    assert out.name == "llama-q4_0.gguf"          # "llama-q4_0" keeps a single type suffix
    for t, u in zip(GGUFReader(src).tensors, GGUFReader(out).tensors):
        assert t.tensor_type == u.tensor_type
        assert np.asarray(t.data).tobytes() == np.asarray(u.data).tobytes()


def test_retype_from_k_quants_and_bf16(tmp_path):
    """Sources may hold any type gguf.quants can decode (K-quants, BF16); integer tensors are kept."""
    rng = np.random.default_rng(7)

    def k_blocks(qtype, rows):
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, size=(rows, size), dtype=np.uint8)
        # keep the fp16 super-block scales finite and small (Q4_K: d, dmin first; Q6_K: d last)
        scale = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
        if qtype == Q.Q4_K:
            raw[:, 0:2] = scale
            raw[:, 2:4] = scale
        else:
            raw[:, -2:] = scale
        return raw

    src = tmp_path / "k.gguf"
    w = GGUFWriter(src, "llama")
    w.add_uint32("llama.block_count", 1)
    w.add_string("general.name", "k-quant source")
    q4k, q6k = k_blocks(Q.Q4_K, 4), k_blocks(Q.Q6_K, 4)
    bf16 = gguf.quants.quantize(rng.standard_normal((4, 64)).astype(np.float32), Q.BF16)
    w.add_tensor("blk.0.ffn_up.weight", q4k, raw_dtype=Q.Q4_K)
    w.add_tensor("blk.0.ffn_down.weight", q6k, raw_dtype=Q.Q6_K)
    w.add_tensor("blk.0.attn_q.weight", bf16, raw_dtype=Q.BF16)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(64, np.float32))
    w.add_tensor("positions", np.arange(8, dtype=np.int32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    out = convert(src, tmp_path / "out.gguf", "f32", progress=False)
    ts = tensors(GGUFReader(out))
    for name, raw, qtype in (("blk.0.ffn_up.weight", q4k, Q.Q4_K), ("blk.0.ffn_down.weight", q6k, Q.Q6_K),
                             ("blk.0.attn_q.weight", bf16, Q.BF16)):
        assert ts[name].tensor_type == Q.F32
        np.testing.assert_array_equal(np.asarray(ts[name].data), gguf.quants.dequantize(raw, qtype))
    assert ts["positions"].tensor_type == Q.I32
    np.testing.assert_array_equal(np.asarray(ts["positions"].data), np.arange(8))
    assert fields(GGUFReader(out))["general.name"] == "k-quant source"


# ---- errors ------------------------------------------------------------------------------
def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(d: Path, **changes) -> None:
    cfg = config(d)
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))


def test_error_missing_config(tiny, tmp_path):
    d = _copy(tiny["llama"], tmp_path / "m")
    (d / "config.json").unlink()
    with pytest.raises(MissingConfigError, match="config.json"):
        convert(d, tmp_path / "o.gguf", "f16", progress=False)
    assert issubclass(MissingConfigError, ValueError)
    assert not (tmp_path / "o.gguf").exists()


def test_error_unsupported_architecture(tiny, tmp_path):
    d = _copy(tiny["llama"], tmp_path / "m")
    _edit_config(d, architectures=["GPT2LMHeadModel"])
    with pytest.raises(UnsupportedArchitectureError) as e:
        convert(d, tmp_path / "o.gguf", "f16", progress=False)
    assert isinstance(e.value, ValueError)
    for name in ("GPT2LMHeadModel", "LlamaForCausalLM", "MiniCPMForCausalLM"):
        assert name in str(e.value)


def test_error_unknown_out_type(tiny, tmp_path):
    with pytest.raises(UnknownOutTypeError, match="q3_k") as e:
        convert(tiny["llama"], tmp_path / "o.gguf", "q3_k", progress=False)
    assert "q4_1" in str(e.value) and isinstance(e.value, ValueError)


def test_error_missing_tensor(tiny, tmp_path):
    from safetensors.numpy import load_file, save_file
    d = _copy(tiny["llama"], tmp_path / "m")
    w = load_file(str(d / "model.safetensors"))
    del w["model.layers.1.mlp.up_proj.weight"]
    save_file(w, str(d / "model.safetensors"))
    with pytest.raises(MissingTensorError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        convert(d, tmp_path / "o.gguf", "f16", progress=False)
    assert not (tmp_path / "o.gguf").exists()


def test_error_untied_without_lm_head(tiny, tmp_path):
    d = _copy(tiny["llama-tied"], tmp_path / "m")
    _edit_config(d, tie_word_embeddings=False)
    with pytest.raises(MissingTensorError, match="lm_head.weight"):
        convert(d, tmp_path / "o.gguf", "f16", progress=False)


def test_error_shape_mismatch(tiny, tmp_path):
    d = _copy(tiny["minicpm"], tmp_path / "m")
    _edit_config(d, intermediate_size=160)
    with pytest.raises(ShapeMismatchError, match="mlp") as e:
        convert(d, tmp_path / "o.gguf", "f16", progress=False)
    assert "160" in str(e.value) and "144" in str(e.value)


def test_error_missing_shard(tiny, tmp_path):
    d = _copy(tiny["minicpm4"], tmp_path / "m")
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointFormatError, match="model-00002-of-00002"):
        convert(d, tmp_path / "o.gguf", "f16", progress=False)


@pytest.mark.parametrize("cut", [4, 100, -10])
def test_error_truncated_safetensors(tiny, tmp_path, cut):
    d = _copy(tiny["llama"], tmp_path / "m")
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[:cut])
    with pytest.raises(CheckpointFormatError):
        convert(d, tmp_path / "o.gguf", "f16", progress=False)


def test_error_bad_sources(converted, tmp_path):
    with pytest.raises(SourceNotFoundError):
        convert(tmp_path / "nope", tmp_path / "o.gguf", "f16", progress=False)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointFormatError):
        convert(junk, tmp_path / "o.gguf", "f16", progress=False)
    truncated = tmp_path / "t.gguf"
    truncated.write_bytes(converted("llama", "f16").read_bytes()[:5000])
    with pytest.raises(ConvertError):
        convert(truncated, tmp_path / "o.gguf", "q8_0", progress=False)
    src = converted("llama", "f16")
    with pytest.raises(ConvertError, match="overwrite"):
        convert(src, src, "q8_0", progress=False)


# ---- the real SmolLM2 model (needs the default GGUF) -------------------------------------
@pytest.fixture(scope="module")
def smollm2_gguf(tool) -> Path:
    path = tool.find_smollm2_gguf()
    assert path.is_file(), f"default model not found at {path}"
    return path


@pytest.mark.slow
def test_smollm2_round_trip_through_transformers(tool, smollm2_gguf, tmp_path):
    """The real SmolLM2 GGUF (written by llama.cpp's converter) -> HF checkpoint via transformers'
    GGUF reader (which un-permutes Q/K on its own) -> our converter: the same hyperparameter keys,
    the same vocabulary (recognised as llama.cpp's "smollm" pre-tokenizer), and weights that
    re-quantize to exactly what the original tensors give."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    real_reader = GGUFReader(smollm2_gguf)
    real = fields(real_reader)
    d = tmp_path / "smol"
    d.mkdir()
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": real["llama.embedding_length"], "intermediate_size": real["llama.feed_forward_length"],
        "num_hidden_layers": real["llama.block_count"], "num_attention_heads": real["llama.attention.head_count"],
        "num_key_value_heads": real["llama.attention.head_count_kv"],
        "max_position_embeddings": real["llama.context_length"], "vocab_size": real["llama.vocab_size"],
        "rms_norm_eps": real["llama.attention.layer_norm_rms_epsilon"], "rope_theta": real["llama.rope.freq_base"],
        "tie_word_embeddings": True, "bos_token_id": real["tokenizer.ggml.bos_token_id"],
        "eos_token_id": real["tokenizer.ggml.eos_token_id"],
    }
    (d / "config.json").write_text(json.dumps(cfg))
    with torch.device("meta"):
        skeleton = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items() if k != "architectures"}))
    state = load_gguf_checkpoint(str(smollm2_gguf), return_tensors=True, model_to_load=skeleton)["tensors"]
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "model.safetensors"))
    del state
    tool.write_smollm2_tokenizer(d, smollm2_gguf)

    out = convert(d, tmp_path / "smol.gguf", "q8_0", progress=False)
    reader = GGUFReader(out)
    ours = fields(reader)
    assert {k: v for k, v in ours.items() if k.startswith("llama.")} == \
        {k: v for k, v in real.items() if k.startswith("llama.")}
    assert ours["tokenizer.ggml.pre"] == "smollm"
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.add_bos_token", "tokenizer.chat_template"):
        assert ours[key] == real[key], key
    theirs = tensors(real_reader)
    assert set(tensors(reader)) == set(theirs)
    for t in reader.tensors:
        src = theirs[t.name]
        assert (t.shape == src.shape).all(), t.name
        if src.tensor_type in (Q.F32, Q.Q8_0):   # re-encoding to the same type is lossless
            assert t.tensor_type == src.tensor_type
            assert np.asarray(t.data).tobytes() == np.asarray(src.data).tobytes(), t.name
        else:
            assert t.tensor_type == Q.Q8_0
            expected = gguf.quants.quantize(dequant(src), Q.Q8_0)
            assert np.asarray(t.data).tobytes() == expected.tobytes(), t.name


@pytest.mark.slow
def test_smollm2_retype_q4_1_to_q8_0(smollm2_gguf, tmp_path):
    out = convert(smollm2_gguf, tmp_path / "smol-q8_0.gguf", "q8_0", progress=False)
    a, b = GGUFReader(smollm2_gguf), GGUFReader(out)
    assert fields(b)["general.file_type"] == FILE_TYPES["q8_0"]
    for t, u in zip(a.tensors, b.tensors):
        assert t.name == u.name
        if t.tensor_type in (Q.F32, Q.Q8_0):
            assert u.tensor_type == t.tensor_type
            assert np.asarray(t.data).tobytes() == np.asarray(u.data).tobytes()
        else:
            assert u.tensor_type == Q.Q8_0
            np.testing.assert_array_equal(np.asarray(u.data), gguf.quants.quantize(dequant(t), Q.Q8_0))
