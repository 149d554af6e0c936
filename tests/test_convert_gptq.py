"""`minicpm-edge convert --method gptq|awq|awq-gptq` end to end on a tiny checkpoint:
the model's logits on text it was not calibrated on move less from transformers'
(the float model) than RTN's do, and the CLI refuses what it cannot do."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import WIKI_TEST, WIKI_VALID
from minicpm_edge.convert import ConvertError, convert
from model_oracles import logit_rms_errors


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("calib") / "calib.txt"
    p.write_bytes(WIKI_VALID.read_bytes()[:60000])
    return p


@pytest.mark.parametrize("typ,method", [("w2g32", "gptq"), ("w3g64s", "gptq"), ("w2g32", "awq"),
                                        ("w3g32", "awq-gptq")])
def test_calibrated_model_closer_to_float_than_rtn(tiny_models, tmp_path, calib_file, typ, method):
    hf = tiny_models / "llama"
    rtn = convert(hf, tmp_path / "rtn.gguf", typ, progress=False)
    gptq = convert(hf, tmp_path / "gptq.gguf", typ, progress=False, method=method, calib=calib_file,
                   calib_windows=8, calib_ctx=128)
    e_rtn, e_gptq = logit_rms_errors(hf, [rtn, gptq], WIKI_TEST.read_bytes()[:4000].decode("utf-8", "replace"))
    print(f"{typ}: logit RMS error vs transformers, rtn {e_rtn:.4f}, {method} {e_gptq:.4f}")
    assert e_gptq < 0.85 * e_rtn
    # same layout and size as the RTN file: only the codes and params differ
    assert gptq.stat().st_size == rtn.stat().st_size


def test_gptq_refusals(tiny_models, tmp_path, calib_file):
    hf = tiny_models / "llama"
    with pytest.raises(ConvertError, match="calib"):
        convert(hf, tmp_path / "a.gguf", "w4g64", progress=False, method="gptq")
    with pytest.raises(ConvertError, match="low-bit"):
        convert(hf, tmp_path / "b.gguf", "q4_0", progress=False, method="gptq", calib=calib_file)
    with pytest.raises(ConvertError, match="calib"):
        convert(hf, tmp_path / "c.gguf", "w4g64", progress=False, calib=calib_file)
    with pytest.raises(ConvertError, match="method"):
        convert(hf, tmp_path / "d.gguf", "w4g64", progress=False, method="awq-ish")
    with pytest.raises(ConvertError, match="does not exist"):
        convert(hf, tmp_path / "e.gguf", "w4g64", progress=False, method="gptq", calib=tmp_path / "none.txt")
    assert not list(tmp_path.iterdir())   # nothing half-written, no temporary left behind


def test_cli_gptq(tiny_models, tmp_path, calib_file):
    out = tmp_path / "m.gguf"
    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "convert", str(tiny_models / "llama"), "-o", str(out),
                        "--type", "w4g32", "--method", "gptq", "--calib", str(calib_file), "--calib-windows", "2",
                        "--calib-ctx", "64", "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".calib")]
    r = subprocess.run([sys.executable, "-m", "minicpm_edge", "convert", str(tiny_models / "llama"), "-o",
                        str(tmp_path / "x.gguf"), "--type", "w4g32", "--method", "gptq"], capture_output=True, text=True)
    assert r.returncode != 0 and "calib" in r.stderr and "Traceback" not in r.stderr
