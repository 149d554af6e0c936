"""`minicpm-edge bench` and tools/make_random_model.py.

Oracles: the `gguf` package's reader (tensor names, shapes, types, byte sizes,
dequantized values), llama.cpp through llama-cpp-python (loads and evaluates the
random files; same tokenization and close logits), and the wall clock around the
bench command (its reported times must fit inside it)."""
from __future__ import annotations

import importlib.util
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, LlamaFileType
from gguf.quants import dequantize

from minicpm_edge import Model
from minicpm_edge.cli import main as cli_main
from model_oracles import llama_cpp_logits

REPO = Path(__file__).resolve().parents[1]
TINY = dict(hidden=64, ffn=128, layers=2, heads=4, kv_heads=2, vocab=384)
LLAMA_BENCH_FIELDS = ("cpu_info", "model_filename", "model_type", "model_size", "model_n_params", "n_batch",
                      "n_threads", "n_prompt", "n_gen", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts",
                      "samples_ns", "samples_ts")
Q = GGMLQuantizationType


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_random_model", REPO / "tools" / "make_random_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_random_model = _load_tool()


def _make(path: Path, typ: str, **shape) -> Path:
    s = {**TINY, **shape}
    argv = [str(path), "--type", typ, "-q", "--hidden", str(s["hidden"]), "--ffn", str(s["ffn"]),
            "--layers", str(s["layers"]), "--heads", str(s["heads"]), "--kv-heads", str(s["kv_heads"]),
            "--vocab", str(s["vocab"])]
    assert make_random_model.main(argv) == 0
    return path


@pytest.fixture(scope="module")
def random_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("random-gguf")
    return {t: _make(out / f"tiny-{t}.gguf", t) for t in ("q4_0", "q8_0", "f16")}


# ---- make_random_model ---------------------------------------------------------------------
def _expected_tensors(hidden, ffn, layers, heads, kv_heads, vocab) -> dict[str, tuple[int, ...]]:
    """name -> ggml shape (ne0 first) of a llama model, from the architecture's definition."""
    hd = hidden // heads
    t = {"token_embd.weight": (hidden, vocab), "output_norm.weight": (hidden,), "output.weight": (hidden, vocab)}
    for i in range(layers):
        t.update({f"blk.{i}.attn_norm.weight": (hidden,), f"blk.{i}.ffn_norm.weight": (hidden,),
                  f"blk.{i}.attn_q.weight": (hidden, heads * hd), f"blk.{i}.attn_k.weight": (hidden, kv_heads * hd),
                  f"blk.{i}.attn_v.weight": (hidden, kv_heads * hd),
                  f"blk.{i}.attn_output.weight": (heads * hd, hidden),
                  f"blk.{i}.ffn_gate.weight": (hidden, ffn), f"blk.{i}.ffn_up.weight": (hidden, ffn),
                  f"blk.{i}.ffn_down.weight": (ffn, hidden)})
    return t


@pytest.mark.parametrize("typ,qtype,ftype", [("q4_0", Q.Q4_0, LlamaFileType.MOSTLY_Q4_0),
                                             ("q8_0", Q.Q8_0, LlamaFileType.MOSTLY_Q8_0),
                                             ("f16", Q.F16, LlamaFileType.MOSTLY_F16)])
def test_random_model_layout_read_by_gguf(random_models, typ, qtype, ftype):
    r = GGUFReader(str(random_models[typ]))
    expected = _expected_tensors(**TINY)
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(expected)
    for name, shape in expected.items():
        t = got[name]
        assert tuple(int(x) for x in t.shape) == shape, name
        assert t.tensor_type == (Q.F32 if len(shape) == 1 else qtype), name
    md = {k: f.contents() for k, f in r.fields.items()}
    assert md["general.architecture"] == "llama"
    assert md["general.file_type"] == int(ftype)
    assert md["llama.embedding_length"] == TINY["hidden"] and md["llama.block_count"] == TINY["layers"]
    assert md["llama.attention.head_count_kv"] == TINY["kv_heads"]
    assert len(md["tokenizer.ggml.tokens"]) == TINY["vocab"]


