"""Mixed precision under a size budget (convert --target-size / --bpw).

The allocation is checked against exhaustive search; the converted files against their
budget, the gguf package's reading of their types, and transformers' logits."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader

from conftest import WIKI_TEST, WIKI_VALID
from minicpm_edge import Model
from minicpm_edge.convert import ConvertError, convert
from minicpm_edge.convert.budget import parse_size, solve
from model_oracles import logit_rms_errors

KEY = "minicpm_edge.lowbit."


def exhaustive(sizes, errors, budget):
    best = None
    for picks in itertools.product(*(range(len(s)) for s in sizes)):
        if sum(s[j] for s, j in zip(sizes, picks)) <= budget:
            err = sum(e[j] for e, j in zip(errors, picks))
            best = err if best is None else min(best, err)
    return best


def test_solve_is_the_exhaustive_optimum():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 6))
        sizes = [list(rng.integers(1, 40, size=int(rng.integers(1, 5)))) for _ in range(n)]
        errors = [list(rng.exponential(1.0, size=len(s))) for s in sizes]
        lo, hi = sum(min(s) for s in sizes), sum(max(s) for s in sizes)
        budget = int(rng.integers(lo, hi + 1))
        picks = solve(sizes, errors, budget)
        assert sum(s[j] for s, j in zip(sizes, picks)) <= budget
        got = sum(e[j] for e, j in zip(errors, picks))
        assert got == pytest.approx(exhaustive(sizes, errors, budget), rel=1e-12, abs=1e-12)


def test_solve_rounds_large_sizes_up():
    """Budgets beyond the DP's resolution stay within budget and near the optimum."""
    rng = np.random.default_rng(3)
    sizes = [list(rng.integers(10_000, 5_000_000, size=4)) for _ in range(6)]
    errors = [list(rng.exponential(1.0, size=4)) for _ in range(6)]
    budget = (sum(min(s) for s in sizes) + sum(max(s) for s in sizes)) // 2
    picks = solve(sizes, errors, budget)
    assert sum(s[j] for s, j in zip(sizes, picks)) <= budget
    # never worse than the exhaustive optimum under a budget shrunk by one rounding step per item
    step = -(-budget // (1 << 16))
    assert sum(e[j] for e, j in zip(errors, picks)) <= exhaustive(sizes, errors, budget - 6 * step) + 1e-12


def test_solve_refuses_a_budget_below_the_smallest_choice():
    with pytest.raises(ConvertError, match="budget"):
        solve([[5, 9], [4]], [[1.0, 0.5], [1.0]], 8)


@pytest.mark.parametrize("text,value", [("88MiB", 88 << 20), ("88M", 88 << 20), ("88 mib", 88 << 20),
                                        ("90MB", 90_000_000), ("1.5G", 3 << 29), ("512k", 512 << 10),
                                        ("1000", 1000), ("2KB", 2000), (4096, 4096)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "abc", "-5M", "0", "5XB", "M", "1e400G", "nan"])
def test_parse_size_refuses(text):
    with pytest.raises(ConvertError, match="size"):
        parse_size(text)


def _types(path):
    """GGUF name -> low-bit type name (from the descriptor) or ggml type, by the gguf package."""
    r = GGUFReader(path)
    out = {t.name: t.tensor_type for t in r.tensors}
    for key, field in r.fields.items():
        if key.startswith(KEY):
            b, g, has_min = (int(field.parts[i][0]) for i in field.data)
            out[key[len(KEY):]] = f"w{b}g{g}" + ("" if has_min else "s")
    return out


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("calib") / "calib.txt"
    p.write_bytes(WIKI_VALID.read_bytes()[:60000])
    return p


@pytest.mark.parametrize("method", ["rtn", "gptq"])
def test_target_size_file(tiny_models, tmp_path, calib_file, method):
    """A target between the uniform w2g64 and w4g64 files: the file fits it, mixes types,
    and its logits are closer to transformers' than the uniform w2g64 file's."""
    hf = tiny_models / "llama"
    cal = {} if method == "rtn" else dict(calib=calib_file, calib_windows=8, calib_ctx=128)
    low = convert(hf, tmp_path / "w2.gguf", "w2g64", progress=False, method=method, **cal)
    high = convert(hf, tmp_path / "w4.gguf", "w4g64", progress=False, method=method, **cal)
    target = (low.stat().st_size + high.stat().st_size) // 2
    mixed = convert(hf, tmp_path / "mix.gguf", "w2g64", progress=False, method=method, target_size=target, **cal)
    assert low.stat().st_size < mixed.stat().st_size <= target
    types = _types(mixed)
    matrices = {n: t for n, t in types.items() if n.startswith("blk.") and n.count(".") == 3
                and not n.endswith((".scale", ".min", "_norm.weight"))}
    assert len(matrices) == 14 and len(set(matrices.values())) >= 2, matrices

    e_low, e_mixed = logit_rms_errors(hf, [low, mixed], WIKI_TEST.read_bytes()[:4000].decode("utf-8", "replace"))
    print(f"{method}: logit RMS error vs transformers, w2g64 {e_low:.4f}, mixed at {target} bytes {e_mixed:.4f}")
    assert e_mixed < e_low


def test_bpw_budget(tiny_models, tmp_path):
    """--bpw counts all tensor data over all weights; a generous one gives every matrix
    the ladder's top (q8_0, and f16 for the tied head), a tight one mostly its bottom."""
    hf = tiny_models / "llama-tied"
    top = convert(hf, tmp_path / "top.gguf", "w4g64", progress=False, bpw=16)
    r = GGUFReader(top)
    n = sum(int(np.prod(t.shape)) for t in r.tensors)   # no low-bit tensors: shapes are the weights'
    types = _types(top)
    layer = {t for name, t in types.items() if name.startswith("blk.") and name.endswith(".weight")
             and not name.endswith("_norm.weight")}
    assert layer == {Q.Q8_0} and types["token_embd.weight"] == Q.F16
    assert 8 * sum(int(t.n_bytes) for t in r.tensors) <= 16 * n

    bottom = convert(hf, tmp_path / "bottom.gguf", "w4g64", progress=False, bpw=3.0)
    assert 8 * sum(int(t.n_bytes) for t in GGUFReader(bottom).tensors) <= 3.0 * n
    assert "w2g64" in set(_types(bottom).values())


def test_budget_refusals(tiny_models, tmp_path, capsys):
    hf = tiny_models / "llama"
    with pytest.raises(ConvertError, match="smallest file"):
        convert(hf, tmp_path / "a.gguf", "w2g64", progress=False, target_size="10KiB")
    with pytest.raises(ConvertError, match="low-bit"):
        convert(hf, tmp_path / "b.gguf", "q4_0", progress=False, target_size="1MiB")
    with pytest.raises(ConvertError, match="not both"):
        convert(hf, tmp_path / "c.gguf", "w2g64", progress=False, target_size="1MiB", bpw=4)
    with pytest.raises(ConvertError, match="bits per weight"):
        convert(hf, tmp_path / "d.gguf", "w2g64", progress=False, bpw=0.5)
    from minicpm_edge.cli import main
    assert main(["convert", str(hf), "-o", str(tmp_path / "e.gguf"), "--type", "w2g64", "--target-size", "lots",
                 "-q"]) != 0
    assert "bad size" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir()]   # nothing written, no temporary left


