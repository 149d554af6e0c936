"""The ternary t2 format (docs/FORMAT.md "Ternary"): the matmul driver on every ISA
level against numpy, the converter's packing against FORMAT.md's rule, and clear
errors for hostile or inconsistent files."""
from __future__ import annotations

import numpy as np
import pytest

import gguf_builders as gb
from model_oracles import bitlinear_reference
from minicpm_edge import Model, _core
from minicpm_edge.convert import ConvertError, convert, ternary


@pytest.mark.parametrize("rows,cols", [(37, 384), (640, 2560), (64, 6912)])
@pytest.mark.parametrize("n_tok", [1, 3, 64, 100])
def test_ternary_matmul_against_numpy(rows, cols, n_tok):
    rng = np.random.default_rng(rows * 7 + n_tok)
    t = rng.integers(-1, 2, (rows, cols)).astype(np.int8)
    s = 0.0371
    codes = ternary.pack(t)
    x = (rng.standard_normal((n_tok, cols)) * rng.uniform(0.1, 10, (n_tok, 1))).astype(np.float32)
    ref = bitlinear_reference(x, t, s)
    exact = x.astype(np.float64) @ (t.astype(np.float64) * s).T
    scalar = None
    for isa in _core.supported_isas():
        for threads in (1, 2):
            y = _core.ternary_matmul(codes, s, rows, x, int8=True, n_threads=threads, isa=isa)
            assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(ref)), (isa, threads)
            scalar = y if scalar is None else scalar
            assert np.array_equal(y, scalar), (isa, threads)   # integer dots: every level, same bits
            y = _core.ternary_matmul(codes, s, rows, x, int8=False, n_threads=threads, isa=isa)
            assert np.max(np.abs(y - exact)) <= 1e-5 * np.max(np.abs(exact)), (isa, threads)


def test_empty_batch():
    codes = ternary.pack(np.zeros((4, 128), np.int8))
    for int8 in (True, False):
        assert _core.ternary_matmul(codes, 1.0, 4, np.zeros((0, 128), np.float32), int8=int8).shape == (0, 4)


def test_pack_follows_the_layout_rule():
    rng = np.random.default_rng(3)
    t = rng.integers(-1, 2, (5, 256)).astype(np.int8)
    codes = ternary.pack(t)
    assert codes.shape == (5, 64)
    for r, k in [(0, 0), (1, 31), (2, 32), (3, 127), (4, 128), (4, 255), (0, 200)]:
        c, q, j = k // 128, (k % 128) // 32, k % 32
        assert (codes[r, 32 * c + j] >> (2 * q)) & 3 == t[r, k] + 1
    assert np.array_equal(ternary.unpack(codes), t)


def test_ternarize_keeps_ternary_values_and_absmeans_others():
    rng = np.random.default_rng(4)
    t = rng.integers(-1, 2, (8, 128)).astype(np.int8)
    t_back, s = ternary.ternarize(t.astype(np.float32) * np.float32(0.25))
    assert s == np.float32(0.25) and np.array_equal(t_back, t)
    # A lossy copy (values within 1e-4 of the ternary levels) keeps the codes.
    noisy = t.astype(np.float32) * 0.25 * (1 + 1e-4 * rng.uniform(-1, 1, t.shape)).astype(np.float32)
    t_back, s = ternary.ternarize(noisy)
    assert np.array_equal(t_back, t) and abs(s - 0.25) < 1e-4
    # Other weights: BitNet b1.58's absmean (transformers' WeightQuant, in numpy here).
    w = rng.standard_normal((8, 128)).astype(np.float32)
    t_back, s = ternary.ternarize(w)
    iscale = np.float32(1) / np.float32(np.abs(w).mean())
    assert np.array_equal(t_back, np.clip(np.rint(w * iscale), -1, 1))
    assert s == pytest.approx(1 / iscale, rel=1e-6)
    with pytest.raises(ConvertError):
        ternary.pack(np.ones((2, 100), np.int8))             # t2: rows not a multiple of 128
    with pytest.raises(ConvertError):
        ternary.ternarize(np.ones((0, 128), np.float32))
    with pytest.raises(ConvertError):
        ternary.ternarize(np.full((2, 128), np.nan, np.float32))


