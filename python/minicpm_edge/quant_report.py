"""`minicpm-edge quant-report`: quantize one model many ways and judge each file by
perplexity per byte.

For every (type, method) of the sweep the source is converted (a Hugging Face
checkpoint first to F16, once; one calibration run is shared by all calibrated
conversions, so their times exclude it), then the file's size, bits per weight of the
decoder-layer matrices and whole file, perplexity on an evaluation text (the runtime's
default arithmetic, llama.cpp's windowing) and conversion time are recorded. The
results go to ``report.md`` (a table) and ``pareto.png`` (perplexity against size,
with peer points such as llama.cpp's drawn beside ours), plus ``report.json``.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_TYPES = ("w4g64", "w3g64", "w2g64")
DEFAULT_METHODS = ("rtn", "gptq")


@dataclass
class Point:
    label: str          # "w4g64 gptq" or a peer's name
    size_mib: float
    ppl: float
    type: str = ""
    method: str = ""
    bpw_layers: float = math.nan   # bits per weight of the decoder-layer matrices
    bpw_file: float = math.nan     # file bits per model parameter
    seconds: float = math.nan      # conversion time
    path: str = ""
    family: str = ""               # value grids only: integer, minifloat, MX, NVFP4
    element_bits: int = 0          # value grids only: bits of one weight's code


def parse_peer(text: str) -> Point:
    """LABEL:MIB:PPL (e.g. "llama.cpp Q4_0:87.5:22.12")."""
    parts = text.rsplit(":", 2)
    try:
        label, size, ppl = parts[0], float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        raise ValueError(f"--peer {text!r}: expected LABEL:MIB:PPL") from None
    if not label or size <= 0 or ppl <= 0:
        raise ValueError(f"--peer {text!r}: expected a label and positive size and perplexity")
    return Point(label, size, ppl)


def bits_per_weight(path: Path) -> tuple[float, float]:
    """(bits per weight of the decoder-layer matrices, file bits per model parameter).
    A low-bit matrix counts its codes, scales and offsets; parameters are weights, not
    the scale/offset tensors that describe them."""
    from .convert import lowbit
    from .convert.gguf_source import open_gguf

    reader = open_gguf(path)
    groups = lowbit.read_descriptors(reader)
    owner = {part: name for name, t in groups.items() for part in t.part_names(name)}
    n_bytes: dict[str, int] = {}
    n_params: dict[str, int] = {}
    for t in reader.tensors:
        name = owner.get(t.name, t.name)
        n_bytes[name] = n_bytes.get(name, 0) + int(t.n_bytes)
        if name in groups and t.name == name:
            rows, cols = lowbit.matrix_shape(list(reversed(t.shape.tolist())), groups[name])
            n_params[name] = rows * cols
        elif name not in groups:
            n_params[name] = int(t.n_elements)
            if len(t.shape) != 2 or not name.startswith("blk."):
                n_bytes.pop(name)   # not a decoder-layer matrix
    layer = [n for n in n_bytes if n.startswith("blk.")]
    layer_params = sum(n_params[n] for n in layer)
    all_params = sum(n_params.values())
    return (8 * sum(n_bytes[n] for n in layer) / layer_params if layer_params else math.nan,
            8 * path.stat().st_size / all_params if all_params else math.nan)


def run(source: Path, calib: Path, eval_file: Path, out_dir: Path, types=DEFAULT_TYPES, methods=DEFAULT_METHODS,
        ctx: int = 2048, chunks: int | None = 20, calib_windows: int | None = None, calib_ctx: int | None = None,
        n_threads: int | None = None, peers: tuple[Point, ...] = (), progress: bool = True,
        grids: tuple[str, ...] = ()) -> list[Point]:
    from tqdm import tqdm

    from .convert import calibrate, convert, parse_out_type
    from .convert import grids as grids_mod
    from .convert.methods import parse_method
    from .model import Model

    source, out_dir = Path(source), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    types = [parse_out_type(t).name for t in types]
    methods = [parse_method(m) for m in methods]
    grid_list = [grids_mod.grid(g) for g in grids]
    text = Path(eval_file).read_bytes().decode("utf-8")
    calib_text = calibrate.read_text(calib)
    if source.is_dir():   # one F16 file for every conversion and for the calibration run
        source = convert(source, out_dir / f"{source.resolve().name}-f16.gguf", "f16", progress=progress)
    calibration, calib_seconds = None, 0.0
    if any(m != "rtn" for m in methods) and (types or grid_list):
        # Shared by every calibrated conversion; its first pass of layers is captured
        # here, so that the conversion times below leave it out (a model too large for
        # one pass captures the later passes during each conversion).
        t0 = time.perf_counter()
        calibration = calibrate.capture(source, calib_text, n_windows=calib_windows or calibrate.DEFAULT_WINDOWS,
                                        ctx=calib_ctx or calibrate.DEFAULT_CTX, n_threads=n_threads,
                                        progress=progress)
        calibration.for_tensor("blk.0.attn_q.weight")
        calib_seconds = time.perf_counter() - t0
    points = []
    sweep = [(t, m) for t in types for m in methods]
    for typ, method in tqdm(sweep, desc="quant-report", unit="file", disable=not progress):
        path = out_dir / f"{source.stem}-{typ}-{method}.gguf"
        t0 = time.perf_counter()
        convert(source, path, typ, progress=progress, method=method,
                calib=None if method == "rtn" else calib, calibration=None if method == "rtn" else calibration)
        seconds = time.perf_counter() - t0
        model = Model(str(path), n_ctx=ctx, n_threads=n_threads)
        ppl = model.perplexity(text, n_ctx=ctx, n_chunks=chunks, progress=progress)
        del model
        bpw_layers, bpw_file = bits_per_weight(path)
        points.append(Point(f"{typ} {method}", path.stat().st_size / 2**20, ppl, typ, method, bpw_layers, bpw_file,
                            seconds, str(path)))
        log.info("%s %s: %.1f MiB, PPL %.4f", typ, method, points[-1].size_mib, ppl)
    grid_methods = [m for m in methods if m in ("rtn", "gptq")]
    for g, method in tqdm([(g, m) for g in grid_list for m in grid_methods], desc="value grids", unit="grid",
                          disable=not progress):
        ppl, seconds = grids_mod.grid_perplexity(source, g, text, out_dir, calibration if method == "gptq" else None,
                                                 ctx, chunks, n_threads, progress)
        points.append(Point(f"{g.name} {method}", math.nan, ppl, g.name, method, g.bpw, math.nan, seconds,
                            family=g.family, element_bits=g.element_bits))
    extra = {"calibration_seconds": calib_seconds,
             "calibration_tokens": calibration.n_tokens if calibration is not None else 0}
    write_report(out_dir, source, points, list(peers), ctx, chunks, extra)
    return points


def markdown(source: Path, points: list[Point], peers: list[Point], ctx: int, chunks: int | None,
             extra: dict) -> str:
    lines = [f"# Quantization report: {source.name}", "",
             f"Perplexity: ctx {ctx}, {chunks or 'all'} windows. Bits per weight: decoder-layer matrices / "
             "whole file per parameter. Conversion times leave out the shared calibration run "
             f"({extra['calibration_tokens']} tokens, {extra['calibration_seconds']:.0f} s).", "",
             "| type | method | size MiB | bpw (layers) | bpw (file) | PPL | convert s |",
             "|---|---|---|---|---|---|---|"]
    files = [p for p in points if not p.family]
    for p in sorted(files, key=lambda p: p.size_mib):
        lines.append(f"| {p.type} | {p.method} | {p.size_mib:.1f} | {p.bpw_layers:.2f} | {p.bpw_file:.2f} | "
                     f"{p.ppl:.4f} | {p.seconds:.0f} |")
    lines += grid_table([p for p in points if p.family])
    if peers:
        lines += ["", "Peers (given with --peer):", "", "| file | size MiB | PPL |", "|---|---|---|"]
        lines += [f"| {p.label} | {p.size_mib:.1f} | {p.ppl:.4f} |" for p in peers]
    return "\n".join(lines) + "\n"


def grid_table(points: list[Point]) -> list[str]:
    """The value-grid rows and, per element width and method, which family wins."""
    if not points:
        return []
    lines = ["", "Value grids (--grids): each decoder-layer matrix rounded to the grid and run as F32 "
             "(exact arithmetic), so only the values differ; bpw counts the scales.", "",
             "| grid | family | element bits | bpw | method | PPL |", "|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: (-p.element_bits, p.method, p.ppl)):
        lines.append(f"| {p.type} | {p.family} | {p.element_bits} | {p.bpw_layers:.2f} | {p.method} | {p.ppl:.4f} |")
    lines.append("")
    for bits in sorted({p.element_bits for p in points}, reverse=True):
        for method in sorted({p.method for p in points}):
            pts = sorted((p for p in points if p.element_bits == bits and p.method == method), key=lambda p: p.ppl)
            if len({p.family for p in pts}) < 2:
                continue
            best = pts[0]
            rival = next(p for p in pts if p.family != best.family)
            lines.append(f"- {bits} bits, {method}: {best.family} wins ({best.type}, {best.bpw_layers:.2f} bpw, "
                         f"PPL {best.ppl:.4f}) over the best {rival.family} ({rival.type}, "
                         f"{rival.bpw_layers:.2f} bpw, PPL {rival.ppl:.4f}).")
    return lines


def write_report(out_dir: Path, source: Path, points: list[Point], peers: list[Point], ctx: int,
                 chunks: int | None, extra: dict) -> None:
    (out_dir / "report.md").write_text(markdown(source, points, peers, ctx, chunks, extra))
    (out_dir / "report.json").write_text(json.dumps({"source": str(source), "ctx": ctx, "chunks": chunks, **extra,
                                                     "points": [asdict(p) for p in points],
                                                     "peers": [asdict(p) for p in peers]}, indent=1))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no pareto.png (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    files = [p for p in points if not p.family]
    for method in sorted({p.method for p in files}):
        pts = sorted((p for p in files if p.method == method), key=lambda p: p.size_mib)
        ax.plot([p.size_mib for p in pts], [p.ppl for p in pts], "o-", label=f"minicpm-edge {method}")
        for p in pts:
            ax.annotate(p.type, (p.size_mib, p.ppl), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for p in peers:
        ax.plot([p.size_mib], [p.ppl], "s", color="gray")
        ax.annotate(p.label, (p.size_mib, p.ppl), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel("file size (MiB)")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.set_title(f"{source.name}: perplexity vs size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "pareto.png", dpi=120)
    plt.close(fig)