def test_cli_reports_the_types(tiny_models, tmp_path, capsys):
    from minicpm_edge.cli import main
    out = tmp_path / "m.gguf"
    assert main(["convert", str(tiny_models / "llama"), "-o", str(out), "--type", "w4g64", "--bpw", "16", "-q"]) == 0
    assert "types: q8_0 x14; head output.weight f16" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", [
    {"blk.0.attn_q.weight": "w4g64", "blk.0.attn_k.weight": "w2g64", "blk.0.attn_v.weight": "w3g64"},
    {"blk.1.attn_q.weight": "w4g32", "blk.1.attn_k.weight": "w4g64s", "blk.1.attn_v.weight": "q8_0"},
    {"blk.0.ffn_gate.weight": "w2g64", "blk.0.ffn_up.weight": "w4g32", "blk.1.ffn_down.weight": "q8_0"},
], ids=["qkv-bits", "qkv-groups-and-q8_0", "ffn"])
def test_mixed_types_in_one_layer(tiny_models, tmp_path, recipe):
    """Matrices that share an input but not a type (as a budget makes them) give, through
    the int8 table-lookup kernels, the logits of the exact dequantize-then-f32 path, in
    prefill and in decode. (A fused call once read every matrix with the first one's format.)"""
    from dataclasses import replace

    from minicpm_edge.convert import parse_out_type
    from minicpm_edge.convert.budget import _choice
    from minicpm_edge.convert.gguf_source import retype_gguf
    f16 = convert(tiny_models / "llama", tmp_path / "f16.gguf", "f16", progress=False)
    kind = replace(parse_out_type("w4g64"), recipe=tuple((n, _choice(t)) for n, t in recipe.items()))
    path = retype_gguf(f16, tmp_path / "mix.gguf", kind, progress=False)
    types = _types(path)
    for name, t in recipe.items():
        assert types[name] == (Q.Q8_0 if t == "q8_0" else t)
    got = {}
    for int8 in (True, False):
        m = Model(str(path), n_ctx=256, n_threads=2, int8_activations=int8)
        ids = m.tokenize(WIKI_TEST.read_bytes()[:4000].decode("utf-8", "replace"))[:100]
        prefill = m.logits(ids)
        m.reset()
        m.logits(ids[:90])
        decode = np.stack([m.logits([t])[-1] for t in ids[90:]])
        got[int8] = (prefill, decode)
    for fast, exact in zip(got[True], got[False]):
        rel = np.sqrt(np.mean((fast - exact) ** 2) / np.mean(exact ** 2))
        assert rel < 0.03, rel
