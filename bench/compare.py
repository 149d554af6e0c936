"""minicpm-edge against llama.cpp (llama-cpp-python) on the same GGUF files, in
one session on one machine: prefill and decode tokens/s, their ratios, and how
much of the measured DRAM bandwidth decode turns into tokens.

Method (the same on both sides, as llama-bench measures):
* same file, same thread count (prefill and decode), same n_ctx, batch 512;
  for formats llama.cpp cannot read (our low-bit w{b}g{G}), `--models OURS=PEER`
  runs llama.cpp on its nearest type instead (e.g. w2g64 against Q2_K, made by
  llama-quantize from the same F16 file), and each side's bandwidth utilisation
  uses its own file's bytes per token;
* pp<p>: one call evaluating p token ids on an empty context;
* tg<n>: n calls of one token each on an empty context (depth 0, as llama-bench's
  tg), every call a Python -> engine call on both sides; token ids are random,
  valid and identical for both engines in a repetition (values do not change
  the speed, so nothing is sampled and nothing can stop early);
* one untimed warm-up per engine, then `--reps` repetitions, the engines
  alternating which goes first, and medians reported, so that a shared
  machine's noise hits both alike.

Decode bandwidth utilisation = bytes of weights read per token x tokens/s /
DRAM read bandwidth, the bandwidth measured in the same session by
bandwidth_probe.c (compiled on the fly with the system C compiler), at the same
thread count. Bytes per token count every tensor once, except the token
embedding, of which one row is read (the whole matrix when it is also the LM
head). KV-cache reads are left out (small at these depths).

The Python overhead of `Model.generate(stream=True)` against the C++ loop is
measured too (python_overhead.py).

    python bench/compare.py [--models A.gguf B.gguf] [--threads 1,2] [-p 512] [-n 128]
                            [--reps 5] [--out bench/results]

Writes <out>/<date>-<model>-<host>.json (all raw samples) and a .png chart.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ---- bandwidth -----------------------------------------------------------------------------
def probe_bandwidth(threads: list[int], mib: int = 1024, passes: int = 7) -> dict:
    """Streaming-read GB/s at each thread count (best and median of `passes`)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError("no C compiler found (set CC) for the bandwidth probe")
    with tempfile.TemporaryDirectory(prefix="mce-bw-") as tmp:
        exe = Path(tmp) / "bandwidth_probe"
        subprocess.run([cc, "-O2", "-march=native", "-pthread", str(HERE / "bandwidth_probe.c"), "-o", str(exe)],
                       check=True)
        out = subprocess.run([str(exe), str(mib), str(passes), *map(str, threads)], check=True,
                             capture_output=True, text=True).stdout
    result = json.loads(out)
    result["by_threads"] = {str(r["threads"]): r["best_gbps"] for r in result["results"]}
    return result


# ---- engines -------------------------------------------------------------------------------
class Ours:
    name = "minicpm-edge"

    def __init__(self, path: str, threads: int, n_ctx: int, n_batch: int):
        from minicpm_edge import _core
        self.m = _core.Model(path, n_ctx=n_ctx, n_threads=threads, n_batch=n_batch)
        self.n_vocab = self.m.n_vocab

    def prefill(self, toks: list[int]) -> None:
        self.m.reset()
        self.m.eval(toks)

    def decode(self, toks: list[int]) -> None:
        self.m.reset()
        for t in toks:
            self.m.eval([t])


class LlamaCpp:
    name = "llama.cpp"

    def __init__(self, path: str, threads: int, n_ctx: int, n_batch: int):
        from llama_cpp import Llama
        self.m = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                       n_batch=n_batch, n_ubatch=n_batch, verbose=False)
        self.n_vocab = self.m.n_vocab()

    def prefill(self, toks: list[int]) -> None:
        self.m.reset()
        self.m.eval(toks)

    def decode(self, toks: list[int]) -> None:
        self.m.reset()
        for t in toks:
            self.m.eval([t])


