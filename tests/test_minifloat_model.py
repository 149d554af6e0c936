"""Whole models with minifloat matrices (docs/FORMAT.md "Minifloats").

Oracle: the value grid of the same type (grids.py: each decoder-layer matrix rounded
to the grid by minifloat.py and written back as F32, RTN or GPTQ with the same
calibration). With every other tensor F32 too (a tied model whose head is stored F32),
the minifloat file in exact arithmetic must give the grid file's logits; the default
int8 path stays close to them. Hostile descriptors and side tensors are refused by
the runtime and by the converter's reader with clear exceptions."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

import gguf_builders as gb
from conftest import WIKI_VALID
from minicpm_edge import Model
from minicpm_edge.convert import CheckpointFormatError, calibrate, convert
from minicpm_edge.convert.grids import fake_quantized, grid
from minicpm_edge.convert.minifloat_type import parse_minifloat

TYPES = ["e4m3g32", "e5m2g32", "e3m2g32", "e2m3g32", "e2m1g32", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4", "nvfp4"]


@pytest.fixture(scope="module")
def source(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("minifloat-model")
    return out, convert(tiny_models / "llama-tied", out / "tied-f32.gguf", "f32", progress=False)


def logits(path, ids, int8):
    return Model(str(path), n_ctx=64, n_threads=2, int8_activations=int8).logits(ids)


def compare(path, grid_path, ids):
    ref = logits(grid_path, ids, False)
    span = float(np.abs(ref).max())
    exact = logits(path, ids, False)
    assert float(np.abs(exact - ref).max()) <= 1e-5 * span
    fast = logits(path, ids, True)
    err = float(np.abs(fast - ref).max())
    print(f"{path.name}: exact {np.abs(exact - ref).max() / span:.1e}, int8 {err / span:.1e} of max|logit|")
    assert err <= 0.05 * span
    return exact, fast


@pytest.mark.parametrize("name", TYPES)
def test_rtn_file_matches_the_value_grid(source, name):
    out, f32 = source
    path = convert(f32, out / f"{name}.gguf", name, progress=False, output_tensor_type="f32")
    fields = GGUFReader(str(path)).fields
    t = parse_minifloat(name)
    assert list(fields["minicpm_edge.minifloat.blk.0.attn_q.weight"].contents()) == t.descriptor()
    assert str(fields["minicpm_edge.file_type"].contents()) == name
    ids = list(np.random.default_rng(5).integers(3, 200, 40))
    exact, fast = compare(path, fake_quantized(f32, out / f"{name}-grid.gguf", grid(name)), ids)
    # Decode, one token at a time, gives the prefill's logits (f32 dots sum in another
    # order than the prefill GEMM: f32 rounding apart) -- except NVFP4, whose mf8 rows
    # take int8 dots in decode and f32 panels in prefill: there, as close as int8 is.
    m = Model(str(path), n_ctx=64, n_threads=2)
    step = np.stack([m.eval([t]) for t in ids[:5]])
    span = float(np.abs(fast).max())
    np.testing.assert_allclose(step, fast[:5], rtol=0, atol=(0.05 if name == "nvfp4" else 1e-4) * span)
    if name == "nvfp4":
        assert not np.array_equal(step, exact[:5])


@pytest.mark.parametrize("name", ["e2m1g32", "nvfp4", "mxfp6_e3m2"])
def test_gptq_file_matches_the_gptq_value_grid(source, name):
    from minicpm_edge.convert.grids import FakeQuant
    from minicpm_edge.convert.gguf_source import retype_gguf
    from minicpm_edge.convert.quantize import OUT_TYPES
    out, f32 = source
    cal = calibrate.capture(f32, calibrate.read_text(WIKI_VALID), n_windows=4, ctx=64, n_threads=2)
    path = convert(f32, out / f"{name}-gptq.gguf", name, method="gptq", calibration=cal, progress=False,
                   output_tensor_type="f32")
    ref = retype_gguf(f32, out / f"{name}-gptq-grid.gguf", OUT_TYPES["f32"], progress=False,
                      rewrite=FakeQuant(grid(name), cal))
    rtn = fake_quantized(f32, out / f"{name}-rtn-grid.gguf", grid(name))
    ids = list(np.random.default_rng(6).integers(3, 200, 40))
    compare(path, ref, ids)
    assert not np.array_equal(logits(ref, ids, False), logits(rtn, ids, False))   # GPTQ changed the values


def test_default_policy_keeps_head_and_embedding_q8_0(tiny_models, tmp_path):
    path = convert(tiny_models / "llama", tmp_path / "llama-nvfp4.gguf", "nvfp4", progress=False)
    r = GGUFReader(str(path))
    types = {t.name: t.tensor_type.name for t in r.tensors}
    assert types["token_embd.weight"] == "Q8_0" and types["output.weight"] == "Q8_0"
    assert types["blk.0.ffn_up.weight"] == "I8" and types["blk.0.ffn_up.weight.scale"] == "I8"
    assert types["blk.0.ffn_up.weight.tensor_scale"] == "F32"
    assert not any(k.startswith("minicpm_edge.minifloat.token_embd") for k in r.fields)
    # Re-typing keeps minifloat matrices byte for byte and decodes them for other types.
    again = convert(path, tmp_path / "again.gguf", "nvfp4", progress=False)
    before = {t.name: bytes(np.asarray(t.data).tobytes()) for t in r.tensors}
    after = {t.name: bytes(np.asarray(t.data).tobytes()) for t in GGUFReader(str(again)).tensors}
    assert after == before
    f32 = convert(path, tmp_path / "decoded.gguf", "f32", progress=False)
    ids = [5, 9, 2, 77, 31]
    np.testing.assert_allclose(logits(f32, ids, False), logits(path, ids, False), rtol=0,
                               atol=1e-5 * float(np.abs(logits(f32, ids, False)).max()))


# ---- hostile files ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nvfp4_parts(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("minifloat-hostile")
    path = convert(tiny_models / "llama", out / "llama-nvfp4.gguf", "nvfp4", progress=False)
    return gb.parts_of(path)


KEY = "minicpm_edge.minifloat.blk.0.attn_q.weight"
NAME = "blk.0.attn_q.weight"


def _refused(tmp_path, kvs, tensors, label, match):
    p = gb.write_parts(tmp_path / f"{label}.gguf", kvs, tensors)
    with pytest.raises((ValueError, NotImplementedError), match=match) as e:
        Model(str(p), n_ctx=16)
    print(label, "->", type(e.value).__name__, e.value)
    return p


@pytest.mark.parametrize("label,value,match", [
    ("length", [2, 1, 16], "array of 4"), ("signed", None, "array of 4"), ("scaling", [2, 1, 16, 7], "scaling 7"),
    ("element", [3, 3, 16, 2], "not supported"), ("block", [2, 1, 32, 2], "not supported"),
    ("other-format", [2, 1, 16, 0], "F16 of shape"), ("huge", [2, 1, 1 << 31, 2], "out-of-range")])
def test_hostile_descriptors(nvfp4_parts, tmp_path, label, value, match):
    kvs, tensors = nvfp4_parts
    assert Model(str(gb.write_parts(tmp_path / "copy.gguf", kvs, tensors)), n_ctx=16).logits([1, 2]).shape[0] == 2
    patch = gb.enc_kv(KEY, gb.ARRAY, [2, 1, 16, 2], gb.I32) if value is None else gb.enc_kv(KEY, gb.ARRAY, value, gb.U32)
    p = _refused(tmp_path, {**kvs, KEY: patch}, tensors, label, match)
    if label in ("length", "scaling", "element", "block"):
        with pytest.raises(CheckpointFormatError, match="not a minifloat descriptor"):
            convert(p, tmp_path / f"{label}-retyped.gguf", "f16", progress=False)


def test_hostile_side_tensors(nvfp4_parts, tmp_path):
    kvs, tensors = nvfp4_parts
    for drop, match in ((NAME + ".scale", "missing"), (NAME + ".tensor_scale", "tensor_scale")):
        _refused(tmp_path, kvs, {k: v for k, v in tensors.items() if k != drop}, "drop", match)
    bad = dict(tensors)
    t = bad[NAME + ".scale"]
    bad[NAME + ".scale"] = gb.Tensor(t.name, t.ne, int(gb.GGMLQuantizationType.F16))
    _refused(tmp_path, kvs, bad, "scale-type", "I8 of shape")
    # Scales no writer produces: a NaN tensor scale, a negative and a NaN E4M3 block scale.
    bad = dict(tensors)
    ts = bad[NAME + ".tensor_scale"]
    bad[NAME + ".tensor_scale"] = gb.Tensor(ts.name, ts.ne, ts.ggml_type, np.array([np.nan], np.float32).tobytes())
    _refused(tmp_path, kvs, bad, "nan-tensor-scale", "finite")
    for code, match in ((0xB8, "negative E4M3"), (0x7F, "not finite")):
        raw = bytearray(tensors[NAME + ".scale"].data)
        raw[3] = code
        bad = {**tensors, NAME + ".scale": gb.Tensor(t.name, t.ne, t.ggml_type, bytes(raw))}
        _refused(tmp_path, kvs, bad, f"scale-{code}", match)
    # A codes tensor whose shape does not fit the descriptor.
    codes = tensors[NAME]
    bad = {**tensors, NAME: gb.Tensor(codes.name, [codes.ne[0] // 2, codes.ne[1]], codes.ggml_type,
                                       codes.data[:len(codes.data) // 2])}
    _refused(tmp_path, kvs, bad, "codes-shape", "I8 of shape")
    # Two descriptors for one matrix.
    lk = "minicpm_edge.lowbit." + NAME
    _refused(tmp_path, {**kvs, lk: gb.enc_kv(lk, gb.ARRAY, [4, 32, 1], gb.U32)}, tensors, "two", "more than one descriptor")


@pytest.mark.parametrize("head", ["e2m1g32", "nvfp4", "e4m3g32"])
def test_minifloat_head_and_embedding(tiny_models, tmp_path, head):
    """--output-tensor-type puts the tied embedding table itself in a minifloat type: rows
    are decoded for lookups, the head runs as any matrix; the oracle is the file
    re-typed to F32 by the converter's decoder (FORMAT.md's arithmetic)."""
    path = convert(tiny_models / "llama-tied", tmp_path / "tied.gguf", "q8_0", progress=False,
                   output_tensor_type=head)
    fields = GGUFReader(str(path)).fields
    assert list(fields["minicpm_edge.minifloat.token_embd.weight"].contents()) == \
        parse_minifloat(head).descriptor()
    f32 = convert(path, tmp_path / "decoded.gguf", "f32", progress=False)
    ids = list(np.random.default_rng(9).integers(3, 200, 24))
    ref = logits(f32, ids, False)
    span = float(np.abs(ref).max())
    assert float(np.abs(logits(path, ids, False) - ref).max()) <= 1e-5 * span
    assert float(np.abs(logits(path, ids, True) - ref).max()) <= 0.05 * span
