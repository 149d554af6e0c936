#!/usr/bin/env python3
"""W8A8 against Q8_0 in this runtime, on the same model: prefill (pp) and decode (tg)
tokens/s, the two files alternating rep by rep, medians reported.

    python bench/w8a8_vs_q8.py model-w8a8.gguf model-q8_0.gguf --threads 1,2 -p 512 -n 64 --reps 5

Both files are loaded once per thread count (minicpm_edge.bench.Runner, which times
`eval` of a fresh context for pp and the C++ generation loop for tg, as `minicpm-edge
bench` does). Writes results/<date>-w8a8-vs-q8_0-<host>.json with every sample.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
from pathlib import Path

import numpy as np

from minicpm_edge import _core
from minicpm_edge.bench import Runner, cpu_info, describe_model, random_tokens


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("w8a8")
    p.add_argument("q8_0")
    p.add_argument("--threads", default="1,2")
    p.add_argument("-p", "--n-prompt", type=int, default=512)
    p.add_argument("-n", "--n-gen", type=int, default=64, help="decode tokens (0 skips)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("-o", "--output", default=None, help="JSON file (default: bench/results/...)")
    a = p.parse_args()
    files = {"w8a8": a.w8a8, "q8_0": a.q8_0}
    infos = {k: describe_model(v) for k, v in files.items()}
    rng = np.random.default_rng(0)
    rows = []
    for t in (int(x) for x in a.threads.split(",")):
        runners = {k: Runner(infos[k], n_threads=t, n_ctx=a.n_prompt + a.n_gen + 16, n_batch=a.n_prompt)
                   for k in files}
        samples: dict[tuple[str, str], list[float]] = {}
        for r in runners.values():   # warm-up
            r.prefill_ns(random_tokens(a.n_prompt, r.info.n_vocab, rng))
        for _ in range(a.reps):
            for k, r in runners.items():
                toks = random_tokens(a.n_prompt, r.info.n_vocab, rng)
                samples.setdefault((k, f"pp{a.n_prompt}"), []).append(a.n_prompt / (r.prefill_ns(toks) * 1e-9))
                if a.n_gen:
                    ns = r.decode_ns(int(random_tokens(1, r.info.n_vocab, rng)[0]), a.n_gen)
                    samples.setdefault((k, f"tg{a.n_gen}"), []).append(a.n_gen / (ns * 1e-9))
        for test in sorted({s[1] for s in samples}):
            med = {k: statistics.median(samples[(k, test)]) for k in files}
            rows.append({"threads": t, "test": test, "median_ts": med, "ratio_w8a8_over_q8_0": med["w8a8"] / med["q8_0"],
                         "samples_ts": {k: samples[(k, test)] for k in files}})
            print(f"t={t} {test}: w8a8 {med['w8a8']:.1f} t/s, q8_0 {med['q8_0']:.1f} t/s, "
                  f"ratio {med['w8a8'] / med['q8_0']:.2f}", flush=True)
        del runners
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    out = Path(a.output) if a.output else (Path(__file__).parent / "results" /
                                           f"{datetime.date.today()}-w8a8-vs-q8_0-{platform.node()}.json")
    out.write_text(json.dumps({"files": {k: Path(v).name for k, v in files.items()}, "cpu": cpu_info(),
                               "isa": _core.isa(), "commit": commit, "reps": a.reps, "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