def _timed(fn, *args) -> float:
    import time
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def compare_at(path: str, threads: int, n_prompt: int, n_gen: int, reps: int, n_batch: int, seed: int,
               peer_path: str | None = None) -> dict:
    n_ctx = n_prompt + n_gen
    engines = [Ours(path, threads, n_ctx, n_batch), LlamaCpp(peer_path or path, threads, n_ctx, n_batch)]
    n_vocab = engines[0].n_vocab
    if engines[1].n_vocab != n_vocab:
        raise RuntimeError(f"the engines disagree on the vocabulary size: {n_vocab} vs {engines[1].n_vocab}")
    rng = np.random.default_rng(seed)
    warm = rng.integers(0, n_vocab, n_prompt + n_gen).tolist()
    for e in engines:   # page the weights in, repack, start the threads
        if n_prompt:
            e.prefill(warm[:n_prompt])
        e.decode(warm[n_prompt:][:8])
    samples = {e.name: {"pp_ts": [], "tg_ts": []} for e in engines}
    for r in range(reps):
        toks = rng.integers(0, n_vocab, n_prompt + n_gen).tolist()
        for e in (engines if r % 2 == 0 else engines[::-1]):
            if n_prompt:
                samples[e.name]["pp_ts"].append(n_prompt / _timed(e.prefill, toks[:n_prompt]))
            if n_gen:
                samples[e.name]["tg_ts"].append(n_gen / _timed(e.decode, toks[n_prompt:]))
        log(f"  t={threads} rep {r + 1}/{reps}: " + "   ".join(
            f"{name} pp {s['pp_ts'][-1] if s['pp_ts'] else 0:.1f} tg {s['tg_ts'][-1] if s['tg_ts'] else 0:.1f}"
            for name, s in samples.items()))
    del engines
    return samples


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(threads: int, samples: dict, bytes_per_token: int, bw_gbps: float | None,
              peer_bytes_per_token: int | None = None) -> dict:
    ours, ref = samples["minicpm-edge"], samples["llama.cpp"]
    s = {"threads": threads}
    for k in ("pp", "tg"):
        o, l = _median(ours[f"{k}_ts"]), _median(ref[f"{k}_ts"])
        s[f"{k}_ours"], s[f"{k}_llama_cpp"] = o, l
        s[f"{k}_ratio"] = o / l if o and l else None
    if bw_gbps and s["tg_ours"]:
        s["bandwidth_gbps"] = bw_gbps
        s["roofline_tg"] = bw_gbps * 1e9 / bytes_per_token
        s["tg_bw_util_ours"] = bytes_per_token * s["tg_ours"] / (bw_gbps * 1e9)
        s["tg_bw_util_llama_cpp"] = (peer_bytes_per_token or bytes_per_token) * s["tg_llama_cpp"] / (bw_gbps * 1e9)
    return s


# ---- reporting -----------------------------------------------------------------------------
def _fmt(x: float | None, spec: str) -> str:
    return format(x, spec) if x is not None else "-"