@pytest.mark.parametrize("typ", ["q4_0", "q8_0", "f16"])
def test_random_weights_are_finite_and_scaled(random_models, typ):
    """Dequantized by the gguf package: finite, standard deviation near
    1/sqrt(fan_in) (the scale the tool promises), no constant rows."""
    r = GGUFReader(str(random_models[typ]))
    for t in r.tensors:
        if len(t.shape) == 1:
            continue
        w = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
        fan_in = int(t.shape[0])
        assert np.isfinite(w).all(), t.name
        assert 0.5 < w.std() * np.sqrt(fan_in) < 2.0, (t.name, w.std())
        assert (w.reshape(-1, fan_in).std(axis=1) > 0).all(), t.name
        if t.tensor_type == Q.Q8_0:   # ggml's quantizer never writes -128
            raw = np.asarray(t.data).reshape(-1, 34)[:, 2:].view(np.int8)
            assert raw.min() >= -127


def test_random_model_is_seeded(tmp_path):
    a = _make(tmp_path / "a.gguf", "q4_0")
    b = _make(tmp_path / "b.gguf", "q4_0")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("typ", ["q4_0", "q8_0", "f16"])
def test_random_model_runs_in_ours_and_llama_cpp(random_models, typ):
    path = random_models[typ]
    ids = np.random.default_rng(7).integers(0, TINY["vocab"], 12).tolist()
    ref = llama_cpp_logits(path, ids)
    m = Model(str(path), n_ctx=64, n_threads=1)
    ours = m.logits(ids)
    assert ours.shape == ref.shape == (len(ids), TINY["vocab"])
    assert np.isfinite(ours).all() and np.isfinite(ref).all()
    # Random weights still give a real computation: both engines agree closely.
    corr = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
    assert corr > 0.99, corr
    # The synthetic vocabulary tokenizes the same way in both.
    from llama_cpp import Llama
    llm = Llama(model_path=str(path), n_ctx=64, verbose=False, vocab_only=True)
    text = "Hello world, the 3 quick foxes!"
    assert m.tokenize(text) == llm.tokenize(text.encode(), add_bos=False)
    llm.close()


def test_random_model_rejects_bad_shapes(tmp_path, capsys):
    out = str(tmp_path / "x.gguf")
    assert make_random_model.main([out, "--hidden", "48", "--heads", "4", "--kv-heads", "2", "-q"]) == 1
    assert "multiples of 32" in capsys.readouterr().err
    assert make_random_model.main([str(tmp_path / "x.gguf"), "--heads", "32", "--kv-heads", "5", "-q"]) == 1
    assert make_random_model.main([str(tmp_path / "x.gguf"), "--vocab", "100", "-q"]) == 1
    assert not (tmp_path / "x.gguf").exists()


# ---- bench ---------------------------------------------------------------------------------
def _bench_json(capsys, *argv) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    assert cli_main(["bench", *argv, "--json"]) == 0
    wall = time.perf_counter() - t0
    return json.loads(capsys.readouterr().out), wall


