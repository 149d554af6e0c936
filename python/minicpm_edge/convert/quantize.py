"""Which ggml type each tensor is stored as, and the encoding itself.

Policy (same as llama.cpp's convert_hf_to_gguf.py, prepare_tensors):
- 1-D tensors and every ``*_norm.weight`` stay F32: they are tiny and llama.cpp's
  kernels for them only take F32.
- every other tensor, token_embd and output included, gets the requested type.
- a tensor whose row length (ggml ne[0], numpy's last axis) is not a multiple of
  the type's block size cannot be block-quantized; it falls back to F16, as
  llama.cpp does on ``gguf.QuantError``.
Encoding is ``gguf.quants.quantize``, the pure-numpy reference that gguf-py
tests bit-exact against libggml.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType, quants

from .errors import UnknownOutTypeError

log = logging.getLogger(__name__)

Q = GGMLQuantizationType


@dataclass(frozen=True)
class OutType:
    name: str                   # as the user spells it: "q4_0"
    qtype: GGMLQuantizationType  # type of the quantized tensors
    file_type: LlamaFileType    # general.file_type


OUT_TYPES: dict[str, OutType] = {
    "f32": OutType("f32", Q.F32, LlamaFileType.ALL_F32),
    "f16": OutType("f16", Q.F16, LlamaFileType.MOSTLY_F16),
    "bf16": OutType("bf16", Q.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": OutType("q8_0", Q.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": OutType("q4_0", Q.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "q4_1": OutType("q4_1", Q.Q4_1, LlamaFileType.MOSTLY_Q4_1),
}


def parse_out_type(name: str) -> OutType:
    key = str(name).strip().lower()
    if key not in OUT_TYPES:
        raise UnknownOutTypeError(f"unknown output type {name!r}; choose one of: {', '.join(OUT_TYPES)}")
    return OUT_TYPES[key]


def keeps_f32(gguf_name: str, shape: Sequence[int]) -> bool:
    return len(shape) <= 1 or gguf_name.endswith("_norm.weight")


def choose_type(gguf_name: str, shape: Sequence[int], out: OutType) -> GGMLQuantizationType:
    """The ggml type ``gguf_name`` (numpy-order ``shape``) is written as."""
    if keeps_f32(gguf_name, shape):
        return Q.F32
    block = GGML_QUANT_SIZES[out.qtype][0]
    if shape[-1] % block != 0:
        log.warning("%s: row length %d is not a multiple of %d, storing F16 instead of %s",
                    gguf_name, shape[-1], block, out.qtype.name)
        return Q.F16
    return out.qtype


def nbytes(shape: Sequence[int], qtype: GGMLQuantizationType) -> int:
    block, type_size = GGML_QUANT_SIZES[qtype]
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    return n // block * type_size


def encode(values: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """float32 values -> the bytes (or F32/F16 array) stored in the file."""
    return quants.quantize(np.ascontiguousarray(values, dtype=np.float32), qtype)