def print_summary(model_label: str, n_prompt: int, n_gen: int, rows: list[dict], overhead: list[dict]) -> None:
    print(f"\n{model_label}")
    print(f"| threads | pp{n_prompt} ours | pp{n_prompt} llama.cpp | ratio | tg{n_gen} ours | tg{n_gen} llama.cpp "
          f"| ratio | DRAM GB/s | roofline t/s | BW util ours | BW util llama.cpp |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in rows:
        print(f"| {s['threads']} | {_fmt(s['pp_ours'], '.1f')} | {_fmt(s['pp_llama_cpp'], '.1f')} "
              f"| {_fmt(s['pp_ratio'], '.2f')} | {_fmt(s['tg_ours'], '.1f')} | {_fmt(s['tg_llama_cpp'], '.1f')} "
              f"| {_fmt(s['tg_ratio'], '.2f')} | {_fmt(s.get('bandwidth_gbps'), '.1f')} "
              f"| {_fmt(s.get('roofline_tg'), '.1f')} | {_fmt(s.get('tg_bw_util_ours'), '.0%')} "
              f"| {_fmt(s.get('tg_bw_util_llama_cpp'), '.0%')} |")
    for o in overhead:
        print(f"Python overhead t={o['threads']}: generate(stream=True) {o['python_ts_median']:.1f} t/s vs C++ loop "
              f"{o['cpp_ts_median']:.1f} t/s = {o['ratio']:.3f} measured; {o['estimated_ratio']:.4f} from "
              f"{o['python_us_per_token']:.1f} us Python + {o['binding_us_per_call']:.1f} us call per token")


def chart(result: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["summary"]
    raw = {r["threads"]: r for r in result["samples"]}
    tests = [k for k in ("pp", "tg") if any(s[f"{k}_ours"] for s in rows)]
    fig, axes = plt.subplots(1, len(tests), figsize=(5 * len(tests), 4), squeeze=False)
    x = np.arange(len(rows))
    for ax, k in zip(axes[0], tests):
        n = result["settings"]["n_prompt"] if k == "pp" else result["settings"]["n_gen"]
        for i, (engine, key, color) in enumerate((("minicpm-edge", "ours", "tab:blue"),
                                                  ("llama.cpp", "llama_cpp", "tab:gray"))):
            med = [s[f"{k}_{key}"] for s in rows]
            lo = [m - min(raw[s["threads"]][engine][f"{k}_ts"]) for m, s in zip(med, rows)]
            hi = [max(raw[s["threads"]][engine][f"{k}_ts"]) - m for m, s in zip(med, rows)]
            ax.bar(x + (i - 0.5) * 0.38, med, 0.38, yerr=[lo, hi], capsize=3, label=engine, color=color)
        for xi, s in zip(x, rows):
            top = max(max(raw[s["threads"]][e][f"{k}_ts"]) for e in ("minicpm-edge", "llama.cpp"))
            label = f"{s[f'{k}_ratio']:.2f}x"
            if k == "tg" and s.get("tg_bw_util_ours") is not None:
                label += f"\n{s['tg_bw_util_ours']:.0%} BW"
            ax.text(xi, top * 1.04, label, ha="center", va="bottom", fontsize=9)
        ax.set_xticks(x, [f"{s['threads']} thr" for s in rows])
        ax.set_ylabel("tokens/s (median; bars: min-max)")
        ax.set_title(f"{k}{n}")
        ax.set_ylim(0, max(max(max(v[f"{k}_ts"]) for e, v in r.items() if e != "threads")
                           for r in raw.values()) * 1.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9)
    peer = f" vs llama.cpp on {result['peer_model']['file']}" if result.get("peer_model") else ""
    fig.suptitle(f"{result['model']['file']}{peer}  ({result['cpu']}, {result['isa']}, {result['date'][:10]}; "
                 f"labels: ours ÷ llama.cpp, our decode share of DRAM bandwidth)", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def split_pair(spec: str) -> tuple[str, str | None]:
    """"ours.gguf" (both engines run it) or "ours.gguf=peer.gguf" (llama.cpp runs the
    peer file: formats it cannot read, compared with its nearest type)."""
    ours, sep, peer = spec.partition("=")
    return ours, (peer if sep else None)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unknown"


# ---- driver --------------------------------------------------------------------------------
def run_model(spec: str, a: argparse.Namespace, threads: list[int], bandwidth: dict, overhead: bool) -> dict:
    from minicpm_edge import _core
    from minicpm_edge.bench import cpu_info, describe_model
    import llama_cpp

    path, peer_path = split_pair(spec)
    info = describe_model(path)
    peer = describe_model(peer_path) if peer_path else None
    for f, i in [(path, info)] + ([(peer_path, peer)] if peer else []):
        log(f"{Path(f).name}: {i.model_type}, {i.size_bytes / 2**20:.1f} MiB, "
            f"{i.bytes_per_token / 2**20:.1f} MiB read per decoded token")
    samples, rows = [], []
    for t in threads:
        s = compare_at(path, t, a.n_prompt, a.n_gen, a.reps, a.batch_size, a.seed, peer_path)
        samples.append({"threads": t, **s})
        rows.append(summarize(t, s, info.bytes_per_token, bandwidth.get("by_threads", {}).get(str(t)),
                              peer.bytes_per_token if peer else None))
    python_overhead = []
    if overhead:
        from python_overhead import measure
        for t in threads:
            python_overhead.append(measure(path, t, a.overhead_tokens, a.overhead_reps or a.reps, log=log))
    now = datetime.datetime.now()
    return {
        "date": now.isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"), "dirty": bool(_git("status", "--porcelain", "--", "csrc",
                                                                           "python")),
        "host": platform.node(), "cpu": cpu_info(), "machine": platform.machine(), "n_cpus": os.cpu_count(),
        "isa": _core.isa(), "llama_cpp_python": getattr(llama_cpp, "__version__", "?"),
        "settings": {"n_prompt": a.n_prompt, "n_gen": a.n_gen, "reps": a.reps, "threads": threads,
                     "n_ctx": a.n_prompt + a.n_gen, "n_batch": a.batch_size, "seed": a.seed,
                     "llama_cpp_flash_attn": False, "decode_call": "one Python call per token on both sides"},
        "model": {"file": Path(path).name, "model_type": info.model_type, "size_bytes": info.size_bytes,
                  "n_params": info.n_params, "bytes_per_token": info.bytes_per_token},
        "peer_model": None if peer is None else {
            "file": Path(peer_path).name, "model_type": peer.model_type, "size_bytes": peer.size_bytes,
            "n_params": peer.n_params, "bytes_per_token": peer.bytes_per_token},
        "bandwidth": bandwidth,
        "samples": samples,
        "summary": rows,
        "python_overhead": python_overhead,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=None,
                    help="GGUF files (default: the default model); OURS=PEER runs llama.cpp on PEER instead, "
                         "e.g. rand1b-w2g64.gguf=rand1b-q2_k.gguf")
    ap.add_argument("--threads", default="1,2", help="comma list (default 1,2)")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("-b", "--batch-size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results"), help="directory for the JSON and PNG files")
    ap.add_argument("--bw-mib", type=int, default=1024, help="bandwidth probe buffer (default 1024 MiB)")
    ap.add_argument("--no-bandwidth", action="store_true", help="skip the bandwidth probe")
    ap.add_argument("--no-python-overhead", action="store_true", help="skip the Model.generate overhead check")
    ap.add_argument("--overhead-tokens", type=int, default=128)
    ap.add_argument("--overhead-reps", type=int, default=None, help="default: --reps")
    ap.add_argument("--no-chart", action="store_true")
    a = ap.parse_args()
    threads = [int(x) for x in a.threads.split(",") if x]
    if not threads or min(threads) < 1 or a.reps < 1 or a.n_prompt < 0 or a.n_gen < 0 or a.n_prompt + a.n_gen == 0:
        ap.error("need threads >= 1, --reps >= 1, -p/-n >= 0 and something to measure")
    if a.models is None:
        from minicpm_edge.hub import default_model_path
        a.models = [str(default_model_path())]
    for m in a.models:
        for f in split_pair(m):
            if f is not None and not Path(f).is_file():
                ap.error(f"model file not found: {f}")

    bandwidth: dict = {}
    if not a.no_bandwidth:
        bandwidth = probe_bandwidth(threads, mib=a.bw_mib)
        log("DRAM read bandwidth: " + ", ".join(f"{t} thr {g:.1f} GB/s" for t, g in bandwidth["by_threads"].items()))
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for m in a.models:
        result = run_model(m, a, threads, bandwidth, overhead=not a.no_python_overhead)
        stem = f"{result['date'][:10]}-{_slug(Path(split_pair(m)[0]).stem)}-{_slug(result['host'])}"
        js = out_dir / f"{stem}.json"
        js.write_text(json.dumps(result, indent=1) + "\n")
        peer = f" vs llama.cpp on {result['peer_model']['file']}" if result.get("peer_model") else ""
        print_summary(f"{result['model']['file']} ({result['model']['model_type']}){peer}, {result['cpu']}, "
                      f"{result['isa']}", a.n_prompt, a.n_gen, result["summary"], result["python_overhead"])
        if not a.no_chart:
            chart(result, out_dir / f"{stem}.png")
        log(f"wrote {js}" + ("" if a.no_chart else f" and {stem}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
