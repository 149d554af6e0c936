"""Integer vs minifloat weight formats at 8, 6, 4 and 3 bits, judged by perplexity.

Each decoder-layer matrix of a float GGUF model is quantized (RTN or GPTQ) in one format and
written back as F32 values ("fake quantization"), so every format is evaluated by the
same exact f32 arithmetic of the runtime: the table measures the formats' value grids,
not kernels. The LM head, embeddings and norms keep the source's values.

    python bench/format_sweep.py -m smol-f16.gguf -f wikitext-2-raw-test.txt -o sweep.json \
        [--formats int8g32,e4m3g32,mxfp8_e4m3,...] [--method gptq --calib wikitext-2-valid.txt] \
        [--ctx 2048 --chunks 20] [-t 2]

With ``--method gptq`` every matrix goes through GPTQ (act-order, static groups) onto
the format's grid, with Hessians captured by this runtime from the calibration text
(32 windows of 512 tokens unless --calib-windows says otherwise).

Grid names: minicpm_edge.convert.grids (integers, FP8/FP6/FP4/FP3 with group scales, MX, NVFP4).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from minicpm_edge.convert import calibrate
from minicpm_edge.convert.grids import grid, grid_perplexity

DEFAULT = ("int8g32s,int8g32,e4m3g32,e5m2g32,mxfp8_e4m3,mxfp8_e5m2,"
           "int6g32s,int6g32,e3m2g32,e2m3g32,mxfp6_e3m2,mxfp6_e2m3,"
           "int4g32s,int4g32,int4g64,e2m1g32,e2m1g64,mxfp4,nvfp4,"
           "int3g32s,int3g32,e2m0g32")


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
        t0 = time.time()
        g = grid(name)
        ppl, _ = grid_perplexity(a.model, g, text, out.parent, cal, a.ctx, a.chunks, a.threads)
        rows.append({"format": name, "method": a.method, "bpw": round(g.bpw, 4), "ppl": ppl,
                     "seconds": round(time.time() - t0, 1)})
        out.write_text(json.dumps(rows, indent=1))
        print(f"{name:12s} {a.method:5s} {g.bpw:6.3f} bpw  PPL {ppl:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
