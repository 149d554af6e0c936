"""`minicpm-edge quant-report` on a tiny checkpoint: every (type, method) file is made
and measured, bits per weight follow docs/FORMAT.md's arithmetic, the perplexities
are those of the files, and the table, JSON and plot are written."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import WIKI_TEST, WIKI_VALID, read_raw
from minicpm_edge import Model
from minicpm_edge.quant_report import parse_peer


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    d = tmp_path_factory.mktemp("texts")
    (d / "calib.txt").write_bytes(WIKI_VALID.read_bytes()[:30000])
    (d / "eval.txt").write_bytes(WIKI_TEST.read_bytes()[:30000])
    return d


def test_quant_report_cli(tiny_models, tmp_path, texts):
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "quant-report", "-m", str(tiny_models / "llama"),
                        "--calib", str(texts / "calib.txt"), "--eval", str(texts / "eval.txt"), "-o", str(out),
                        "--types", "w4g32,w2g32", "--methods", "rtn,gptq", "--ctx", "64", "--chunks", "4",
                        "--calib-windows", "4", "--calib-ctx", "64", "--peer", "llama.cpp Q4_0:0.1:600", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    points = {(p["type"], p["method"]): p for p in report["points"]}
    assert set(points) == {("w4g32", "rtn"), ("w4g32", "gptq"), ("w2g32", "rtn"), ("w2g32", "gptq")}
    assert report["calibration_tokens"] == 4 * 64
    eval_text = read_raw(texts / "eval.txt")
    for (typ, method), p in points.items():
        # FORMAT.md: b-bit codes plus an f16 scale and an f16 offset per group of 32
        assert p["bpw_layers"] == pytest.approx(int(typ[1]) + 32 / 32)
        assert p["size_mib"] == pytest.approx((tmp_path / "report" / p["path"].split("/")[-1]).stat().st_size / 2**20)
        assert p["ppl"] == pytest.approx(Model(p["path"], n_ctx=64, n_threads=2).perplexity(eval_text, 64, 4),
                                         rel=1e-9)
    md = (out / "report.md").read_text()
    assert md.count("| w4g32 |") == 2 and md.count("| w2g32 |") == 2 and "llama.cpp Q4_0" in md
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "llama-f16.gguf").exists()   # the one F16 conversion of the checkpoint


def test_quant_report_bad_arguments(tiny_models, tmp_path, texts):
    with pytest.raises(ValueError):
        parse_peer("no-numbers")
    with pytest.raises(ValueError):
        parse_peer("x:-1:3")
    assert parse_peer("llama.cpp Q4_0:87.5:22.12").size_mib == 87.5
    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "quant-report", "-m", str(tiny_models / "llama"),
                        "--calib", str(tmp_path / "missing.txt"), "--eval", str(texts / "eval.txt"),
                        "-o", str(tmp_path / "r")], capture_output=True, text=True)
    assert r.returncode != 0 and "missing.txt" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "quant-report", "-m", str(tiny_models / "llama"),
                        "--calib", str(texts / "calib.txt"), "--eval", str(texts / "eval.txt"),
                        "-o", str(tmp_path / "r"), "--types", "w9g7"], capture_output=True, text=True)
    assert r.returncode != 0 and "w9g7" in r.stderr and "Traceback" not in r.stderr


def test_quant_report_value_grids(tiny_models, tmp_path, texts):
    """--grids: integer vs minifloat/MX/NVFP4 grids under RTN and GPTQ, evaluated as F32
    values; 8-bit integers barely move the float model's perplexity, and the table says
    which family wins at each element width."""
    out = tmp_path / "report"
    grids = {"int8g32s": 8.5, "e4m3g32": 8.5, "int4g32s": 4.5, "e2m1g32": 4.5, "nvfp4": 4.5, "mxfp4": 4.25}
    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "quant-report", "-m", str(tiny_models / "llama"),
                        "--calib", str(texts / "calib.txt"), "--eval", str(texts / "eval.txt"), "-o", str(out),
                        "--types", "", "--methods", "rtn,gptq", "--grids", ",".join(grids), "--ctx", "64",
                        "--chunks", "4", "--calib-windows", "4", "--calib-ctx", "64", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    points = {(p["type"], p["method"]): p for p in json.loads((out / "report.json").read_text())["points"]}
    assert set(points) == {(g, m) for g in grids for m in ("rtn", "gptq")}
    for (g, _), p in points.items():
        assert p["bpw_layers"] == pytest.approx(grids[g])
        assert p["element_bits"] == (8 if "8" in g or g.startswith("e4m3") else 4)
    f32 = Model(str(out / "llama-f16.gguf"), n_ctx=64, n_threads=2, int8_activations=False)
    base = f32.perplexity(read_raw(texts / "eval.txt"), 64, 4)
    assert points[("int8g32s", "rtn")]["ppl"] == pytest.approx(base, rel=0.01)
    assert abs(points[("int4g32s", "rtn")]["ppl"] / base - 1) > abs(points[("int8g32s", "rtn")]["ppl"] / base - 1)
    md = (out / "report.md").read_text()
    assert md.count("| integer |") == 4 and md.count("| minifloat |") == 4
    assert "- 4 bits, gptq:" in md and "- 8 bits, rtn:" in md
    assert not list(out.glob(".grid-*"))   # the F32 files were temporary

    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "quant-report", "-m", str(tiny_models / "llama"),
                        "--calib", str(texts / "calib.txt"), "--eval", str(texts / "eval.txt"),
                        "-o", str(tmp_path / "r2"), "--grids", "fp5"], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown grid" in r.stderr and "Traceback" not in r.stderr
