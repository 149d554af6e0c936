"""Low-bit conversion `--type w{b}g{G}[s]` (docs/FORMAT.md, "Low-bit group quantization").

Oracles: the written files are read with gguf-py's GGUFReader; the codes are unpacked
here from the spec's definition of the bit string (bit i of a row is bit i % 8 of byte
i / 8, code k is bits k*b .. k*b+b-1), not with the converter's unpacker; the RTN
scales and offsets are recomputed here from the spec; the original weights come from
the checkpoints (safetensors read by torch) or from gguf-py's dequantizer.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType

from test_convert import config as hf_config, fields, hf_weights

from minicpm_edge.convert import ConvertError, UnknownOutTypeError, convert, parse_out_type
from minicpm_edge.convert import lowbit

REPO = Path(__file__).resolve().parents[1]
BITS = (1, 2, 3, 4)
GROUPS = (32, 64, 128)
ALL_TYPES = [f"w{b}g{g}{s}" for b in BITS for g in GROUPS for s in ("", "s")]
KEY = "minicpm_edge.lowbit."


# ---- the spec, written out independently of the converter ----------------------------------
def spec_type(name: str) -> tuple[int, int, bool]:
    body = name.rstrip("s")
    bits, group = body[1:].split("g")
    return int(bits), int(group), name.endswith("s")


def spec_unpack(rows: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [M, n] bit strings -> codes [M, n*8/bits], bit by bit as FORMAT.md defines them."""
    n_codes = rows.shape[1] * 8 // bits
    pos = np.arange(n_codes)[:, None] * bits + np.arange(bits)[None, :]      # string bit of code bit j
    bit = (rows[:, pos // 8] >> (pos % 8).astype(np.uint8)) & 1              # [M, K, bits]
    return (bit.astype(np.int64) << np.arange(bits)).sum(axis=-1)


def spec_params(w: np.ndarray, bits: int, group: int, symmetric: bool):
    """RTN scale d and offset m per group, rounded to binary16, and the unrounded code
    positions (w - m)/d (symmetric: w/d + (2^b-1)/2) they give."""
    levels = 2 ** bits - 1
    g = w.astype(np.float32).reshape(w.shape[0], -1, group)
    if symmetric:
        d = (np.abs(g).max(-1) / np.float32(levels / 2)).astype(np.float16)
        m = None
        with np.errstate(divide="ignore", invalid="ignore"):
            x = g / d.astype(np.float32)[..., None] + np.float32(levels / 2)
    else:
        lo = g.min(-1)
        d = ((g.max(-1) - lo) / np.float32(levels)).astype(np.float16)
        m = lo.astype(np.float16)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (g - m.astype(np.float32)[..., None]) / d.astype(np.float32)[..., None]
    return d, m, x.reshape(w.shape)


def spec_dequant(codes: np.ndarray, d: np.ndarray, m, bits: int, group: int, symmetric: bool) -> np.ndarray:
    rows = codes.shape[0]
    q = codes.reshape(rows, -1, group).astype(np.float32)
    if symmetric:
        q = q - np.float32((2 ** bits - 1) / 2)
    w = q * d.astype(np.float32)[..., None]
    if m is not None:
        w = w + m.astype(np.float32)[..., None]
    return w.reshape(codes.shape)


def read_lowbit(ts: dict, name: str, bits: int, group: int, symmetric: bool):
    """(codes [M, K], d, m) of matrix ``name``, checking types and ggml shapes against FORMAT.md."""
    c = ts[name]
    assert c.tensor_type == Q.I8, name
    nbytes, rows = (int(x) for x in c.shape.tolist())
    cols = nbytes * 8 // bits
    assert nbytes * 8 == cols * bits and cols % group == 0
    s = ts[name + ".scale"]
    assert s.tensor_type == Q.F16 and s.shape.tolist() == [cols // group, rows], name
    d = np.asarray(s.data).reshape(rows, cols // group)
    m = None
    if symmetric:
        assert name + ".min" not in ts
    else:
        t = ts[name + ".min"]
        assert t.tensor_type == Q.F16 and t.shape.tolist() == [cols // group, rows], name
        m = np.asarray(t.data).reshape(rows, cols // group)
    codes = spec_unpack(np.asarray(c.data).view(np.uint8).reshape(rows, nbytes), bits)
    return codes, d, m


def check_rtn(w: np.ndarray, codes, d, m, typ: str, what: str) -> None:
    """The stored group parameters are the spec's, the codes its rounding, and every
    weight is within d/2 of the original plus the binary16 rounding of d and m."""
    bits, group, sym = spec_type(typ)
    levels = 2 ** bits - 1
    d_ref, m_ref, x = spec_params(w, bits, group, sym)
    np.testing.assert_array_equal(d, d_ref, err_msg=what)
    if not sym:
        np.testing.assert_array_equal(m, m_ref, err_msg=what)
    assert codes.min() >= 0 and codes.max() <= levels
    with np.errstate(invalid="ignore"):                        # x is inf/NaN where d = 0
        expect = np.clip(np.rint(x), 0, levels)
        tie = np.abs(np.abs(x - np.floor(x)) - 0.5) < 1e-4    # halfway cases may go either way
    expect[np.repeat(d_ref == 0, group, axis=1)] = 0
    assert np.all((codes == expect) | tie), what

    back = spec_dequant(codes, d, m, bits, group, sym)
    g = w.astype(np.float64).reshape(w.shape[0], -1, group)
    d64 = d.astype(np.float64)
    if sym:
        exact_d = np.abs(g).max(-1) / (levels / 2)
        m_slack = 0.0
    else:
        exact_d = (g.max(-1) - g.min(-1)) / levels
        m_slack = np.abs(m.astype(np.float64) - g.min(-1))
    tol = d64 / 2 + m_slack + levels * np.abs(d64 - exact_d) + 1e-6 * np.abs(g).max(-1) + 1e-30
    err = np.abs(back.astype(np.float64).reshape(g.shape) - g).max(-1)
    assert np.all(err <= tol), f"{what}: error {err.max()} beyond the bound"
    # and the bound is not vacuous: the typical error is well under d/2
    assert np.mean(np.abs(back - w)) < 0.5 * np.mean(d64) + 1e-12, what


# ---- checkpoints ----------------------------------------------------------------------------
def permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """HF half-split RoPE rows -> llama.cpp's interleaved order (FORMAT.md: row a*(d/2)+b -> 2b+a)."""
    rows = w.shape[0]
    half = rows // n_heads // 2
    out = np.empty_like(w)
    for h in range(n_heads):
        for a in range(2):
            for b in range(half):
                out[h * 2 * half + 2 * b + a] = w[h * 2 * half + a * half + b]
    return out


HF_TO_GGUF = {
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_weights(d: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors under their GGUF names, Q/K rows in GGUF order."""
    cfg = hf_config(d)
    out = {}
    for name, w in hf_weights(d).items():
        if name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue
        if name == "model.embed_tokens.weight":
            g = "token_embd.weight"
        elif name == "model.norm.weight":
            g = "output_norm.weight"
        elif name == "lm_head.weight":
            g = "output.weight"
        else:
            _, _, layer, rest = name.split(".", 3)
            g = f"blk.{layer}.{HF_TO_GGUF[rest]}"
            if rest == "self_attn.q_proj.weight":
                w = permute(w, cfg["num_attention_heads"])
            elif rest == "self_attn.k_proj.weight":
                w = permute(w, cfg["num_key_value_heads"])
        out[g] = w
    return out


@pytest.fixture(scope="module")
def converted(tiny_models, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("lowbit")
    cache: dict[tuple[str, str], Path] = {}

    def get(model: str, typ: str) -> Path:
        if (model, typ) not in cache:
            cache[model, typ] = convert(tiny_models / model, out_dir / f"{model}-{typ}.gguf", typ, progress=False)
        return cache[model, typ]
    return get


def expected_kind(name: str, shape: tuple[int, ...], typ: str):
    """FORMAT.md's per-tensor policy, from the spec: the low-bit type name, or a ggml type."""
    _, group, _ = spec_type(typ)
    if len(shape) == 1 or name.endswith("_norm.weight"):
        return Q.F32
    if name.startswith("blk.") and shape[-1] % group == 0:
        return typ
    return Q.Q8_0 if shape[-1] % 32 == 0 else Q.F16


def check_file(path: Path | GGUFReader, weights: dict[str, np.ndarray], typ: str) -> dict[str, object]:
    """Every tensor of ``path`` against ``weights`` (GGUF names, numpy order); returns name -> kind."""
    bits, group, sym = spec_type(typ)
    r = path if isinstance(path, GGUFReader) else GGUFReader(path)
    ts = {t.name: t for t in r.tensors}
    f = fields(r)
    kinds = {}
    for name, w in weights.items():
        kind = expected_kind(name, w.shape, typ)
        kinds[name] = kind
        if kind == typ:
            codes, d, m = read_lowbit(ts, name, bits, group, sym)
            assert codes.shape == w.shape, name
            check_rtn(w, codes, d, m, typ, name)
            assert f[KEY + name] == [bits, group, 0 if sym else 1]
            assert r.fields[KEY + name].types == [GGUFValueType.ARRAY, GGUFValueType.UINT32]
        else:
            t = ts[name]
            assert t.tensor_type == kind, name
            assert tuple(t.shape.tolist()) == tuple(reversed(w.shape)), name
            got = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(w.shape)
            want = gguf.quants.dequantize(gguf.quants.quantize(w.astype(np.float32), kind), kind).reshape(w.shape)
            np.testing.assert_array_equal(got, want, err_msg=name)
            assert KEY + name not in f
    # nothing else: every tensor of the file belongs to one of the weights
    parts = {n + sfx for n, k in kinds.items() if k == typ for sfx in ("", ".scale", ".min")}
    assert set(ts) <= set(weights) | parts | {n for n in ts if n.startswith("rope_")}
    assert {k[len(KEY):] for k in f if k.startswith(KEY)} == {n for n, k in kinds.items() if k == typ}
    assert f["minicpm_edge.format_version"] == 1
    assert r.fields["minicpm_edge.format_version"].types == [GGUFValueType.UINT32]
    assert f["minicpm_edge.file_type"] == typ
    assert "general.file_type" not in f
    return kinds


# ---- type names -----------------------------------------------------------------------------
def test_type_names():
    for name in ALL_TYPES:
        t = parse_out_type(name)
        assert t.name == name and t.file_type is None
        bits, group, sym = spec_type(name)
        assert (t.lowbit.bits, t.lowbit.group, t.lowbit.symmetric) == (bits, group, sym)
    assert parse_out_type(" W2G64 ").name == "w2g64"
    assert parse_out_type("q4_0").lowbit is None


@pytest.mark.parametrize("bad", ["w5g64", "w0g64", "w2g16", "w2g256", "w2g64x", "w2g64ss", "w2", "g64",
                                 "int2", "w2 g64", "", "q3_k"])
def test_bad_type_names(bad, tiny_models, tmp_path):
    with pytest.raises(UnknownOutTypeError, match=r"w\{b\}g\{G\}"):
        parse_out_type(bad)
    with pytest.raises(UnknownOutTypeError):
        convert(tiny_models / "llama", tmp_path / "o.gguf", bad, progress=False)
    assert not list(tmp_path.iterdir())


# ---- bit packing ----------------------------------------------------------------------------
def naive_pack(codes: np.ndarray, bits: int) -> np.ndarray:
    out = np.zeros((codes.shape[0], codes.shape[1] * bits // 8), np.uint8)
    for r in range(codes.shape[0]):
        for k in range(codes.shape[1]):
            for j in range(bits):
                i = k * bits + j
                out[r, i // 8] |= ((int(codes[r, k]) >> j) & 1) << (i % 8)
    return out


@pytest.mark.parametrize("bits", BITS)
def test_bit_packing_against_a_per_bit_loop(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2 ** bits, size=(5, 96), dtype=np.uint8)
    packed = lowbit.pack_codes(codes, bits)
    np.testing.assert_array_equal(packed, naive_pack(codes, bits))
    np.testing.assert_array_equal(lowbit.unpack_codes(packed, bits), codes)
    np.testing.assert_array_equal(spec_unpack(packed, bits), codes)


def test_bit_packing_b3_straddles_bytes():
    # code 2 of a 3-bit row occupies bits 6..8: the last two bits of byte 0 and bit 0 of byte 1
    codes = np.zeros((1, 8), np.uint8)
    codes[0, 2] = 0b101
    assert lowbit.pack_codes(codes, 3).tolist() == [[0b01000000, 0b00000001, 0]]


# ---- RTN on single matrices -----------------------------------------------------------------
@pytest.mark.parametrize("typ", ALL_TYPES)
def test_rtn_single_matrix(typ):
    bits, group, sym = spec_type(typ)
    rng = np.random.default_rng(len(typ) * 31 + bits * 7 + group)
    w = (rng.standard_normal((24, 256)) * rng.uniform(0.01, 3.0, size=(24, 1))).astype(np.float32)
    w[3, :group] = 0.25           # constant group: asymmetric d = 0 -> codes 0, w = m
    w[4, :group] = 0.0            # all zero: d = 0 either way
    w[5, group:2 * group] += 40   # group far from zero: m's binary16 rounding matters
    t = parse_out_type(typ).lowbit
    parts = lowbit.pack(*lowbit.quantize_rtn(w, t, "tensor"), t)
    assert len(parts) == (2 if sym else 3)
    codes = spec_unpack(np.asarray(parts[0]).view(np.uint8), bits)
    d = np.asarray(parts[1])
    m = None if sym else np.asarray(parts[2])
    assert d.dtype == np.float16 and (m is None or m.dtype == np.float16)
    check_rtn(w, codes, d, m, typ, typ)
    assert np.all(codes[4, :group] == 0) and d[4, 0] == 0
    if not sym:
        assert np.all(codes[3, :group] == 0) and d[3, 0] == 0 and m[3, 0] == np.float16(0.25)


def test_rtn_rejects_non_finite():
    t = parse_out_type("w2g32").lowbit
    w = np.ones((2, 64), np.float32)
    w[1, 5] = np.nan
    with pytest.raises(ConvertError, match="finite"):
        lowbit.quantize_rtn(w, t, "x")
    w[1, 5] = 1e9   # range beyond binary16 scales
    with pytest.raises(ConvertError):
        lowbit.quantize_rtn(w, t, "x")


# ---- HF checkpoints -------------------------------------------------------------------------
@pytest.mark.parametrize("typ", ALL_TYPES)
def test_minicpm4_every_type(tiny_models, converted, typ):
    """hidden 128, ffn 256: every decoder matrix takes every group size."""
    kinds = check_file(converted("minicpm4", typ), gguf_weights(tiny_models / "minicpm4"), typ)
    assert kinds["token_embd.weight"] == Q.Q8_0 and kinds["output.weight"] == Q.Q8_0
    assert kinds["blk.1.ffn_down.weight"] == typ and kinds["blk.0.attn_q.weight"] == typ
    assert sum(k == typ for k in kinds.values()) == 14


@pytest.mark.parametrize("model,typ", [("llama", "w2g64"), ("llama", "w4g128"), ("llama-tied", "w3g32s"),
                                       ("minicpm", "w3g32"), ("minicpm", "w1g64s")])
def test_policy_and_fallbacks(tiny_models, converted, model, typ):
    """llama: hidden 64, ffn 128, so g128 only fits ffn_down (the rest is Q8_0);
    minicpm: ffn 144, so ffn_down is F16 (144 is not a multiple of 32); BF16 source."""
    kinds = check_file(converted(model, typ), gguf_weights(tiny_models / model), typ)
    _, group, _ = spec_type(typ)
    if model == "llama" and group == 128:
        assert kinds["blk.0.attn_q.weight"] == Q.Q8_0 and kinds["blk.0.ffn_up.weight"] == Q.Q8_0
        assert kinds["blk.0.ffn_down.weight"] == typ
    if model == "minicpm":
        assert kinds["blk.0.ffn_down.weight"] == Q.F16 and kinds["blk.0.ffn_up.weight"] == typ
    if model == "llama-tied":
        assert "output.weight" not in kinds
        rope = next(t for t in GGUFReader(converted(model, typ)).tensors if t.name == "rope_freqs.weight")
        assert rope.tensor_type == Q.F32


def test_metadata_is_the_f16_files_but_for_the_type_keys(converted):
    a, b = fields(GGUFReader(converted("minicpm4", "f16"))), fields(GGUFReader(converted("minicpm4", "w2g64")))
    assert a.pop("general.file_type") == 1
    own = {k: b.pop(k) for k in list(b) if k.startswith(("minicpm_edge.lowbit.", "minicpm_edge.format_version",
                                                          "minicpm_edge.file_type"))}
    assert a == b
    assert len(own) == 2 + 14
    assert b["general.quantization_version"] == 2


def test_default_output_name(tiny_models, tmp_path):
    out = convert(tiny_models / "llama", tmp_path, "w2g64", progress=False)
    assert out.name == "llama-w2g64.gguf"
    again = convert(out, tmp_path, "w4g64s", progress=False)   # no stacked type suffixes
    assert again.name == "llama-w4g64s.gguf"


# ---- GGUF sources ---------------------------------------------------------------------------
def gguf_values(path: Path | GGUFReader) -> dict[str, np.ndarray]:
    """Float values of every ggml-typed tensor of a GGUF, by gguf-py's dequantizer."""
    out = {}
    for t in (path if isinstance(path, GGUFReader) else GGUFReader(path)).tensors:
        shape = tuple(reversed(t.shape.tolist()))
        out[t.name] = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
    return out


def test_retype_f16_gguf_to_lowbit(converted, tmp_path):
    src = converted("minicpm4", "f16")
    out = convert(src, tmp_path / "m.gguf", "w3g64", progress=False)
    values = {k: v for k, v in gguf_values(src).items() if not k.startswith("rope_")}
    check_file(out, values, "w3g64")
    a, b = fields(GGUFReader(src)), fields(GGUFReader(out))
    assert a.pop("general.file_type") == 1                   # stale: dropped, not copied
    for k, v in a.items():
        assert b[k] == v, k


def lowbit_values(path: Path) -> dict[str, np.ndarray]:
    """Float values of every matrix of a low-bit file, decoded here from the spec."""
    r = GGUFReader(path)
    ts = {t.name: t for t in r.tensors}
    f = fields(r)
    out, parts = {}, set()
    for key, desc in f.items():
        if key.startswith(KEY):
            name = key[len(KEY):]
            bits, group, has_min = desc
            codes, d, m = read_lowbit(ts, name, bits, group, not has_min)
            out[name] = spec_dequant(codes, d, m, bits, group, not has_min)
            parts |= {name + ".scale", name + ".min"}
    for name, t in ts.items():
        if name not in out and name not in parts:
            shape = tuple(reversed(t.shape.tolist()))
            out[name] = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
    return out


def test_retype_lowbit_gguf(converted, tmp_path):
    src = converted("minicpm4", "w4g64")
    values = lowbit_values(src)
    # to a ggml type: the low-bit matrices are decoded, the project keys dropped
    q8 = convert(src, tmp_path / "q8.gguf", "q8_0", progress=False)
    r = GGUFReader(q8)
    f = fields(r)
    assert f["general.file_type"] == 7
    assert not any(k.startswith("minicpm_edge.lowbit.") or k in ("minicpm_edge.format_version",
                                                                  "minicpm_edge.file_type") for k in f)
    assert f["minicpm_edge.arch_variant"] == "minicpm4"      # other project keys are kept
    ts = {t.name: t for t in r.tensors}
    assert set(ts) == set(values)
    for name, w in values.items():
        t = ts[name]
        if w.ndim == 1:
            assert t.tensor_type == Q.F32
            np.testing.assert_array_equal(np.asarray(t.data), w)
        else:
            assert t.tensor_type == Q.Q8_0
            np.testing.assert_array_equal(np.asarray(t.data).view(np.uint8).reshape(-1),
                                          gguf.quants.quantize(w.astype(np.float32), Q.Q8_0).reshape(-1),
                                          err_msg=name)
    # to another low-bit type: re-quantized from the decoded values
    other = convert(src, tmp_path / "w2.gguf", "w2g32s", progress=False)
    check_file(other, {k: v for k, v in values.items() if not k.startswith("rope_")}, "w2g32s")
    # to the same type: every tensor copied byte for byte
    same = convert(src, tmp_path / "same.gguf", "w4g64", progress=False)
    a, b = GGUFReader(src), GGUFReader(same)
    assert [t.name for t in a.tensors] == [t.name for t in b.tensors]
    for t, u in zip(a.tensors, b.tensors):
        assert t.tensor_type == u.tensor_type
        assert np.asarray(t.data).tobytes() == np.asarray(u.data).tobytes(), t.name
    assert fields(a) == fields(b)


def test_retype_rejects_broken_descriptors(converted, tmp_path):
    from gguf import GGUFWriter
    src = GGUFReader(converted("llama", "w2g64"))

    def rewrite(path: Path, drop: str = "", desc=None):
        w = GGUFWriter(path, "llama")
        for k, field in src.fields.items():
            if k.startswith("GGUF.") or k in ("general.architecture", "general.alignment"):
                continue
            if k == KEY + "blk.0.attn_q.weight" and desc is not None:
                w.add_key_value(k, desc, GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT32)
                continue
            if field.types[0] == GGUFValueType.ARRAY:
                w.add_key_value(k, field.contents(), field.types[0], sub_type=field.types[-1])
            else:
                w.add_key_value(k, field.contents(), field.types[0])
        for t in src.tensors:
            if t.name != drop:
                w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    for i, (drop, desc, msg) in enumerate([("blk.0.attn_q.weight.min", None, "min"),
                                           ("blk.0.attn_q.weight", None, "missing"),
                                           ("", [2, 48, 1], "descriptor"),
                                           ("", [3, 64, 1], "w3g64")]):
        bad = rewrite(tmp_path / f"bad{i}.gguf", drop, desc)
        with pytest.raises(ConvertError, match=msg):
            convert(bad, tmp_path / f"out{i}.gguf", "q8_0", progress=False)
        assert not (tmp_path / f"out{i}.gguf").exists() and not (tmp_path / f"out{i}.gguf.part").exists()


@pytest.mark.slow
def test_smollm2_q4_1_to_w4g64(tmp_path):
    """The default model (Q4_1, Q8_0 embedding, tied) re-typed to w4g64: every matrix
    (K = 576 and 1536, both multiples of 64) is the RTN of gguf-py's decoding."""
    spec = importlib.util.spec_from_file_location("make_tiny_models", REPO / "tools" / "make_tiny_models.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src = tool.find_smollm2_gguf()
    out = convert(src, tmp_path / "smol.gguf", "w4g64", progress=False)
    # (GGUFReader takes seconds on a 49k-token vocabulary: each file is opened once)
    src_r, out_r = GGUFReader(src), GGUFReader(out)
    kinds = check_file(out_r, gguf_values(src_r), "w4g64")
    assert sum(k == "w4g64" for k in kinds.values()) == 30 * 7
    assert "output.weight" not in kinds and kinds["token_embd.weight"] == Q.Q8_0
    src_t = {t.name: t for t in src_r.tensors}
    out_t = {t.name: t for t in out_r.tensors}
    assert np.asarray(src_t["token_embd.weight"].data).tobytes() == \
        np.asarray(out_t["token_embd.weight"].data).tobytes()
    assert "general.file_type" in src_r.fields


# ---- command line, info and bench ------------------------------------------------------------
def test_cli_convert(tiny_models, tmp_path, capsys):
    from minicpm_edge.cli import main
    out = tmp_path / "c.gguf"
    assert main(["convert", str(tiny_models / "minicpm4"), "-o", str(out), "--type", "w2g64", "-q"]) == 0
    check_file(out, gguf_weights(tiny_models / "minicpm4"), "w2g64")
    with pytest.raises(SystemExit) as e:
        main(["convert", str(tiny_models / "minicpm4"), "-o", str(tmp_path / "x.gguf"), "--type", "w2g65"])
    assert e.value.code == 2
    assert "w{b}g{G}" in capsys.readouterr().err
    assert not (tmp_path / "x.gguf").exists()
    with pytest.raises(SystemExit) as e:
        main(["convert", str(tiny_models / "minicpm4"), "-o", str(tmp_path / "x.gguf"), "--type", "w2g64",
              "--output-tensor-type", "q5_9"])
    assert e.value.code == 2 and "q5_9" in capsys.readouterr().err
    assert not (tmp_path / "x.gguf").exists()


@pytest.mark.parametrize("model,typ,head", [("llama", "w2g64", "q4_0"), ("llama", "w2g64", "w4g32"),
                                            ("llama-tied", "w2g64", "w4g64s"), ("llama", "q8_0", "w2g32")])
def test_output_tensor_type(tiny_models, tmp_path, model, typ, head):
    """--output-tensor-type sets the head's type only (output.weight, or token_embd when
    tied, as llama-quantize does); the file's other keys follow --type."""
    from minicpm_edge.cli import main
    out = tmp_path / "h.gguf"
    assert main(["convert", str(tiny_models / model), "-o", str(out), "--type", typ,
                 "--output-tensor-type", head, "-q"]) == 0
    r = GGUFReader(out)
    f = fields(r)
    kinds = {t.name: t.tensor_type for t in r.tensors}
    head_name = "token_embd.weight" if model.endswith("-tied") else "output.weight"
    if head.startswith("w"):
        bits, group, sym = spec_type(head)
        assert f[KEY + head_name] == [bits, group, 0 if sym else 1]
        assert kinds[head_name] == Q.I8
    else:
        assert KEY + head_name not in f and kinds[head_name] == Q.Q4_0
    if not model.endswith("-tied"):
        assert kinds["token_embd.weight"] == Q.Q8_0
    if typ == "q8_0":  # a ggml file with a low-bit head keeps its general.file_type
        assert f["general.file_type"] == 7 and kinds["blk.0.attn_q.weight"] == Q.Q8_0
    else:
        assert f[KEY + "blk.0.attn_q.weight"] == [2, 64, 1] and "general.file_type" not in f


def test_info_groups_lowbit_matrices(converted, capsys):
    from minicpm_edge.cli import main
    path = converted("minicpm4", "w2g64s")
    assert main(["info", "-m", str(path)]) == 0
    text = capsys.readouterr().out
    row = next(ln.split() for ln in text.splitlines() if ln.split()[:1] == ["w2g64s"])
    r = GGUFReader(path)
    matrices = {k[len(KEY):] for k in fields(r) if k.startswith(KEY)}
    parts = {n + sfx for n in matrices for sfx in ("", ".scale")}
    assert row[1:3] == [str(len(matrices)), "matrices"]
    assert float(row[3]) == pytest.approx(sum(int(t.n_bytes) for t in r.tensors if t.name in parts) / 2**20,
                                          abs=0.01)
    assert f"minicpm_edge.lowbit.* = {len(matrices)} matrices: {len(matrices)} w2g64s" in text
    assert "minicpm_edge.lowbit.blk" not in text       # descriptors are summarised, not listed


def test_bench_description_of_a_lowbit_file(tiny_models, converted):
    from minicpm_edge.bench import describe_model
    path = converted("minicpm4", "w3g128")
    info = describe_model(path)
    assert info.model_type.endswith(" W3G128")
    r = GGUFReader(path)
    total = sum(int(t.n_bytes) for t in r.tensors)
    embd = next(t for t in r.tensors if t.name == "token_embd.weight")
    assert embd.tensor_type == Q.Q8_0
    # untied: one embedding row, every other tensor in full (codes, scales and mins included)
    assert info.bytes_per_token == total - int(embd.n_bytes) + int(embd.n_bytes) // int(embd.shape[1])
    assert info.size_bytes == total
    # parameters: the checkpoint's weights (a low-bit matrix counts M x K) plus the computed rope factors
    rope = sum(int(t.n_elements) for t in r.tensors if t.name.startswith("rope_"))
    assert info.n_params == sum(w.size for w in gguf_weights(tiny_models / "minicpm4").values()) + rope


# ---- random models --------------------------------------------------------------------------
def _make_random(tmp_path: Path, typ: str, *extra: str) -> Path:
    spec = importlib.util.spec_from_file_location("make_random_model", REPO / "tools" / "make_random_model.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / f"r-{typ}.gguf"
    argv = [str(out), "--type", typ, "-q", "--hidden", "128", "--ffn", "256", "--layers", "2", "--heads", "4",
            "--kv-heads", "2", "--vocab", "384", *extra]
    assert tool.main(argv) == 0
    return out


@pytest.mark.parametrize("typ", ["w2g64", "w3g128s", "w1g32"])
def test_random_model_lowbit(tmp_path, typ):
    bits, group, sym = spec_type(typ)
    out = _make_random(tmp_path, typ)
    r = GGUFReader(out)
    f = fields(r)
    ts = {t.name: t for t in r.tensors}
    assert f["minicpm_edge.file_type"] == typ and f["minicpm_edge.format_version"] == 1
    assert "general.file_type" not in f
    matrices = [k[len(KEY):] for k in f if k.startswith(KEY)]
    assert len(matrices) == 2 * 7
    assert ts["token_embd.weight"].tensor_type == Q.Q8_0 and ts["output.weight"].tensor_type == Q.Q8_0
    for name in matrices:
        assert f[KEY + name] == [bits, group, 0 if sym else 1]
        codes, d, m = read_lowbit(ts, name, bits, group, sym)
        w = spec_dequant(codes, d, m, bits, group, sym)
        assert np.isfinite(w).all()
        # random codes and scales chosen so each weight's sd is about 1/sqrt(fan_in)
        assert 0.5 < w.std() * np.sqrt(w.shape[1]) < 1.6, name
        assert abs(w.mean()) < 0.2 * w.std(), name
    # the same command writes the same bytes
    (tmp_path / "again").mkdir()
    assert _make_random(tmp_path / "again", typ).read_bytes() == out.read_bytes()


def test_random_model_head_type(tmp_path):
    f = fields(GGUFReader(_make_random(tmp_path, "w2g64", "--output-tensor-type", "w4g32")))
    assert f[KEY + "output.weight"] == [4, 32, 1] and f[KEY + "blk.0.ffn_up.weight"] == [2, 64, 1]
    assert KEY + "token_embd.weight" not in f


def test_random_model_rejects_unknown_types(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_random_model", REPO / "tools" / "make_random_model.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for bad in ("w2g48", "q4_1"):
        with pytest.raises(SystemExit):
            tool.main([str(tmp_path / "x.gguf"), "--type", bad, "-q"])
    assert not (tmp_path / "x.gguf").exists()
