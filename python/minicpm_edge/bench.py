"""`minicpm-edge bench`: prefill and decode tokens/s, measured the way llama.cpp's
llama-bench measures them (tools/llama-bench/llama-bench.cpp), so that the two
tools' figures and JSON rows can be set side by side.

* pp<N>: one prefill of N random valid token ids on an empty context.
* tg<N>: N single-token decode steps on an empty context, generating exactly N
  tokens: greedy, with no end-of-generation token, so nothing stops it early.
  The loop runs in C++ (`_core.Generator.run`) with no Python per token; its
  only extra work over llama-bench is the argmax over the vocabulary.
* every test is run once untimed first (warm-up), then `reps` times, each on a
  fresh context; a row reports the mean and sample standard deviation of the
  per-repetition tokens/s, as llama-bench does.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

CONTEXT_SLACK = 1   # a Generator needs n_ctx > its prompt length


# ---- model description ---------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    path: str
    arch: str
    model_type: str          # llama-bench's "model_type": "<arch> <size> <file type>"
    size_bytes: int          # bytes of all tensors (llama_model_size)
    n_params: int            # weights of all tensors (llama_model_n_params; see count_params)
    n_vocab: int
    bytes_per_token: int     # weight bytes one decode step reads (see decode_bytes_per_token)


def _tensor_elements(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


LOWBIT_KEY = "minicpm_edge.lowbit."   # docs/FORMAT.md: [bits, group, has_min] per low-bit matrix
TERNARY_KEY = "minicpm_edge.ternary."  # docs/FORMAT.md: [2] per t2 matrix, [3, rows, cols] per tl3 one
W8A8_KEY = "minicpm_edge.w8a8."        # docs/FORMAT.md: [8, 8] per W8A8 matrix (I8 weights + F32 row scales)
MINIFLOAT_KEY = "minicpm_edge.minifloat."  # docs/FORMAT.md: [E, M, block, scaling] per minifloat matrix


def count_params(md: dict, tensors: Sequence[dict]) -> int:
    """Elements of all tensors, where a low-bit or ternary matrix counts its M*K
    weights (its I8 codes tensor holds K*b/8 bytes per row; a tl3 matrix's descriptor
    gives M and K) and not its scales and offsets."""
    lowbit = {k[len(LOWBIT_KEY):]: int(v[0]) for k, v in md.items()
              if k.startswith(LOWBIT_KEY) and isinstance(v, list) and len(v) == 3 and v[0] in (1, 2, 3, 4)}
    lowbit.update({k[len(TERNARY_KEY):]: 2 for k, v in md.items() if k.startswith(TERNARY_KEY) and v == [2]})
    lowbit.update({k[len(MINIFLOAT_KEY):]: 1 + int(v[0]) + int(v[1]) for k, v in md.items()
                   if k.startswith(MINIFLOAT_KEY) and isinstance(v, list) and len(v) == 4
                   and 1 + int(v[0]) + int(v[1]) in (4, 6, 8)})
    # matrix name -> the weights it holds
    held = {t["name"]: _tensor_elements(t["shape"]) * 8 // lowbit[t["name"]] for t in tensors if t["name"] in lowbit}
    held.update({k[len(TERNARY_KEY):]: int(v[1]) * int(v[2]) for k, v in md.items()
                 if k.startswith(TERNARY_KEY) and isinstance(v, list) and len(v) == 3 and v[0] == 3})  # tl3
    held.update({t["name"]: _tensor_elements(t["shape"]) for t in tensors if W8A8_KEY + t["name"] in md})
    n = 0
    for t in tensors:
        name = t["name"]
        if name in held:
            n += held[name]
        elif not (name.endswith((".scale", ".min", ".tensor_scale")) and name.rsplit(".", 1)[0] in held):
            n += _tensor_elements(t["shape"])
    return n


EMBEDDING_TENSORS = ("token_embd.weight", "token_embd.weight.scale", "token_embd.weight.min")


def decode_bytes_per_token(tensors: Sequence[dict]) -> int:
    """Weight bytes a decode step must stream from memory: every tensor in full
    except the token embedding, of which only the looked-up row is read -- unless
    the embedding doubles as the LM head (tied, no output.weight), when the head
    reads all of it (and the row is part of that). A low-bit matrix (docs/FORMAT.md)
    is its codes, scales and offsets, all counted; a low-bit embedding would read one
    row of each."""
    names = {t["name"] for t in tensors}
    tied = "output.weight" not in names
    total = 0
    for t in tensors:
        if t["name"] in EMBEDDING_TENSORS and not tied:
            rows = int(t["shape"][-1])   # ggml order: ne[0] = row bytes/elements, ne[1] = n_vocab
            total += int(t["nbytes"]) // max(rows, 1)
        else:
            total += int(t["nbytes"])
    return total


def _size_label(n_params: int) -> str:
    if n_params >= 1e9:
        return f"{n_params / 1e9:.1f}B".replace(".0B", "B")
    return f"{round(n_params / 1e6)}M"


def _file_type_name(md: dict, tensors: Sequence[dict]) -> str:
    own = md.get("minicpm_edge.file_type")   # the project's types (docs/FORMAT.md): "w2g64" -> "W2G64"
    if isinstance(own, str) and own:
        return own.upper()
    ft = md.get("general.file_type")
    if isinstance(ft, int):
        try:
            from gguf import LlamaFileType
            name = LlamaFileType(ft).name
            return name.split("_", 1)[1] if name.startswith(("MOSTLY_", "ALL_")) else name
        except (ImportError, ValueError):
            pass
    # No (known) file type: name it after the type holding most of the matrix bytes.
    by_type = Counter()
    for t in tensors:
        if len(t["shape"]) >= 2:
            by_type[t["type_name"]] += int(t["nbytes"])
    return by_type.most_common(1)[0][0] if by_type else "?"


def describe_model(path: str | os.PathLike) -> ModelInfo:
    from . import _core
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    f = _core.GGUFFile(str(p))
    md, tensors = f.metadata, f.tensors
    arch = str(md.get("general.architecture", "?"))
    n_params = count_params(md, tensors)
    size = sum(int(t["nbytes"]) for t in tensors)
    embd = next((t for t in tensors if t["name"] == "token_embd.weight"), None)
    n_vocab = int(md.get(f"{arch}.vocab_size") or (embd["shape"][-1] if embd else 0))
    label = md.get("general.size_label") or _size_label(n_params)
    return ModelInfo(path=str(p), arch=arch, model_type=f"{arch} {label} {_file_type_name(md, tensors)}",
                     size_bytes=size, n_params=n_params, n_vocab=n_vocab,
                     bytes_per_token=decode_bytes_per_token(tensors))


def cpu_info() -> str:
    """The CPU's model name, as llama-bench's cpu_info column shows it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- statistics ----------------------------------------------------------------------------
