"""Prefill and decode speed of minicpm-edge and llama.cpp (llama-cpp-python) on
the same GGUF file, same thread count, in one run.

Runs alternate between the two engines and each figure is the median of the
repetitions, so that the noise of a shared machine hits both alike. Prefill
(pp) evaluates a prompt of n_prompt tokens in one call on an empty cache;
decode (tg) then evaluates n_gen single tokens one call each, as llama-bench
does (token values do not change the speed, so no sampling is involved).

    python bench/speed.py [-m model.gguf] [-t 1,2] [-p 512] [-n 128] [-r 3]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _tokens(n: int, n_vocab: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(100, min(n_vocab, 30000), n).tolist()


class Ours:
    name = "minicpm-edge"

    def __init__(self, path: str, threads: int, n_ctx: int):
        from minicpm_edge import Model
        self.m = Model(path, n_ctx=n_ctx, n_threads=threads)
        self.n_vocab = self.m.n_vocab

    def prefill(self, toks):
        self.m.reset()
        self.m.eval(toks)

    def decode_step(self, tok):
        self.m.eval([tok])


class LlamaCpp:
    name = "llama.cpp"

    def __init__(self, path: str, threads: int, n_ctx: int):
        from llama_cpp import Llama
        self.m = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512,
                       n_ubatch=512, verbose=False)
        self.n_vocab = self.m.n_vocab()

    def prefill(self, toks):
        self.m.reset()
        self.m.eval(toks)

    def decode_step(self, tok):
        self.m.eval([tok])


def measure(engine, n_prompt: int, n_gen: int, seed: int) -> tuple[float, float]:
    toks = _tokens(n_prompt + n_gen, engine.n_vocab, seed)
    t0 = time.perf_counter()
    engine.prefill(toks[:n_prompt])
    t1 = time.perf_counter()
    for t in toks[n_prompt:]:
        engine.decode_step(t)
    t2 = time.perf_counter()
    return n_prompt / (t1 - t0), n_gen / (t2 - t1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("-t", "--threads", default="1,2")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-o", "--out", default=None, help="JSON file (default bench/results/speed-<date>.json)")
    a = ap.parse_args()
    if a.model is None:
        from minicpm_edge.hub import default_model_path
        a.model = str(default_model_path())
    n_ctx = a.n_prompt + a.n_gen + 16
    rows = []
    for threads in [int(x) for x in a.threads.split(",")]:
        engines = [Ours(a.model, threads, n_ctx), LlamaCpp(a.model, threads, n_ctx)]
        for e in engines:  # warm-up: page the weights in, spin up threads
            measure(e, 32, 4, 0)
        res = {e.name: {"pp": [], "tg": []} for e in engines}
        for r in range(a.reps):
            for e in (engines if r % 2 == 0 else engines[::-1]):
                pp, tg = measure(e, a.n_prompt, a.n_gen, r + 1)
                res[e.name]["pp"].append(pp)
                res[e.name]["tg"].append(tg)
        for name, v in res.items():
            row = {"engine": name, "n_threads": threads, "n_prompt": a.n_prompt, "n_gen": a.n_gen,
                   "pp_ts_median": statistics.median(v["pp"]), "tg_ts_median": statistics.median(v["tg"]),
                   "pp_ts": v["pp"], "tg_ts": v["tg"]}
            rows.append(row)
            print(f"{name:13s} t={threads}  pp{a.n_prompt} {row['pp_ts_median']:8.1f} t/s   "
                  f"tg{a.n_gen} {row['tg_ts_median']:7.1f} t/s")
        ours, ref = rows[-2], rows[-1]
        print(f"{'ratio':13s} t={threads}  pp {ours['pp_ts_median'] / ref['pp_ts_median']:.2f}x   "
              f"tg {ours['tg_ts_median'] / ref['tg_ts_median']:.2f}x")
        del engines
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    from minicpm_edge import _core
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": commit,
              "machine": platform.machine(), "processor": cpu_model(), "isa": _core.isa(),
              "model": Path(a.model).name, "reps": a.reps, "rows": rows}
    out = Path(a.out) if a.out else ROOT / "bench" / "results" / f"speed-{datetime.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
