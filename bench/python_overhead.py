"""Python overhead of streaming generation: tokens/s of `Model.generate(stream=True)`
against the same generation run as one C++ loop with no Python per token
(`_core.Generator.run`).

Both paths generate from the same prompt ids with greedy sampling, the same stop
ids (the model's end-of-generation set) and the same max_tokens on a fresh
context; the runs alternate and the figure is the ratio of the medians. The
Python path does per token what an application sees: a generator step across
the GIL, incremental detokenization, stop-string filtering. Generation must run
the full max_tokens on both paths (else the two would time different work), so a
prompt is picked for which greedy decoding does not reach an end-of-generation
token; the texts of both paths are checked to be identical.

On a shared machine the A/B ratio is noisy (several percent between runs), so
the overhead is also decomposed: the Python work per token, timed with the
compute replaced by a replay of the same tokens, plus the cost of one
Python -> C++ call, against the C++ loop's time per token gives
estimated_ratio = 1 / (1 + (python + call) x C++ tokens/s).

    python bench/python_overhead.py [-m model.gguf] [-t 1,2] [-n 128] [-r 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

# Prompts tried in turn until one generates max_tokens without an
# end-of-generation token under greedy decoding. Single words first: with a
# one-token prompt every timed step is a one-token decode step, so prompt
# prefill does not dilute the overhead.
PROMPTS = ["The", "Once", "In", "def", "1", "The history of the city begins", "Once upon a time, in a small village,",
           "1, 2, 3, 4, 5,"]


def _cpp_run(model, ids: list[int], n_tokens: int) -> tuple[float, list[int]]:
    from minicpm_edge import _core
    model.reset()
    gen = _core.Generator(model._core, ids, max_tokens=n_tokens, stop_ids=sorted(model.tokenizer.eog_ids),
                          temperature=0.0, repeat_penalty=1.0, seed=0)
    t0 = time.perf_counter()
    out = gen.run()
    return time.perf_counter() - t0, out


def _python_run(model, ids: list[int], n_tokens: int) -> tuple[float, str]:
    model.reset()
    t0 = time.perf_counter()
    pieces = [p for p in model.generate(ids, max_tokens=n_tokens, temperature=0.0, seed=0, stream=True)]
    return time.perf_counter() - t0, "".join(pieces)


class _Replay:
    """Stands in for the C++ Generator: hands out given tokens with no compute."""

    def __init__(self, tokens: list[int]):
        self._it = iter(tokens)
        self.finish_reason = "length"

    def next(self) -> int:
        return next(self._it, -1)


def python_cost_per_token(model, ids: list[int], tokens: list[int], reps: int = 5) -> float:
    """Seconds of Python work per token in generate(stream=True) -- detokenization,
    stop strings, the generator frames -- timed with the model's compute replaced by
    a replay of `tokens` (best of reps: the least-disturbed estimate)."""
    best, made = float("inf"), []

    def replay(*_args, **_kwargs) -> _Replay:
        made.append(_Replay(tokens))
        return made[-1]

    try:
        model._generator = replay   # an instance attribute shadows Model._generator
        for _ in range(reps):
            t0 = time.perf_counter()
            for _piece in model.generate(ids, max_tokens=len(tokens), temperature=0.0, stream=True):
                pass
            best = min(best, time.perf_counter() - t0)
    finally:
        del model._generator
    if len(made) != reps:   # Model's internals changed: the figure would include compute
        raise RuntimeError("Model.generate no longer goes through Model._generator; update python_overhead.py")
    return best / len(tokens)


def binding_cost_per_call(model, calls: int = 20000) -> float:
    """Seconds per Generator.next() call that does no compute (a finished
    generator): the Python -> C++ crossing with its GIL release and re-acquire."""
    from minicpm_edge import _core
    gen = _core.Generator(model._core, [0], max_tokens=0, stop_ids=[], temperature=0.0)
    gen.next()
    t0 = time.perf_counter()
    for _ in range(calls):
        gen.next()
    return (time.perf_counter() - t0) / calls


def pick_prompt(model, n_tokens: int) -> tuple[list[int], list[int], str]:
    """Prompt ids for which greedy generation runs n_tokens, its tokens and text."""
    for text in PROMPTS:
        ids = model.tokenize(text)
        if not ids:
            continue
        _, out = _cpp_run(model, ids, n_tokens)
        if len(out) == n_tokens:
            return ids, out, model.detokenize(out)
    raise RuntimeError(f"every candidate prompt reaches an end-of-generation token within {n_tokens} greedy "
                       "tokens; Model.generate needs an option to ignore EOS for this measurement")


def measure(model_path: str, threads: int, n_tokens: int = 128, reps: int = 5, log=print) -> dict:
    from minicpm_edge import Model
    model = Model(model_path, n_ctx=max(512, n_tokens + 64), n_threads=threads)
    ids, tokens, expected = pick_prompt(model, n_tokens)
    for _ in range(2):   # warm-up both paths
        _cpp_run(model, ids, n_tokens)
        _python_run(model, ids, n_tokens)
    cpp_ts, py_ts = [], []
    for r in range(reps):
        order = ("cpp", "py") if r % 2 == 0 else ("py", "cpp")
        for which in order:
            if which == "cpp":
                dt, out = _cpp_run(model, ids, n_tokens)
                if len(out) != n_tokens:
                    raise RuntimeError(f"C++ loop stopped after {len(out)} tokens")
                cpp_ts.append(n_tokens / dt)
            else:
                dt, text = _python_run(model, ids, n_tokens)
                if text != expected:   # same tokens <=> same text; a shorter run would differ
                    raise RuntimeError("Model.generate produced a different text than the C++ loop")
                py_ts.append(n_tokens / dt)
    ratio = statistics.median(py_ts) / statistics.median(cpp_ts)
    # The A/B ratio above carries the machine's noise; the decomposition below does
    # not: Python's own cost per token against the C++ loop's time per token.
    py_cost = python_cost_per_token(model, ids, tokens)
    call_cost = binding_cost_per_call(model)
    estimated = 1.0 / (1.0 + (py_cost + call_cost) * statistics.median(cpp_ts))
    row = {"threads": model.n_threads, "n_tokens": n_tokens, "prompt_tokens": len(ids),
           "cpp_ts": cpp_ts, "python_ts": py_ts, "cpp_ts_median": statistics.median(cpp_ts),
           "python_ts_median": statistics.median(py_ts), "ratio": ratio,
           "python_us_per_token": py_cost * 1e6, "binding_us_per_call": call_cost * 1e6,
           "estimated_ratio": estimated}
    log(f"python overhead  t={row['threads']}  C++ loop {row['cpp_ts_median']:7.1f} t/s   "
        f"generate(stream=True) {row['python_ts_median']:7.1f} t/s   ratio {ratio:.3f}   "
        f"(Python {py_cost * 1e6:.1f} us + call {call_cost * 1e6:.1f} us per token: {estimated:.4f})")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=None, help="GGUF file (default: the default model)")
    ap.add_argument("-t", "--threads", default="1,2")
    ap.add_argument("-n", "--n-tokens", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=5)
    a = ap.parse_args()
    if a.model is None:
        from minicpm_edge.hub import default_model_path
        a.model = str(default_model_path())
    for t in [int(x) for x in a.threads.split(",")]:
        measure(a.model, t, a.n_tokens, a.reps)


if __name__ == "__main__":
    main()