def summarize(samples_ns: Sequence[int], n_tokens: int) -> dict:
    """llama-bench's per-row figures: the mean and sample standard deviation of
    the per-repetition times and of the per-repetition tokens/s."""
    ts = [1e9 * n_tokens / ns for ns in samples_ns]
    sd = statistics.stdev if len(samples_ns) > 1 else (lambda _: 0.0)
    return {"avg_ns": int(statistics.mean(samples_ns)), "stddev_ns": int(sd(samples_ns)),
            "avg_ts": statistics.mean(ts), "stddev_ts": sd(ts),
            "samples_ns": [int(x) for x in samples_ns], "samples_ts": ts}


def random_tokens(n: int, n_vocab: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform valid ids, as llama-bench draws them (std::rand() % n_vocab)."""
    return rng.integers(0, n_vocab, size=n, dtype=np.int64)


# ---- measurement ---------------------------------------------------------------------------
class Runner:
    """One loaded model at one thread count, timing prefill and decode."""

    def __init__(self, info: ModelInfo, n_threads: int, n_ctx: int, n_batch: int):
        from . import _core
        self._core = _core
        self.info = info
        self.model = _core.Model(info.path, n_ctx=int(n_ctx), n_threads=int(n_threads), n_batch=int(n_batch))

    @property
    def n_threads(self) -> int:
        return self.model.n_threads

    def prefill_ns(self, tokens: np.ndarray) -> int:
        self.model.reset()
        t0 = time.perf_counter_ns()
        self.model.eval(tokens)
        return time.perf_counter_ns() - t0

    def decode_ns(self, first_token: int, n: int) -> int:
        """n single-token steps from an empty context, all in C++. Greedy with no
        stop ids: a Generator's first step evaluates its one-token prompt, each
        later step the token sampled before, so n steps evaluate n tokens."""
        self.model.reset()
        gen = self._core.Generator(self.model, np.array([first_token], dtype=np.int64), max_tokens=int(n),
                                   stop_ids=[], temperature=0.0, repeat_penalty=1.0, seed=0)
        t0 = time.perf_counter_ns()
        out = gen.run()
        dt = time.perf_counter_ns() - t0
        if len(out) != n:   # cannot happen without stop ids; guard the figure anyway
            raise RuntimeError(f"decode produced {len(out)} tokens instead of {n} ({gen.finish_reason})")
        return dt


def _row(info: ModelInfo, runner: Runner, n_batch: int, n_prompt: int, n_gen: int, samples_ns: list[int]) -> dict:
    from . import __version__, _core
    row = {
        "engine": "minicpm-edge", "version": __version__,
        "cpu_info": cpu_info(), "isa": _core.isa(), "backends": "CPU",
        "model_filename": info.path, "model_type": info.model_type,
        "model_size": info.size_bytes, "model_n_params": info.n_params,
        "n_batch": n_batch, "n_ubatch": n_batch, "n_threads": runner.n_threads,
        "type_k": "f16", "type_v": "f16",
        "n_prompt": n_prompt, "n_gen": n_gen, "n_depth": 0,
        "test_time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    row.update(summarize(samples_ns, n_prompt + n_gen))
    return row


def run_tests(model: str | os.PathLike, threads: Sequence[int | None], n_prompt: Sequence[int],
              n_gen: Sequence[int], reps: int, n_batch: int = 512, seed: int = 0,
              on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """All pp/tg rows of one model file, threads outermost (one load per thread count)."""
    if reps < 1:
        raise ValueError("repetitions (-r) must be >= 1")
    prompts = [p for p in n_prompt if p > 0]
    gens = [n for n in n_gen if n > 0]
    if not prompts and not gens:
        raise ValueError("nothing to measure: every -p and -n is 0")
    info = describe_model(model)
    if info.n_vocab <= 0:
        raise ValueError(f"{model}: cannot tell the vocabulary size")
    n_ctx = max(prompts + gens) + CONTEXT_SLACK
    rng = np.random.default_rng(seed)
    rows = []
    for t in threads:
        runner = Runner(info, n_threads=t or 0, n_ctx=n_ctx, n_batch=n_batch)
        tests = [(p, 0) for p in prompts] + [(0, n) for n in gens]
        for p, n in tests:
            if p:
                runner.prefill_ns(random_tokens(p, info.n_vocab, rng))          # warm-up
                samples = [runner.prefill_ns(random_tokens(p, info.n_vocab, rng)) for _ in range(reps)]
            else:
                runner.decode_ns(int(random_tokens(1, info.n_vocab, rng)[0]), 1)  # warm-up, as llama-bench
                samples = [runner.decode_ns(int(random_tokens(1, info.n_vocab, rng)[0]), n) for _ in range(reps)]
            row = _row(info, runner, n_batch, p, n, samples)
            rows.append(row)
            if on_row:
                on_row(row)
        del runner
    return rows


# ---- output --------------------------------------------------------------------------------
_COLUMNS = [("model", 30, "<"), ("size", 10, ">"), ("params", 10, ">"), ("backend", 10, "<"),
            ("threads", 7, ">"), ("test", 15, ">"), ("t/s", 20, ">")]


def _human_size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.2f} MiB"


def _human_params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def markdown_header() -> str:
    head = "| " + " | ".join(f"{name:{align}{w}}" for name, w, align in _COLUMNS) + " |"
    rule = "| " + " | ".join(("-" * (w - 1) + ":") if align == ">" else "-" * w for _, w, align in _COLUMNS) + " |"
    return head + "\n" + rule


def markdown_row(row: dict) -> str:
    test = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
    cells = [row["model_type"], _human_size(row["model_size"]), _human_params(row["model_n_params"]),
             f"CPU/{row['isa']}", str(row["n_threads"]), test, f"{row['avg_ts']:.2f} ± {row['stddev_ts']:.2f}"]
    return "| " + " | ".join(f"{c:{align}{w}}" for c, (_, w, align) in zip(cells, _COLUMNS)) + " |"


# ---- command line --------------------------------------------------------------------------
def int_list(text: str) -> list[int]:
    """'1,2' -> [1, 2] (argparse type; a bad list is a usage error)."""
    try:
        values = [int(x) for x in str(text).split(",") if x.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"values must be >= 0, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", action="append", default=None,
                   help="GGUF file; repeat or give a comma list (default: the default model)")
    p.add_argument("-t", "--threads", type=int_list, default=None,
                   help="comma list of thread counts (default: physical cores)")
    p.add_argument("-p", "--n-prompt", type=int_list, default=[512], help="prefill lengths, 0 skips (default 512)")
    p.add_argument("-n", "--n-gen", type=int_list, default=[128], help="decode lengths, 0 skips (default 128)")
    p.add_argument("-r", "--repetitions", type=int, default=5, help="timed repetitions per test (default 5)")
    p.add_argument("-b", "--batch-size", type=int, default=512, help="prefill batch size (default 512)")
    p.add_argument("--json", action="store_true", help="print a JSON array of rows (llama-bench's field names)")


def run_cli(a: argparse.Namespace) -> int:
    models = [m for spec in (a.model or []) for m in str(spec).split(",") if m]
    if not models:
        from .hub import default_model_path
        models = [str(default_model_path())]
    if a.threads is not None and 0 in a.threads:
        raise ValueError("thread counts must be >= 1")
    threads = a.threads or [None]
    rows: list[dict] = []
    on_row = None
    if not a.json:
        print(markdown_header(), flush=True)
        on_row = lambda row: print(markdown_row(row), flush=True)   # noqa: E731
    for m in models:
        rows += run_tests(m, threads, a.n_prompt, a.n_gen, a.repetitions, n_batch=a.batch_size, on_row=on_row)
    if a.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0
