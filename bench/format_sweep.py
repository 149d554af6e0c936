"""Integer vs minifloat weight formats at 8, 6, 4 and 3 bits, judged by perplexity.

Each decoder-layer matrix of a float GGUF model is quantized (RTN) in one format and
written back as F32 values ("fake quantization"), so every format is evaluated by the
same exact f32 arithmetic of the runtime: the table measures the formats' value grids,
not kernels. The LM head, embeddings and norms keep the source's values.

    python bench/format_sweep.py -m smol-f16.gguf -f wikitext-2-raw-test.txt -o sweep.json \
        [--formats int8g32,e4m3g32,mxfp8_e4m3,...] [--method gptq --calib wikitext-2-valid.txt] \
        [--ctx 2048 --chunks 20] [-t 2]

With ``--method gptq`` every matrix goes through GPTQ (act-order, static groups) onto
the format's grid, with Hessians captured by this runtime from the calibration text
(32 windows of 512 tokens unless --calib-windows says otherwise).

Formats: int{b}g{G} (asymmetric: scale and zero point) and int{b}g{G}s (symmetric), b up
to 8; {e4m3,e5m2,e3m2,e2m3,e2m1,e2m0}g{G} (f16 scale per group, amax to the largest
value); mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4 (OCP MX: blocks of 32, E8M0
scale); nvfp4 (blocks of 16, E4M3 scale, f32 tensor scale). Bits per weight count the
scales: b + 16/G (+16/G for a zero point), MX b + 8/32, NVFP4 4 + 8/16.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from minicpm_edge import Model
from minicpm_edge.convert import OUT_TYPES, calibrate
from minicpm_edge.convert import minifloat as mf
from minicpm_edge.convert.gguf_source import retype_gguf
from minicpm_edge.convert.gptq import gptq_quantize
from minicpm_edge.convert.lowbit import LowBitType, dequantize, quantize_rtn
from minicpm_edge.convert.quantize import is_layer_matrix

DEFAULT = ("int8g32s,int8g32,e4m3g32,e5m2g32,mxfp8_e4m3,mxfp8_e5m2,"
           "int6g32s,int6g32,e3m2g32,e2m3g32,mxfp6_e3m2,mxfp6_e2m3,"
           "int4g32s,int4g32,int4g64,e2m1g32,e2m1g64,mxfp4,nvfp4,"
           "int3g32s,int3g32,e2m0g32")
_INT = re.compile(r"int(\d)g(\d+)(s?)$")
_FLOAT = re.compile(r"(e\dm\d)g(\d+)$")


def quantizer(name: str, gptq: bool = False):
    """(function (float [M, K], Hessian [K, K] or None) -> quantized float [M, K], bits
    per weight, group) of a format, RTN or GPTQ."""
    if m := _INT.match(name):
        t = LowBitType(int(m.group(1)), int(m.group(2)), bool(m.group(3)))
        bpw = t.bits + 16 / t.group * (1 if t.symmetric else 2)
        if gptq:
            return (lambda w, h: dequantize(*gptq_quantize(w, h, t, what=name), t)), bpw, t.group
        return (lambda w, h: dequantize(*quantize_rtn(w, t, name), t)), bpw, t.group
    if m := _FLOAT.match(name):
        fmt, g = mf.FORMATS[m.group(1)], int(m.group(2))
        scale, rtn, bpw = (lambda v: mf.group_scale(v, fmt)), (lambda w: mf.group_scaled(w, fmt, g)), fmt.bits + 16 / g
    elif name.startswith("mxfp"):
        fmt, g = (mf.E2M1 if name == "mxfp4" else mf.FORMATS[name.split("_")[1]]), 32
        scale, rtn, bpw = (lambda v: mf.mx_scale(v, fmt)), (lambda w: mf.mx(w, fmt)), fmt.bits + 8 / 32
    elif name == "nvfp4":
        fmt, g, bpw, rtn = mf.E2M1, 16, 4 + 8 / 16, mf.nvfp4

        def fn(w, h):
            if h is None:
                return rtn(w)
            s_t = mf.nvfp4_tensor_scale(w)
            return mf.gptq_values(w, h, fmt, g, lambda v: mf.nvfp4_scale(v, s_t))
        return fn, bpw, g
    else:
        raise SystemExit(f"unknown format {name!r}")
    return (lambda w, h: rtn(w) if h is None else mf.gptq_values(w, h, fmt, g, scale)), bpw, g


class FakeQuant:
    """A converter Rewrite: decoder-layer matrices replaced by their quantized values."""

    def __init__(self, fn, group: int, calibration=None):
        self.fn, self.group, self.calibration = fn, group, calibration

    def touches(self, name: str) -> bool:
        return name.startswith("blk.") and name.endswith(".weight") and not name.endswith("_norm.weight")

    def apply(self, name: str, values: np.ndarray) -> np.ndarray:
        if values.ndim != 2 or not is_layer_matrix(name, values.shape) or values.shape[1] % self.group:
            return values
        stats = None if self.calibration is None else self.calibration.for_tensor(name)
        return self.fn(np.asarray(values, np.float32), None if stats is None else stats.hessian)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True, help="float GGUF (F16/F32) source")
    ap.add_argument("-f", "--file", required=True, help="evaluation text (wikitext-2 raw test)")
    ap.add_argument("-o", "--output", required=True, help="JSON results (appended as each format finishes)")
    ap.add_argument("--formats", default=DEFAULT)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--method", choices=("rtn", "gptq"), default="rtn")
    ap.add_argument("--calib", default=None, help="calibration text (needed by gptq)")
    ap.add_argument("--calib-windows", type=int, default=32)
    a = ap.parse_args(argv)
    cal = None
    if a.method == "gptq":
        if a.calib is None:
            raise SystemExit("--method gptq needs --calib FILE")
        cal = calibrate.capture(a.model, calibrate.read_text(a.calib), n_windows=a.calib_windows,
                                n_threads=a.threads)
    text = Path(a.file).read_bytes().decode("utf-8", errors="replace")
    out = Path(a.output)
    rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r["format"], r.get("method", "rtn")) for r in rows}
    for name in [f.strip() for f in a.formats.split(",") if f.strip()]:
        if (name, a.method) in done:
            continue
        fn, bpw, group = quantizer(name, gptq=cal is not None)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            path = Path(tmp) / "fake.gguf"
            t0 = time.time()
            retype_gguf(Path(a.model), path, OUT_TYPES["f32"], progress=False, rewrite=FakeQuant(fn, group, cal))
            model = Model(str(path), n_ctx=a.ctx, n_threads=a.threads, int8_activations=False)
            ppl = model.perplexity(text, n_ctx=a.ctx, n_chunks=a.chunks)
            del model
        rows.append({"format": name, "method": a.method, "bpw": round(bpw, 4), "ppl": ppl, "seconds": round(time.time() - t0, 1)})
        out.write_text(json.dumps(rows, indent=1))
        print(f"{name:12s} {a.method:5s} {bpw:6.3f} bpw  PPL {ppl:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