def test_bench_json_rows(random_models, capsys):
    path = random_models["q4_0"]
    rows, wall = _bench_json(capsys, "-m", str(path), "-t", "1,2", "-p", "8", "-n", "4", "-r", "2")
    assert [(r["n_threads"], r["n_prompt"], r["n_gen"]) for r in rows] == [(1, 8, 0), (1, 0, 4), (2, 8, 0), (2, 0, 4)]
    reader = GGUFReader(str(path))
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    size = sum(int(t.n_bytes) for t in reader.tensors)
    for r in rows:
        for k in LLAMA_BENCH_FIELDS:
            assert k in r, k
        assert r["model_filename"] == str(path)
        assert r["model_n_params"] == n_params and r["model_size"] == size
        assert r["model_type"].startswith("llama ") and r["model_type"].endswith(" Q4_0")
        assert len(r["samples_ns"]) == len(r["samples_ts"]) == 2
        n_tok = r["n_prompt"] + r["n_gen"]
        assert all(ns > 0 for ns in r["samples_ns"])
        assert r["samples_ts"] == pytest.approx([1e9 * n_tok / ns for ns in r["samples_ns"]])
        assert r["avg_ts"] == pytest.approx(statistics.mean(r["samples_ts"])) and r["avg_ts"] > 0
        assert r["stddev_ts"] == pytest.approx(statistics.stdev(r["samples_ts"]))
        assert r["avg_ns"] == pytest.approx(statistics.mean(r["samples_ns"]), abs=1)
    # Every timed run happened inside this call, so the reported times must fit in it.
    assert sum(sum(r["samples_ns"]) for r in rows) / 1e9 < wall


def test_bench_markdown_and_skips(random_models, capsys):
    path = str(random_models["q8_0"])
    assert cli_main(["bench", "-m", f"{path},{path}", "-t", "1", "-p", "0", "-n", "3", "-r", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| model") and "t/s" in lines[0]
    body = lines[2:]
    assert len(body) == 2 and all("tg3" in ln and "Q8_0" in ln and " ± " in ln for ln in body)


def test_bench_bad_arguments(random_models, capsys):
    path = str(random_models["q4_0"])
    assert cli_main(["bench", "-m", path, "-p", "0", "-n", "0"]) == 1
    assert "nothing to measure" in capsys.readouterr().err
    assert cli_main(["bench", "-m", str(Path(path).with_name("missing.gguf"))]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli_main(["bench", "-m", path, "-t", "0", "-n", "1", "-p", "0"]) == 1
    with pytest.raises(SystemExit):
        cli_main(["bench", "-m", path, "-t", "one"])


def test_decode_bytes_per_token(random_models, tmp_path):
    """All tensors once plus one embedding row when the head is untied, the whole
    embedding (it is the head) when tied; the gguf reader as oracle."""
    from minicpm_edge.bench import describe_model
    path = random_models["f16"]
    reader = GGUFReader(str(path))
    total = sum(int(t.n_bytes) for t in reader.tensors)
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    row = int(embd.n_bytes) // TINY["vocab"]
    assert row == TINY["hidden"] * 2
    assert describe_model(path).bytes_per_token == total - int(embd.n_bytes) + row
    tied = make_random_model.main([str(tmp_path / "tied.gguf"), "--tied", "-q", "--hidden", "64", "--ffn", "128",
                                   "--layers", "1", "--heads", "4", "--kv-heads", "2", "--vocab", "300"])
    assert tied == 0
    reader = GGUFReader(str(tmp_path / "tied.gguf"))
    assert "output.weight" not in {t.name for t in reader.tensors}
    assert describe_model(tmp_path / "tied.gguf").bytes_per_token == sum(int(t.n_bytes) for t in reader.tensors)


def test_bandwidth_probe_compiles_and_reports():
    """bench/bandwidth_probe.c through compare.py's driver, on a small buffer:
    one entry per thread count, every pass a positive finite rate, best >= median."""
    import sys
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from compare import probe_bandwidth
    finally:
        sys.path.remove(str(REPO / "bench"))
    r = probe_bandwidth([1, 2], mib=16, passes=3)
    assert [x["threads"] for x in r["results"]] == [1, 2]
    for x in r["results"]:
        assert len(x["samples_gbps"]) == 3
        assert all(0 < g < 1e4 for g in x["samples_gbps"])
        assert x["best_gbps"] == max(x["samples_gbps"]) and x["best_gbps"] >= x["median_gbps"]
    assert set(r["by_threads"]) == {"1", "2"}
