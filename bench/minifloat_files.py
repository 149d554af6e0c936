"""Minifloat file types (docs/FORMAT.md "Minifloats") on a real model: file size and
perplexity of each converted file, in exact arithmetic (weights decoded to f32, which
should reproduce the value grid's perplexity of bench/format_sweep.py) and with the
default int8 activations (E2M1 / E2M3 formats: int8 dots; the others decode to f32
either way, so their int8 row repeats the exact one).

    python bench/minifloat_files.py -m smol-f16.gguf -f wikitext-2-raw-test.txt -o mf.json \
        --types e4m3g32,e2m3g32,e2m1g32,mxfp4,nvfp4 [--method gptq --calib wikitext-2-valid.txt] \
        [--modes exact,int8] [--ctx 2048 --chunks 20] [-t 2] [--keep DIR]

GPTQ uses one calibration run (32 windows of 512 tokens, as format_sweep.py) for every type.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from minicpm_edge import Model
from minicpm_edge.convert import calibrate, convert
from minicpm_edge.convert.minifloat_type import parse_minifloat


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True, help="float GGUF (F16/F32) source")
    ap.add_argument("-f", "--file", required=True, help="evaluation text (wikitext-2 raw test)")
    ap.add_argument("-o", "--output", required=True, help="JSON results (appended as each row finishes)")
    ap.add_argument("--types", default="e4m3g32,e2m3g32,e2m1g32,mxfp4,nvfp4")
    ap.add_argument("--modes", default="exact,int8")
    ap.add_argument("--method", choices=("rtn", "gptq"), default="rtn")
    ap.add_argument("--calib", default=None)
    ap.add_argument("--calib-windows", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--keep", default=None, help="directory to keep the converted files in")
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
    done = {(r["type"], r["method"], r["mode"]) for r in rows}
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(dir=a.keep or out.parent, prefix=".mf-") as tmp:
        for name in [t.strip() for t in a.types.split(",") if t.strip()]:
            if parse_minifloat(name) is None:
                raise SystemExit(f"{name}: not a minifloat type")
            todo = [m for m in modes if (name, a.method, m) not in done]
            if not todo:
                continue
            path = Path(a.keep or tmp) / f"model-{name}-{a.method}.gguf"
            t0 = time.time()
            if not path.exists():
                convert(a.model, path, out_type=name, method=a.method, calibration=cal, progress=False)
            convert_s = time.time() - t0
            for mode in todo:
                t1 = time.time()
                model = Model(str(path), n_ctx=a.ctx, n_threads=a.threads, int8_activations=mode == "int8")
                ppl = model.perplexity(text, n_ctx=a.ctx, n_chunks=a.chunks)
                del model
                rows.append({"type": name, "method": a.method, "mode": mode, "bytes": path.stat().st_size,
                             "mib": round(path.stat().st_size / 2**20, 2), "ppl": ppl,
                             "convert_seconds": round(convert_s, 1), "ppl_seconds": round(time.time() - t1, 1)})
                out.write_text(json.dumps(rows, indent=1))
                print(f"{name:12s} {a.method:5s} {mode:6s} {path.stat().st_size / 2**20:8.2f} MiB  PPL {ppl:.4f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