@pytest.fixture(scope="module")
def t2_file(tiny_models, tmp_path_factory):
    return convert(tiny_models / "bitnet", tmp_path_factory.mktemp("t2") / "bitnet-t2.gguf", out_type="t2",
                   progress=False)


def test_t2_hostile_metadata(t2_file, tmp_path):
    kvs, tensors = gb.parts_of(t2_file)
    assert Model(str(gb.write_parts(tmp_path / "copy.gguf", kvs, tensors)), n_ctx=16).logits([1, 2]).shape[0] == 2
    name = "blk.0.ffn_up.weight"
    key = "minicpm_edge.ternary." + name
    codes, scale = tensors[name], tensors[name + ".scale"]

    def f32(v, at=scale.name):
        return gb.Tensor(at, [1], int(gb.GGMLQuantizationType.F32), np.float32(v).tobytes())
    lowbit_key = "minicpm_edge.lowbit." + name
    cases = {   # label: (metadata patch, tensor patch, what the error says)
        "layout": ({key: gb.enc_kv(key, gb.ARRAY, [4], gb.U32)}, {}, "ternary layout 4"),
        "length": ({key: gb.enc_kv(key, gb.ARRAY, [2, 0], gb.U32)}, {}, r"must be \[2\]"),
        "tl3-short": ({key: gb.enc_kv(key, gb.ARRAY, [3], gb.U32)}, {}, r"must be \[3, rows, cols\]"),
        "not-array": ({key: gb.enc_kv(key, gb.U32, 2)}, {}, "must be an array"),
        "negative-scale": ({}, {scale.name: f32(-1.0)}, "finite, non-negative"),
        "nan-scale": ({}, {scale.name: f32(np.nan)}, "finite, non-negative"),
        "scale-type": ({}, {scale.name: gb.Tensor(scale.name, scale.ne, int(gb.GGMLQuantizationType.F16))},
                       "one F32 value"),
        "codes-shape": ({}, {name: gb.Tensor(name, [codes.ne[0] // 2, codes.ne[1] * 2], codes.ggml_type)},
                        "must be I8 of shape"),
        "codes-type": ({}, {name: gb.Tensor(name, codes.ne, int(gb.GGMLQuantizationType.Q8_0))}, "found Q8_0"),
        "layer-scale": ({}, {"blk.0.ffn_up.scale": f32(1.0, "blk.0.ffn_up.scale")},   # llama.cpp's output scale
                        "per-tensor output scale"),
        "two-descriptors": ({lowbit_key: gb.enc_kv(lowbit_key, gb.ARRAY, [2, 64, 1], gb.U32)}, {},
                            "more than one descriptor"),
    }
    for label, (kv_patch, t_patch, says) in cases.items():
        p = gb.write_parts(tmp_path / f"{label}.gguf", {**kvs, **kv_patch}, {**tensors, **t_patch})
        with pytest.raises((ValueError, NotImplementedError), match=says) as e:
            Model(str(p), n_ctx=16)
        print(label, "->", type(e.value).__name__, e.value)
    p = gb.write_parts(tmp_path / "drop.gguf", kvs, {k: v for k, v in tensors.items() if k != scale.name})
    with pytest.raises(ValueError, match="scale"):
        Model(str(p), n_ctx=16)


def test_tq_with_differing_block_scales_is_refused(tiny_models, tmp_path):
    """A TQ2_0 tensor whose blocks have different scales is not a per-tensor ternary
    model: refused with a clear error, not run with the wrong weights."""
    from gguf import quants
    tq = convert(tiny_models / "bitnet", tmp_path / "tq2.gguf", out_type="tq2_0", progress=False)
    kvs, tensors = gb.parts_of(tq)
    name = "blk.1.ffn_down.weight"
    t = tensors[name]
    rng = np.random.default_rng(5)
    values = rng.integers(-1, 2, (t.ne[1], t.ne[0])).astype(np.float32) * rng.uniform(0.5, 1, (t.ne[1], 1))
    tensors[name] = gb.Tensor(name, t.ne, t.ggml_type,
                              quants.quantize(values.astype(np.float32), gb.GGMLQuantizationType.TQ2_0).tobytes())
    with pytest.raises(NotImplementedError, match="different scales"):
        Model(str(gb.write_parts(tmp_path / "mixed.gguf", kvs, tensors)), n_ctx=16)


def test_converter_refusals(tiny_models, tmp_path):
    src = tiny_models / "bitnet"
    for kw in ({"method": "gptq", "calib": "x.txt"}, {"target_size": "1MiB"}):
        with pytest.raises(ConvertError, match="ternar"):
            convert(src, tmp_path / "x.gguf", out_type="t2", progress=False, **kw)
    calib = tmp_path / "calib.txt"
    calib.write_text("The quick brown fox jumps over the lazy dog. " * 40)
    with pytest.raises(ConvertError, match="sub-norms"):
        convert(src, tmp_path / "awq.gguf", out_type="w4g64", method="awq", calib=calib, calib_windows=1,
                calib_ctx=32, progress=False)
    # A checkpoint whose rows do not split into 128-input chunks keeps those
    # matrices in Q8_0 (with a warning), like the low-bit types.
    p = convert(tiny_models / "llama", tmp_path / "llama-t2.gguf", out_type="t2", progress=False)
    from gguf import GGUFReader
    types = {t.name: t.tensor_type.name for t in GGUFReader(str(p)).tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0"      # hidden 64
    assert Model(str(p), n_ctx=16).logits([1, 2]).shape == (2, Model(str(p)).n_vocab)


def test_tq_output_of_a_float_model_is_per_tensor_ternary(tiny_models, tmp_path):
    """--type tq2_0 on a model that is not ternary ternarizes each matrix with one
    scale (so every block of a tensor has the same d) and the file loads."""
    from gguf import GGUFReader
    p = convert(tiny_models / "minicpm4", tmp_path / "m4-tq2.gguf", out_type="tq2_0", progress=False)
    down = next(t for t in GGUFReader(str(p)).tensors if t.name == "blk.0.ffn_down.weight")
    assert down.tensor_type.name == "TQ2_0"
    d = np.asarray(down.data).reshape(-1, 66)[:, 64:].copy().view(np.float16)
    assert len(np.unique(d)) == 1
    assert Model(str(p), n_ctx=16).logits([1, 2]).shape[0] == 2


def test_1bitllm_names(tiny_models, tmp_path):
    """1bitLLM's BitnetForCausalLM checkpoints name the sub-norms inner_attn_ln and
    ffn_layernorm; the same weights under those names give the same file."""
    import json
    import shutil
    from safetensors.numpy import load_file, save_file
    src = tiny_models / "bitnet"
    alt = tmp_path / "1bitllm"
    shutil.copytree(src, alt)
    tensors = load_file(str(src / "model.safetensors"))
    renamed = {k.replace("self_attn.attn_sub_norm", "self_attn.inner_attn_ln")
                .replace("mlp.ffn_sub_norm", "mlp.ffn_layernorm"): v for k, v in tensors.items()}
    assert renamed.keys() != tensors.keys()
    save_file(renamed, str(alt / "model.safetensors"))
    cfg = json.loads((src / "config.json").read_text())
    cfg["architectures"] = ["BitnetForCausalLM"]
    (alt / "config.json").write_text(json.dumps(cfg))
    from gguf import GGUFReader
    a = convert(src, tmp_path / "a.gguf", out_type="t2", progress=False)
    b = convert(alt, tmp_path / "b.gguf", out_type="t2", progress=False)
    ta = {t.name: np.asarray(t.data).tobytes() for t in GGUFReader(str(a)).tensors}
    tb = {t.name: np.asarray(t.data).tobytes() for t in GGUFReader(str(b)).tensors}
    assert ta == tb
