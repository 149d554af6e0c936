"""Whole models with low-bit (w{b}g{G}) matrices.

Oracle: the same file re-typed to F32 by the converter, which decodes the codes
with docs/FORMAT.md's arithmetic into plain F32 tensors (checked against the
spec in test_convert_lowbit.py); the F32 path is checked against transformers
in test_model.py. So:
  * exact mode (int8_activations=False: weights decoded to f32) must give the
    F32 file's logits to f32 rounding;
  * the default table-lookup path (int8 tables, T-MAC) must stay close to them:
    its only extra error is the rounding of each table to int8."""
import numpy as np
import pytest

from minicpm_edge import Model
from minicpm_edge.convert import convert

# (model, --type, --output-tensor-type): the head low-bit too, untied and tied
# (then token_embd itself is low-bit), and a ggml file whose head alone is low-bit.
CASES = [("llama", "w4g64", None), ("llama", "w2g32s", "w4g32"), ("llama-tied", "w3g128", None),
         ("llama-tied", "w2g64", "w4g64s"), ("llama", "q8_0", "w3g64"), ("minicpm", "w1g64s", None),
         ("minicpm4", "w4g128s", None)]


@pytest.fixture(scope="module")
def files(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("lowbit-model")

    def get(model, typ, head=None):
        name = f"{model}-{typ}-{head}"
        low = convert(tiny_models / model, out / f"{name}.gguf", typ, progress=False, output_tensor_type=head)
        f32 = convert(low, out / f"{name}-decoded-f32.gguf", "f32", progress=False)
        return low, f32
    return get


@pytest.mark.parametrize("model,typ,head", CASES)
def test_lowbit_model_matches_decoded_f32(files, model, typ, head):
    low, f32 = files(model, typ, head)
    if head is not None:  # the head really is low-bit in the file
        from gguf import GGUFReader
        fields = GGUFReader(str(low)).fields
        head_name = "token_embd.weight" if model.endswith("-tied") else "output.weight"
        assert list(fields[f"minicpm_edge.lowbit.{head_name}"].contents()) == \
            [int(head[1]), int(head[3:5]), 0 if head.endswith("s") else 1]
    ids = list(np.random.default_rng(7).integers(3, 200, 40))
    ref = Model(str(f32), n_ctx=64, n_threads=2, int8_activations=False).logits(ids)
    exact = Model(str(low), n_ctx=64, n_threads=2, int8_activations=False).logits(ids)
    span = float(np.abs(ref).max())
    assert float(np.abs(exact - ref).max()) <= 1e-4 * span
    lut = Model(str(low), n_ctx=64, n_threads=2).logits(ids)
    err = float(np.abs(lut - ref).max())
    print(f"{model} {typ} head {head}: exact {np.abs(exact - ref).max() / span:.1e}, int8 tables {err / span:.1e} of max|logit|")
    assert err <= 0.05 * span
    # Decode (one token at a time) takes the same per-token tables as prefill.
    m = Model(str(low), n_ctx=64, n_threads=2)
    m.reset()
    step = np.stack([m.eval([t]) for t in ids[:6]])
    np.testing.assert_allclose(step, lut[:6], rtol=0, atol=1e-5 * span)


def test_lowbit_model_int8_gemm_prefill(files):
    """Prefill through the int8 GEMM (tiles converted to Q4_1x8 groups) stays as close
    to the decoded F32 file as table lookup does; decode still looks up."""
    from minicpm_edge import _core
    low, f32 = files("llama", "w4g64")
    ids = list(np.random.default_rng(8).integers(3, 200, 40))
    ref = Model(str(f32), n_ctx=64, n_threads=2, int8_activations=False).logits(ids)
    span = float(np.abs(ref).max())
    try:
        _core.set_lowbit_gemm("int8")
        got = Model(str(low), n_ctx=64, n_threads=2).logits(ids)
    finally:
        _core.set_lowbit_gemm("auto")
    lut = Model(str(low), n_ctx=64, n_threads=2).logits(ids)
    assert not np.array_equal(got, lut)
    assert float(np.abs(got - ref).max()) <= 0.05 * span


# ---- hostile low-bit metadata -----------------------------------------------------------------
def _builder_from(path):
    import gguf_builders as gb
    return gb.parts_of(path)


def _write(tmp_path, kvs, tensors, name):
    import gguf_builders as gb
    return gb.write_parts(tmp_path / name, kvs, tensors)


def test_lowbit_hostile_metadata(files, tmp_path):
    import gguf_builders as gb
    low, _ = files("llama", "w2g64")
    kvs, tensors = _builder_from(low)
    assert Model(str(_write(tmp_path, kvs, tensors, "copy.gguf")), n_ctx=16).logits([1, 2]).shape[0] == 2
    key = "minicpm_edge.lowbit.blk.0.attn_q.weight"
    cases = {
        "bits": {key: gb.enc_kv(key, gb.ARRAY, [9, 64, 1], gb.U32)},
        "group": {key: gb.enc_kv(key, gb.ARRAY, [2, 48, 1], gb.U32)},
        "length": {key: gb.enc_kv(key, gb.ARRAY, [2, 64], gb.U32)},
        "signed": {key: gb.enc_kv(key, gb.ARRAY, [2, 64, 1], gb.I32)},
        "not-array": {key: gb.enc_kv(key, gb.U32, 2)},
        "bits-mismatch": {key: gb.enc_kv(key, gb.ARRAY, [3, 64, 1], gb.U32)},
        "symmetric-with-min": {key: gb.enc_kv(key, gb.ARRAY, [2, 64, 0], gb.U32)},
        "embedding": {"minicpm_edge.lowbit.token_embd.weight":
                      gb.enc_kv("minicpm_edge.lowbit.token_embd.weight", gb.ARRAY, [2, 64, 1], gb.U32)},
    }
    for label, patch in cases.items():
        p = _write(tmp_path, {**kvs, **patch}, tensors, f"{label}.gguf")
        with pytest.raises((ValueError, NotImplementedError)) as e:
            Model(str(p), n_ctx=16)
        print(label, "->", type(e.value).__name__, e.value)
    for drop in ("blk.0.attn_q.weight.scale", "blk.0.attn_q.weight.min"):
        p = _write(tmp_path, kvs, {k: v for k, v in tensors.items() if k != drop}, "drop.gguf")
        with pytest.raises(ValueError):
            Model(str(p), n_ctx=16)
    # A scale tensor of the wrong type.
    bad = dict(tensors)
    t = bad["blk.0.attn_q.weight.scale"]
    bad["blk.0.attn_q.weight.scale"] = gb.Tensor(t.name, t.ne, int(gb.GGMLQuantizationType.F32))
    with pytest.raises(ValueError):
        Model(str(_write(tmp_path, kvs, bad, "scale-type.gguf")), n_ctx=16)
