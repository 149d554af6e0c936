"""Convert Hugging Face checkpoints (or re-type GGUF files) to GGUF.

    from minicpm_edge.convert import convert
    convert("SmolLM2-135M-Instruct/", "smollm2-q8_0.gguf", out_type="q8_0")
    convert("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-w4g64.gguf", out_type="w4g64")

Supported sources: a Hugging Face directory (config.json, *.safetensors,
tokenizer files) of LlamaForCausalLM or MiniCPMForCausalLM, or an existing
.gguf file. Files follow llama.cpp's conventions, so llama.cpp runs them too
(except the project's low-bit types w{b}g{G}[s], which only this runtime reads);
docs/FORMAT.md lists what is written.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import (CheckpointFormatError, ConfigError, ConvertError, MissingConfigError, MissingTensorError,
                     ShapeMismatchError, SourceNotFoundError, UnexpectedTensorError, UnknownOutTypeError,
                     UnsupportedArchitectureError, UnsupportedTypeError)
from .gguf_source import is_gguf, retype_gguf
from .hf_convert import ARCHITECTURES, convert_hf
from .quantize import OUT_TYPES, TYPE_FORMS, parse_out_type, with_head_type

__all__ = [
    "convert", "OUT_TYPES", "TYPE_FORMS", "SUPPORTED_ARCHITECTURES", "parse_out_type",
    "ConvertError", "MissingConfigError", "UnsupportedArchitectureError", "MissingTensorError",
    "UnexpectedTensorError", "ShapeMismatchError", "UnknownOutTypeError", "CheckpointFormatError",
    "ConfigError", "UnsupportedTypeError", "SourceNotFoundError",
]

SUPPORTED_ARCHITECTURES = tuple(sorted(ARCHITECTURES))


def _default_name(src: Path, out_type: str) -> str:
    stem = src.stem if src.is_file() else src.resolve().name
    # "model.Q4_1" -> "model": don't stack type suffixes when re-typing
    stem = re.sub(r"[.-](f32|f16|bf16|q\d_[0-9a-z_]+|w\dg\d+s?)$", "", stem, flags=re.IGNORECASE)
    return f"{stem}-{out_type}.gguf"


def convert(src: str | Path, out: str | Path, out_type: str = "f16", progress: bool = True,
            output_tensor_type: str | None = None) -> Path:
    """Convert ``src`` to a GGUF file and return its path.

    src:      Hugging Face checkpoint directory, or a .gguf file to re-type.
    out:      output file, or an existing directory to put ``<name>-<type>.gguf`` in.
    out_type: f32, f16, bf16, q8_0, q4_0 or q4_1 (norms and 1-D tensors stay f32), or a
              low-bit type w{b}g{G} / w{b}g{G}s (b = 1..4 bits, groups of G = 32/64/128
              inputs, asymmetric / symmetric; RTN) for the decoder-layer matrices, the
              other matrices then being q8_0 -- see docs/FORMAT.md.
    progress: show a progress bar over tensors.
    output_tensor_type: type of the LM head (output.weight, or token_embd.weight when
              the head is tied to it), any ``out_type`` name; None keeps the policy's
              choice (``out_type``; q8_0 for the low-bit types).

    Raises a ConvertError (a ValueError) subclass for bad input.
    """
    kind = with_head_type(parse_out_type(out_type), output_tensor_type)
    src, out = Path(src), Path(out)
    if not src.exists():
        raise SourceNotFoundError(f"{src}: no such file or directory")
    if out.is_dir():
        out = out / _default_name(src, kind.name)
    elif not out.parent.is_dir():
        raise ConvertError(f"{out.parent}: output directory does not exist")

    if src.is_dir():
        return convert_hf(src, out, kind, progress=progress)
    if not is_gguf(src):
        raise CheckpointFormatError(
            f"{src}: neither a Hugging Face checkpoint directory nor a GGUF file")
    return retype_gguf(src, out, kind, progress=progress)
