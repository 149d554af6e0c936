"""`minicpm-edge` command line: run, chat, convert, perplexity, quant-report, info, bench."""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", help="GGUF file (default: SmolLM2-135M-Instruct, downloaded on first use)")
    p.add_argument("-t", "--threads", type=int, default=None, help="worker threads (default: physical cores)")
    p.add_argument("-c", "--ctx", type=int, default=0, help="context size in tokens (default: min(train, 4096))")


def _add_sampling_args(p: argparse.ArgumentParser, temp: float) -> None:
    p.add_argument("-n", "--max-tokens", type=int, default=256, help="tokens to generate (default 256)")
    p.add_argument("--temp", type=float, default=temp, help=f"temperature; 0 = greedy (default {temp})")
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--min-p", type=float, default=0.05)
    p.add_argument("--repeat-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)


def _sampling(a) -> dict:
    return dict(temperature=a.temp, top_k=a.top_k, top_p=a.top_p, min_p=a.min_p,
                repeat_penalty=a.repeat_penalty, seed=a.seed)


def _load(a):
    from .model import Model
    return Model(a.model, n_ctx=a.ctx, n_threads=a.threads)


def cmd_run(a) -> int:
    m = _load(a)
    t0, n = time.perf_counter(), 0
    for piece in m.generate(a.prompt, max_tokens=a.max_tokens, stream=True, **_sampling(a)):
        sys.stdout.write(piece)
        sys.stdout.flush()
        n += 1
    sys.stdout.write("\n")
    if a.verbose:
        print(f"[{n} pieces in {time.perf_counter() - t0:.2f} s]", file=sys.stderr)
    return 0


def cmd_chat(a) -> int:
    m = _load(a)
    history = [{"role": "system", "content": a.system}] if a.system else []
    print("Chatting with", Path(m.model_path).name, "- empty line or Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip() or line.strip() in ("/exit", "/quit"):
            break
        history.append({"role": "user", "content": line})
        reply = []
        for piece in m.chat(history, max_tokens=a.max_tokens, stream=True, **_sampling(a)):
            sys.stdout.write(piece)
            sys.stdout.flush()
            reply.append(piece)
        sys.stdout.write("\n")
        history.append({"role": "assistant", "content": "".join(reply)})
    return 0


def _out_type(text: str) -> str:
    """argparse type of convert --type: the converter's own parser, so the CLI and the
    library accept the same names (f32 .. q4_1 and the low-bit w{b}g{G}[s])."""
    from .convert import ConvertError, parse_out_type
    try:
        return parse_out_type(text).name
    except ConvertError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_convert(a) -> int:
    from .convert import convert
    out = convert(a.source, a.output, out_type=a.type, output_tensor_type=a.output_tensor_type,
                  progress=not a.quiet, method=a.method, calib=a.calib, calib_windows=a.calib_windows,
                  calib_ctx=a.calib_ctx, n_threads=a.threads, target_size=a.target_size, bpw=a.bpw,
                  alpha=a.alpha)
    print(f"wrote {out} ({Path(out).stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    if a.target_size is not None or a.bpw is not None:
        from .convert.budget import describe
        print(f"types: {describe(Path(out))}", file=sys.stderr)
    return 0


def cmd_quant_report(a) -> int:
    from . import quant_report
    peers = tuple(quant_report.parse_peer(p) for p in a.peer)
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()]   # noqa: E731
    quant_report.run(Path(a.model), Path(a.calib), Path(a.eval), Path(a.output), split(a.types), split(a.methods),
                     ctx=a.ctx, chunks=a.chunks or None, calib_windows=a.calib_windows, calib_ctx=a.calib_ctx,
                     n_threads=a.threads, peers=peers, progress=not a.quiet, grids=split(a.grids))
    print(f"wrote {Path(a.output) / 'report.md'}", file=sys.stderr)
    return 0


def cmd_perplexity(a) -> int:
    m = _load(argparse.Namespace(model=a.model, ctx=max(a.ctx, 0), threads=a.threads))
    # The bytes as they are (CRLF kept), as llama.cpp's perplexity tool reads them.
    try:
        text = Path(a.file).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{a.file} is not UTF-8 text ({e})") from None
    t0 = time.perf_counter()
    ppl = m.perplexity(text, n_ctx=a.ctx, n_chunks=a.chunks, progress=True)
    print(f"Final estimate: PPL = {ppl:.4f}  ({time.perf_counter() - t0:.1f} s, ctx {a.ctx}, "
          f"chunks {a.chunks or 'all'})")
    return 0


LOWBIT_KEY = "minicpm_edge.lowbit."   # docs/FORMAT.md: one [bits, group, has_min] descriptor per matrix
TERNARY_KEY = "minicpm_edge.ternary."  # docs/FORMAT.md: one [layout] descriptor per ternary matrix
W8A8_KEY = "minicpm_edge.w8a8."        # docs/FORMAT.md: one [8, 8] descriptor per W8A8 matrix
MINIFLOAT_KEY = "minicpm_edge.minifloat."  # docs/FORMAT.md: one [E, M, block, scaling] per minifloat matrix


def descriptor_matrix(key: str, value) -> tuple[str, str] | None:
    """(matrix name, type name: "w2g64", "w4g128s", "t2", "tl3", "w8a8") of one project-format descriptor key."""
    if key.startswith(LOWBIT_KEY) and isinstance(value, list) and len(value) == 3:
        bits, group, has_min = (int(x) for x in value)
        return key[len(LOWBIT_KEY):], f"w{bits}g{group}" + ("" if has_min else "s")
    if key.startswith(MINIFLOAT_KEY) and isinstance(value, list):
        from .convert.minifloat_type import type_from_descriptor
        t = type_from_descriptor(value)
        return None if t is None else (key[len(MINIFLOAT_KEY):], t.name)
    if key.startswith(TERNARY_KEY) and value == [2]:
        return key[len(TERNARY_KEY):], "t2"
    if key.startswith(TERNARY_KEY) and isinstance(value, list) and len(value) == 3 and value[0] == 3:
        return key[len(TERNARY_KEY):], "tl3"
    if key.startswith(W8A8_KEY) and value == [8, 8]:
        return key[len(W8A8_KEY):], "w8a8"
    return None


def lowbit_matrices(metadata: dict) -> dict[str, str]:
    """Matrix name -> low-bit or ternary type name from the file's descriptors."""
    return dict(m for m in (descriptor_matrix(k, v) for k, v in metadata.items()) if m is not None)


def tensor_kinds(tensors: list[dict], metadata: dict) -> dict[str, str]:
    """Tensor name -> what `info` groups it under: its ggml type, or the low-bit type
    of the matrix whose codes, scales or offsets it holds."""
    kinds = {t["name"]: t["type_name"] for t in tensors}
    for matrix, kind in lowbit_matrices(metadata).items():
        for name in (matrix, matrix + ".scale", matrix + ".min", matrix + ".tensor_scale"):
            if name in kinds:
                kinds[name] = kind
    return kinds


def cmd_info(a) -> int:
    from . import _core
    path = a.model
    if path is None:
        from .hub import default_model_path
        path = default_model_path()
    f = _core.GGUFFile(str(path))
    print(f"file: {path}  ({f.file_size / 2**20:.1f} MiB, GGUF v{f.version})")
    print(f"kernel ISA: {_core.isa()}  (available: {', '.join(_core.supported_isas())})")
    print("metadata:")
    lowbit = lowbit_matrices(f.metadata)
    summarized = False
    for k, v in f.metadata.items():
        if descriptor_matrix(k, v) is not None and not a.tensors:
            if not summarized:   # one line for all descriptors; --tensors shows each
                counts = Counter(lowbit.values()).most_common()
                prefixes = [p + "*" for p in (LOWBIT_KEY, TERNARY_KEY, W8A8_KEY, MINIFLOAT_KEY)
                            if any(m.startswith(p) for m in f.metadata)]
                print(f"  {' / '.join(prefixes)} = {len(lowbit)} matrices: "
                      f"{', '.join(f'{n} {t}' for t, n in counts)}")
                summarized = True
            continue
        if isinstance(v, list):
            shown = f"[{len(v)} items: {', '.join(repr(x) for x in v[:3])}{', ...' if len(v) > 3 else ''}]"
        elif isinstance(v, str) and len(v) > 80:
            shown = repr(v[:77] + "...")
        else:
            shown = repr(v)
        print(f"  {k} = {shown}")
    tensors = f.tensors
    kinds = tensor_kinds(tensors, f.metadata)
    by_type = Counter()
    size_by_type = Counter()
    for t in tensors:
        kind = kinds[t["name"]]
        # a low-bit matrix counts once, with the bytes of its codes, scales and offsets
        by_type[kind] += kind not in lowbit.values() or t["name"] in lowbit
        size_by_type[kind] += t["nbytes"]
    print(f"tensors: {len(tensors)}" + (f" ({len(lowbit)} low-bit / ternary / minifloat matrices of 2-3 tensors each)"
                                        if lowbit else ""))
    for name, count in by_type.most_common():
        unit = "matrices" if name in lowbit.values() else "tensors "
        print(f"  {name:8s} {count:4d} {unit}  {size_by_type[name] / 2**20:9.2f} MiB")
    if a.tensors:
        for t in tensors:
            kind = kinds[t["name"]]
            shown = t["type_name"] if kind == t["type_name"] else f"{t['type_name']}:{kind}"
            print(f"  {t['name']:40s} {shown:9s} {str(t['shape']):>20s} {t['nbytes']:>12d}")
    return 0


def cmd_bench(a) -> int:
    from .bench import run_cli
    return run_cli(a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minicpm-edge", description="On-device LLM runtime for GGUF models.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="complete a prompt, streaming the text")
    r.add_argument("prompt")
    _add_model_args(r)
    _add_sampling_args(r, temp=0.8)
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("chat", help="interactive chat using the model's chat template")
    _add_model_args(c)
    _add_sampling_args(c, temp=0.2)
    c.add_argument("-s", "--system", default=None, help="system prompt")
    c.set_defaults(func=cmd_chat)

    v = sub.add_parser("convert", help="convert a Hugging Face checkpoint or re-type a GGUF file")
    v.add_argument("source", help="Hugging Face model directory or .gguf file")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("--type", default="f16", type=_out_type, metavar="TYPE",
                   help="tensor type of the matrices (default f16): f32, f16, bf16, q8_0, q4_0, q4_1, or the "
                        "low-bit w{b}g{G} (asymmetric) / w{b}g{G}s (symmetric) with b = 1..4 bits and groups of "
                        "G = 32, 64 or 128 inputs, e.g. w2g64 (RTN; decoder-layer matrices only, the rest q8_0; "
                        "read by this runtime's table-lookup kernels, not by llama.cpp); or w8a8, int8 weights "
                        "per output channel run with int8 activations per token (with --method smoothquant); or a "
                        "minifloat: e4m3g32, e5m2g32, e3m2g32, e2m3g32, e2m1g32 (f16 scale per group; also "
                        "g16/g64/g128), mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4 (OCP MX) or nvfp4 "
                        "(rtn or gptq)")
    v.add_argument("--output-tensor-type", default=None, type=_out_type, metavar="TYPE",
                   help="type of the LM head (output.weight, or token_embd.weight when the head is tied to "
                        "it), any TYPE above; default: as --type, q8_0 for the low-bit types")
    v.add_argument("--method", default="rtn", choices=("rtn", "gptq", "awq", "awq-gptq", "smoothquant"),
                   help="how low-bit matrices are quantized (default rtn): rtn rounds each group to nearest; "
                        "gptq minimizes each layer's output error on calibration text; awq scales loud input "
                        "channels up before rounding; awq-gptq does both; smoothquant (--type w8a8, q8_0, q4_0, q4_1 "
                        "or w{b}g{G}) moves the activations' outlier channels into the weights before int8 "
                        "rounding (all but rtn need --calib)")
    v.add_argument("--alpha", default="search", metavar="A",
                   help="SmoothQuant's migration strength: 'search' (default) chooses it per layer and input by "
                        "the output error of the file's int8 arithmetic on calibration tokens; a number in [0, 1] fixes it (the paper's "
                        "0.5)")
    budget = v.add_mutually_exclusive_group()
    budget.add_argument("--target-size", metavar="SIZE", default=None,
                        help="mixed precision: the file size to fit (e.g. 88MiB, 90MB, 1.5G); each decoder-layer "
                             "matrix and the LM head get the type among w2g64, w3g64, w4g64, w4g32, q8_0 (and f16 "
                             "for the head) that keeps the summed output error least; needs a low-bit --type")
    budget.add_argument("--bpw", type=float, default=None, metavar="B",
                        help="mixed precision as --target-size, with the budget given as bits per weight over "
                             "all tensors")
    v.add_argument("--calib", metavar="FILE", default=None,
                   help="calibration text file (UTF-8) of the calibrated methods; with rtn and a budget, it "
                        "weighs the errors the budget compares")
    v.add_argument("--calib-windows", type=int, default=None, metavar="N",
                   help="calibration windows to run (default 128, or what the file holds)")
    v.add_argument("--calib-ctx", type=int, default=None, metavar="TOKENS",
                   help="tokens per calibration window (default 512)")
    v.add_argument("-t", "--threads", type=int, default=None, help="threads of the calibration run")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_convert)

    q = sub.add_parser("perplexity", help="perplexity of a text file (llama.cpp's method)")
    q.add_argument("-m", "--model")
    q.add_argument("-f", "--file", required=True)
    q.add_argument("-c", "--ctx", type=int, default=2048)
    q.add_argument("--chunks", type=int, default=None)
    q.add_argument("-t", "--threads", type=int, default=None)
    q.set_defaults(func=cmd_perplexity)

    i = sub.add_parser("info", help="metadata, tensor types and sizes of a GGUF file")
    i.add_argument("-m", "--model")
    i.add_argument("--tensors", action="store_true", help="list every tensor")
    i.set_defaults(func=cmd_info)

    r = sub.add_parser("quant-report", help="quantize a model several ways; table and plot of size vs perplexity")
    r.add_argument("-m", "--model", required=True, help="source: Hugging Face directory or GGUF file (float)")
    r.add_argument("--calib", required=True, metavar="FILE", help="calibration text (e.g. wikitext-2 valid)")
    r.add_argument("--eval", required=True, metavar="FILE", help="evaluation text (e.g. wikitext-2 test)")
    r.add_argument("-o", "--output", default="quant-report", help="directory for the files and the report")
    r.add_argument("--types", default="w4g64,w3g64,w2g64", help="comma-separated --type values")
    r.add_argument("--methods", default="rtn,gptq", help="comma-separated methods (rtn, gptq, awq, awq-gptq)")
    r.add_argument("--grids", default="", metavar="LIST",
                   help="comma-separated value grids to compare (integer vs minifloat, MX, NVFP4), e.g. "
                        "int8g32s,e4m3g32,int4g32s,e2m1g32,mxfp4,nvfp4: each evaluated as F32 values under the "
                        "rtn/gptq of --methods (see minicpm_edge.convert.grids)")
    r.add_argument("-c", "--ctx", type=int, default=2048, help="perplexity window (default 2048)")
    r.add_argument("--chunks", type=int, default=20, help="perplexity windows (default 20; 0 = all)")
    r.add_argument("--calib-windows", type=int, default=None, metavar="N")
    r.add_argument("--calib-ctx", type=int, default=None, metavar="TOKENS")
    r.add_argument("--peer", action="append", default=[], metavar="LABEL:MIB:PPL",
                   help="a point to draw beside ours, e.g. 'llama.cpp Q4_0:87.5:22.12' (repeatable)")
    r.add_argument("-t", "--threads", type=int, default=None)
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_quant_report)

    from .bench import add_arguments as add_bench_arguments
    b = sub.add_parser("bench", help="prefill and decode tokens/s, measured as llama-bench does")
    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    import logging
    logging.basicConfig(level=logging.WARNING, format="minicpm-edge: %(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, NotImplementedError, RuntimeError) as e:
        print(f"minicpm-edge: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
