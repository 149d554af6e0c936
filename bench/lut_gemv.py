"""Kernel microbenchmark of the low-bit table-lookup matmul (T-MAC method,
kernels/lut_layout.h) against the repacked Q4_0 kernel, on one machine in one
session; `--formats t2 tl3` times the ternary kernels the same way.

For each shape (rows x cols: 2048x2048, 4096x4096, 8192x2048, 2048x8192),
each weight format (w1g64 .. w4g64, and q4_0 for reference) and each thread
count, the matmul driver runs on random matrices, cycling through copies that
total at least 512 MiB so every pass streams its weights from DRAM as decode
does (`_core.bench_matmul`). Reported per row: median microseconds per matmul,
GB/s of weight bytes streamed (codes + scales + offsets), and the fraction of
the DRAM read bandwidth measured in the same session by bandwidth_probe.c at
the same thread count (best of its passes, as STREAM reports). GEMV is one
token (decode); GEMM rows use --gemm-tokens tokens (prefill) and report
tokens/s equivalents instead. `--exact` adds, per low-bit format, the same
matmul on the exact path (weights decoded to f32, f32 activations), the
reference the int8 tables are measured against: the ablation of T-MAC's int8
table quantization. `--gemm-paths` times each GEMM row both ways a low-bit
batch can go, table lookup and the int8 GEMM over tiles converted to Q4_1x8
groups (`_core.set_lowbit_gemm`), the measurement behind the automatic
choice in kernels/matmul.cpp.

    python bench/lut_gemv.py                       # GEMV, 1 and 2 threads
    python bench/lut_gemv.py --gemm-tokens 64      # also GEMM
    python bench/lut_gemv.py --formats w2g64 --shapes 4096x4096 --threads 1
    python bench/lut_gemv.py --exact --gemm-tokens 64  # int8 tables vs the exact path
    python bench/lut_gemv.py --gemm-tokens 512 --gemm-paths --formats w2g64 w3g64 w4g64
    python bench/lut_gemv.py --formats tl3 t2 --shapes 2560x2560 6912x2560 2560x6912

Writes bench/results/<date>-lut-gemv-<host>.json and a PNG (GB/s vs bits).
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import platform
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import probe_bandwidth  # noqa: E402

SHAPES = ["2048x2048", "4096x4096", "8192x2048", "2048x8192"]
FORMATS = ["w1g64", "w2g64", "w3g64", "w4g64", "q4_0"]
# Ternary layouts (docs/FORMAT.md) drawn as single points: format, bits per weight, marker.
TERNARY_MARKS = (("t2", 2.0, "^"), ("tl3", 5 / 3, "v"))


def run(a: argparse.Namespace) -> dict:
    from minicpm_edge import _core
    threads = [int(t) for t in a.threads.split(",")]
    bw = probe_bandwidth(threads)
    rows = []
    for shape in a.shapes:
        r, c = (int(v) for v in shape.split("x"))
        for fmt in a.formats:
            lowbit = fmt.startswith("w")
            paths = ["lut"] + (["exact"] if a.exact and lowbit else [])
            token_counts = [1] + ([a.gemm_tokens] if a.gemm_tokens else [])
            runs = [(t, n, p) for t, n, p in itertools.product(threads, token_counts, paths)]
            if a.gemm_paths and lowbit and a.gemm_tokens:
                runs += [(t, a.gemm_tokens, "int8-gemm") for t in threads]
            for t, n_tok, path in runs:
                _core.set_lowbit_gemm("int8" if path == "int8-gemm" else "lut")
                res = _core.bench_matmul(fmt, r, c, n_tok=n_tok, n_threads=t, reps=a.reps,
                                         min_bytes=a.min_mib << 20, int8=path != "exact")
                _core.set_lowbit_gemm("auto")
                sec = statistics.median(res["seconds"])
                gbps = res["weight_bytes"] / sec / 1e9
                label = fmt if path == "lut" else f"{fmt}/{path}"
                row = {"shape": shape, "format": label, "threads": t, "n_tok": n_tok,
                       "us": sec * 1e6, "us_all": [s * 1e6 for s in res["seconds"]],
                       "weight_bytes": res["weight_bytes"], "gbps": gbps,
                       "roofline": gbps / bw["by_threads"][str(t)] if n_tok == 1 else None,
                       "tokens_per_s": n_tok / sec}
                rows.append(row)
                extra = (f"{row['roofline']:.0%} of {bw['by_threads'][str(t)]:.1f} GB/s" if n_tok == 1
                         else f"{row['tokens_per_s']:.0f} tok/s-equivalent")
                print(f"{shape:>10} {label:12} t={t} n_tok={n_tok:<3} {row['us']:9.1f} us  "
                      f"{gbps:6.2f} GB/s  {extra}", flush=True)
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.machine(),
            "isa": _core.isa(), "bandwidth": bw, "reps": a.reps, "min_mib": a.min_mib, "rows": rows}


def chart(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    gemv = [r for r in result["rows"] if r["n_tok"] == 1]
    threads = sorted({r["threads"] for r in gemv})
    fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4), squeeze=False)
    for ax, t in zip(axes[0], threads):
        for shape in sorted({r["shape"] for r in gemv}):
            pts = [(int(r["format"][1]), r["gbps"]) for r in gemv
                   if r["threads"] == t and r["shape"] == shape and r["format"].startswith("w")
                   and "/" not in r["format"]]
            if pts:
                ax.plot(*zip(*sorted(pts)), marker="o", label=shape)
            q4 = [r["gbps"] for r in gemv if r["threads"] == t and r["shape"] == shape and r["format"] == "q4_0"]
            if q4:
                ax.scatter([4], q4, marker="x", color="k")
            for fmt, bits, mark in TERNARY_MARKS:
                tern = [r["gbps"] for r in gemv if r["threads"] == t and r["shape"] == shape and r["format"] == fmt]
                if tern:
                    ax.scatter([bits], tern, marker=mark, color="k")
        ax.axhline(result["bandwidth"]["by_threads"][str(t)], color="gray", ls="--", label="DRAM read (probe)")
        ax.set_xlabel("weight bits (x: Q4_0, ^: ternary t2, v: tl3)")
        ax.set_ylabel("GB/s of weights streamed")
        ax.set_title(f"LUT GEMV, {t} thread(s), {result['isa']}")
        ax.set_xticks([1, 2, 3, 4])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=SHAPES)
    ap.add_argument("--formats", nargs="+", default=FORMATS)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--gemm-tokens", type=int, default=0)
    ap.add_argument("--min-mib", type=int, default=512)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--exact", action="store_true", help="also time each low-bit format on the exact f32 path")
    ap.add_argument("--gemm-paths", action="store_true",
                    help="also time the GEMM rows on the int8 GEMM path (tiles converted to Q4_1x8)")
    a = ap.parse_args()
    result = run(a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-lut-gemv-{platform.node() or 'host'}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    if not a.no_chart:
        chart(result, out / f"{stem}.png")
    print(f"wrote {out / stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
