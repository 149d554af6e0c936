"""Convert Hugging Face checkpoints (or re-type GGUF files) to GGUF.

    from minicpm_edge.convert import convert
    convert("SmolLM2-135M-Instruct/", "smollm2-q8_0.gguf", out_type="q8_0")
    convert("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-w4g64.gguf", out_type="w4g64")
    convert("smollm2-f16.gguf", "smollm2-w4g64-gptq.gguf", out_type="w4g64", method="gptq",
            calib="wikitext-2-valid.txt")

Supported sources: a Hugging Face directory (config.json, *.safetensors,
tokenizer files) of LlamaForCausalLM, MiniCPMForCausalLM or BitNetForCausalLM, or
an existing .gguf file (llama.cpp's ternary TQ1_0 / TQ2_0 included). Files follow llama.cpp's conventions, so llama.cpp runs them too
(except the project's low-bit types w{b}g{G}[s], which only this runtime reads);
docs/FORMAT.md lists what is written.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from gguf import GGMLQuantizationType

from .budget import Budget, choose_recipe, make_budget
from .errors import (CheckpointFormatError, ConfigError, ConvertError, MissingConfigError, MissingTensorError,
                     ShapeMismatchError, SourceNotFoundError, UnexpectedTensorError, UnknownOutTypeError,
                     UnsupportedArchitectureError, UnsupportedTypeError)
from .gguf_source import float_tensors, is_gguf, retype_gguf
from .lowbit import LowBitType
from .minifloat_type import MiniFloatType
from .ternary import TernaryType
from .w8a8 import W8A8Type
from .hf_convert import ARCHITECTURES, convert_hf
from .methods import METHODS, parse_method, quantizer
from .plan import rtn
from .quantize import OUT_TYPES, TYPE_FORMS, OutType, parse_out_type, with_head_type

__all__ = [
    "convert", "OUT_TYPES", "TYPE_FORMS", "METHODS", "SUPPORTED_ARCHITECTURES", "parse_out_type",
    "ConvertError", "MissingConfigError", "UnsupportedArchitectureError", "MissingTensorError",
    "UnexpectedTensorError", "ShapeMismatchError", "UnknownOutTypeError", "CheckpointFormatError",
    "ConfigError", "UnsupportedTypeError", "SourceNotFoundError",
]

SUPPORTED_ARCHITECTURES = tuple(sorted(ARCHITECTURES))


def _default_name(src: Path, out_type: str) -> str:
    stem = src.stem if src.is_file() else src.resolve().name
    # "model.Q4_1" -> "model": don't stack type suffixes when re-typing
    stem = re.sub(r"[.-](f32|f16|bf16|q\d_[0-9a-z_]+|w\dg\d+s?|w8a8|t2|tl3|tq\d_0|e\dm\dg\d+|mxfp\d(_e\dm\d)?|nvfp4)$",
                  "", stem, flags=re.IGNORECASE)
    return f"{stem}-{out_type}.gguf"


def convert(src: str | Path, out: str | Path, out_type: str = "f16", progress: bool = True,
            output_tensor_type: str | None = None, method: str = "rtn", calib: str | Path | None = None,
            calib_windows: int | None = None, calib_ctx: int | None = None,
            n_threads: int | None = None, calibration=None, target_size: str | int | None = None,
            bpw: float | None = None, alpha: float | str = "search") -> Path:
    """Convert ``src`` to a GGUF file and return its path.

    src:      Hugging Face checkpoint directory, or a .gguf file to re-type.
    out:      output file, or an existing directory to put ``<name>-<type>.gguf`` in.
    out_type: f32, f16, bf16, q8_0, q4_0 or q4_1 (norms and 1-D tensors stay f32), or a
              low-bit type w{b}g{G} / w{b}g{G}s (b = 1..4 bits, groups of G = 32/64/128
              inputs, asymmetric / symmetric) for the decoder-layer matrices, the
              other matrices then being q8_0 -- see docs/FORMAT.md; or t2, ternary
              matrices (BitNet b1.58) with q8_0 for the others; or w8a8, int8 weights per
              output row for int8 per-token activations (with method "smoothquant"); or a
              minifloat type (e4m3g32, e2m1g32, ..., mxfp8_e4m3, mxfp6_e2m3, mxfp4, nvfp4:
              FP8/FP6/FP4 codes with block scales, minifloat_type.py) for the decoder-layer
              matrices.
    progress: show progress bars.
    output_tensor_type: type of the LM head (output.weight, or token_embd.weight when
              the head is tied to it), any ``out_type`` name; None keeps the policy's
              choice (``out_type``; q8_0 for the low-bit types).
    method:   how low-bit (and minifloat: rtn or gptq) matrices are quantized: "rtn" (round to nearest), or with
              calibration (``calib``): "gptq", "awq" (activation-aware scales folded into
              the norms, weighted group search) or "awq-gptq" (both); or "smoothquant"
              (smoothquant.py: activation outliers folded into the weights before int8
              quantization) for w8a8 and for the types the runtime multiplies with
              Q8_0-block int8 activations (q8_0, q4_0, q4_1, low-bit types, the latter
              encoded by RTN after the smoothing). The ggml types are always encoded as
              llama.cpp does.
    calib:    calibration text file of the calibrated methods; the model runs ``calib_windows``
              windows (default 128) of ``calib_ctx`` tokens (default 512) of it, or
              what the file holds, on ``n_threads`` threads.
    calibration: a calibration of this GGUF ``src`` made by calibrate.capture, to share
              one run among several conversions (``calib`` is then not read).
    target_size, bpw: a size budget -- a file size ("88MiB", "90MB", bytes as an int) or
              bits per weight over all tensors -- under which each decoder-layer matrix
              and the LM head take the type of budget.LADDER that minimizes the summed
              output error (budget.py); ``out_type`` must then be a low-bit type, which
              the other matrices' policy follows. With rtn, ``calib`` (optional) weighs
              the errors by the calibration activations.
    alpha:    SmoothQuant's migration strength (method "smoothquant"): "search" (the
              default: chosen per layer and input site by the output error on calibration
              tokens of the file's int8 arithmetic, W8A8 or Q8_0 blocks) or a number in
              [0, 1] for every site (the paper's 0.5).

    Raises a ConvertError (a ValueError) subclass for bad input.
    """
    kind = with_head_type(parse_out_type(out_type), output_tensor_type)
    method = parse_method(method)
    limit = make_budget(target_size, bpw)
    if isinstance(kind.lowbit, MiniFloatType) and (method not in ("rtn", "gptq") or limit is not None):
        raise ConvertError(f"{kind.name} is a minifloat type: use --method rtn or gptq and no size budget")
    w8a8 = isinstance(kind.lowbit, W8A8Type)
    if w8a8 and method not in ("smoothquant", "rtn"):
        raise ConvertError("--type w8a8 takes --method smoothquant (or rtn: per-row rounding without smoothing)")
    if method == "smoothquant" and not (w8a8 or _int8_activations(kind)):
        raise ConvertError(f"--method smoothquant smooths the inputs of int8-activation matrices: use --type "
                           f"w8a8, q8_0, q4_0, q4_1 or a low-bit w{{b}}g{{G}} type, not {kind.name}")
    if w8a8 and limit is not None:
        raise ConvertError("a size budget (--target-size / --bpw) chooses among the low-bit types, not w8a8")
    if method == "smoothquant":
        from .smoothquant import parse_alpha
        alpha = parse_alpha(alpha)
    elif (kind.lowbit is not None and not isinstance(kind.lowbit, (LowBitType, W8A8Type, MiniFloatType))
          and (method != "rtn" or limit is not None)):
        raise ConvertError(f"{kind.name} stores ternary matrices, taken as they are or ternarized by absmean "
                           "(BitNet b1.58): use --method rtn and no size budget")
    if limit is not None and kind.lowbit is None:
        raise ConvertError("a size budget (--target-size / --bpw) chooses among the low-bit types: give a "
                           "low-bit --type such as w4g64")
    src, out = Path(src), Path(out)
    if not src.exists():
        raise SourceNotFoundError(f"{src}: no such file or directory")
    if out.is_dir():
        out = out / _default_name(src, kind.name + ("" if method == "rtn" else f"-{method}"))
    elif not out.parent.is_dir():
        raise ConvertError(f"{out.parent}: output directory does not exist")
    if not src.is_dir() and not is_gguf(src):
        raise CheckpointFormatError(
            f"{src}: neither a Hugging Face checkpoint directory nor a GGUF file")
    if method == "smoothquant":
        return _convert_smoothquant(src, out, kind, calib, calib_windows, calib_ctx, n_threads, progress, alpha,
                                    limit)
    if method == "rtn" and limit is None:
        if calib is not None:
            raise ConvertError("--calib is only used by the calibrated methods (gptq, awq, awq-gptq)")
        if src.is_dir():
            return convert_hf(src, out, kind, progress=progress)
        return retype_gguf(src, out, kind, progress=progress)
    return _convert_calibrated(src, out, kind, method, calib, calib_windows, calib_ctx, n_threads, progress,
                               calibration, limit)


def _architecture(path: Path) -> str:
    from .gguf_source import open_gguf
    field = open_gguf(path).get_field("general.architecture")
    return str(field.contents()) if field is not None else ""


def _head_counts(path: Path) -> tuple[int, int]:
    """(query heads, KV heads) of a GGUF file."""
    from .gguf_source import open_gguf
    reader = open_gguf(path)
    arch = str(reader.get_field("general.architecture").contents())
    values = []
    for key in (f"{arch}.attention.head_count", f"{arch}.attention.head_count_kv"):
        field = reader.get_field(key)
        values.append(int(field.contents()) if field is not None else 0)
    return values[0], values[1] or values[0]


def _int8_activations(kind: OutType) -> bool:
    """Whether the runtime's default arithmetic multiplies ``kind``'s decoder-layer
    matrices with int8 activations (the ones smoothing helps): Q8_0 / Q4_0 / Q4_1
    (Q8_0-block activations, llama.cpp's arithmetic) and the low-bit types."""
    if kind.lowbit is not None:
        return isinstance(kind.lowbit, LowBitType)
    return kind.qtype in (GGMLQuantizationType.Q8_0, GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_1)


def _convert_smoothquant(src: Path, out: Path, kind: OutType, calib, windows, ctx, n_threads, progress: bool,
                         alpha, limit: Budget | None = None) -> Path:
    """SmoothQuant (smoothquant.py): the smoothing of a float GGUF of ``src`` (``src``
    itself, or an F16 conversion of a Hugging Face checkpoint in a temporary file),
    folded into the norms and V / up rows as the file is re-typed: to W8A8, or to a
    type with Q8_0-block activations (the alpha search then simulates those), whose
    matrices a size budget may choose among the low-bit ladder (budget.py, errors
    of the smoothed weights) before RTN encodes them."""
    import logging
    from . import calibrate, smoothquant
    if calib is None:
        raise ConvertError("method smoothquant needs a calibration text file (--calib FILE)")
    text = calibrate.read_text(calib)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".calib-") as tmp:
        float_src = src
        if src.is_dir():
            float_src = convert_hf(src, Path(tmp) / "float.gguf", OUT_TYPES["f16"], progress=progress)
        if _architecture(float_src) == "bitnet":
            raise ConvertError("SmoothQuant folds its scales into the norm or projection before each matrix; "
                               "BitNet's sub-norms sit in between: convert BitNet to t2 / tl3")
        stats = smoothquant.capture(float_src, text, n_windows=windows or calibrate.DEFAULT_WINDOWS,
                                    ctx=ctx or calibrate.DEFAULT_CTX, n_threads=n_threads, progress=progress,
                                    sample_tokens=smoothquant.SAMPLE_TOKENS if alpha == "search" else 0)
        n_head, n_head_kv = _head_counts(float_src)
        arithmetic = "w8a8" if isinstance(kind.lowbit, W8A8Type) else "q8"
        smoothing = smoothquant.SmoothQuant(stats, float_tensors(float_src), n_head, n_head_kv, alpha,
                                            arithmetic=arithmetic)
        try:
            if limit is not None:
                kind = choose_recipe(float_src, kind, limit, rtn, None, smoothing, progress=progress)
            return retype_gguf(float_src, out, kind, progress=progress, rewrite=smoothing)
        finally:
            logging.getLogger(__name__).info("SmoothQuant alphas: %s", smoothing.summary())
            del smoothing


def _convert_calibrated(src: Path, out: Path, kind: OutType, method: str, calib, windows, ctx, n_threads,
                        progress: bool, cal=None, limit: Budget | None = None) -> Path:
    """Calibrate on a float GGUF of ``src`` (``src`` itself, or an F16 conversion of a
    Hugging Face checkpoint in a temporary file), choose the types a size budget
    allows, then re-type it with the method. RTN calibrates only when ``calib`` is
    given (a budget's errors are then weighted by the activations)."""
    from . import calibrate
    if method != "rtn" and kind.lowbit is None and not isinstance(kind.head, (LowBitType, MiniFloatType)):
        raise ConvertError(f"method {method} quantizes the low-bit types (w{{b}}g{{G}}[s]); {kind.name} is "
                           "encoded as llama.cpp does, use --method rtn")
    if cal is not None and src.is_dir():
        raise ConvertError("a shared calibration needs a GGUF source (convert the checkpoint to f16 first)")
    if cal is None and calib is None and method != "rtn":
        raise ConvertError(f"method {method} needs a calibration text file (--calib FILE)")
    text = calibrate.read_text(calib) if cal is None and calib is not None else None
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".calib-") as tmp:
        float_src = src
        if src.is_dir():
            float_src = convert_hf(src, Path(tmp) / "float.gguf", OUT_TYPES["f16"], progress=progress)
        if method.startswith("awq") and _architecture(float_src) == "bitnet":
            raise ConvertError("AWQ folds its input scales into the norm or projection before each matrix; "
                               "BitNet's sub-norms sit in between, so it would change the model: use gptq or rtn")
        if cal is None and text is not None:
            # Captured lazily, a pass of layers at a time, as the writer reaches them.
            cal = calibrate.capture(float_src, text, n_windows=windows or calibrate.DEFAULT_WINDOWS,
                                    ctx=ctx or calibrate.DEFAULT_CTX, n_threads=n_threads, progress=progress)
        quantize, rewrite = quantizer(method, cal, float_tensors(float_src), kind.lowbit or kind.head)
        try:
            if limit is not None:
                kind = choose_recipe(float_src, kind, limit, quantize, cal, rewrite, progress=progress)
            return retype_gguf(float_src, out, kind, progress=progress, quantize=quantize, rewrite=rewrite)
        finally:
            # They map the temporary file (the calibration model, the float reader);
            # release them before the directory is removed.
            del cal, quantize, rewrite
