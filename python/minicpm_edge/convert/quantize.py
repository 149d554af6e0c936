"""Which type each tensor is stored as, and the encoding of the ggml types.

Policy for the ggml types (same as llama.cpp's convert_hf_to_gguf.py, prepare_tensors):
- 1-D tensors and every ``*_norm.weight`` stay F32: they are tiny and llama.cpp's
  kernels for them only take F32.
- every other tensor, token_embd and output included, gets the requested type.
- a tensor whose row length (ggml ne[0], numpy's last axis) is not a multiple of
  the type's block size cannot be block-quantized; it falls back to F16, as
  llama.cpp does on ``gguf.QuantError``.
Policy for the low-bit types ``w{b}g{G}[s]`` and the ternary ``t2`` (docs/FORMAT.md): the
2-D weights of the decoder layers (``blk.N.*``) whose row length is a multiple of G (t2:
128) get that format; token_embd, output and any other matrix get Q8_0 (heads and embeddings need
the precision), with the same F16 fallback; norms and 1-D tensors stay F32.
``--output-tensor-type`` (llama-quantize's option of that name) overrides the LM
head's type: output.weight, or token_embd.weight when the head is tied to it (as
llama.cpp does). It may be any type above, low-bit included.
Encoding is ``gguf.quants.quantize``, the pure-numpy reference that gguf-py
tests bit-exact against libggml; the low-bit encoding is in lowbit.py.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType, quants

from .errors import UnknownOutTypeError
from .lowbit import FORMS as LOWBIT_FORMS
from .lowbit import LowBitType, all_types, parse_lowbit
from .minifloat_type import FORMS as MINIFLOAT_FORMS
from .minifloat_type import MiniFloatType
from .minifloat_type import all_types as minifloat_types
from .ternary import TYPES as TERNARY_TYPES, TernaryType
from .w8a8 import TYPES as W8A8_TYPES, W8A8Type

log = logging.getLogger(__name__)

Q = GGMLQuantizationType


@dataclass(frozen=True)
class OutType:
    name: str                   # as the user spells it: "q4_0", "w2g64"
    qtype: GGMLQuantizationType  # type of the quantized tensors (low-bit: of the matrices that stay ggml)
    file_type: LlamaFileType | None  # general.file_type; None for the project's own types
    # the type of the decoder-layer matrices when it differs from qtype: low-bit
    # w{b}g{G}[s], ternary t2, or llama.cpp's ternary TQ1_0 / TQ2_0
    lowbit: LowBitType | TernaryType | W8A8Type | MiniFloatType | GGMLQuantizationType | None = None
    head: GGMLQuantizationType | LowBitType | None = None  # LM head override (--output-tensor-type)
    # Per-tensor types that override the policy: (GGUF name, type) pairs, e.g. the
    # mixed precision a size budget chose (budget.py).
    recipe: tuple[tuple[str, GGMLQuantizationType | LowBitType], ...] = ()


OUT_TYPES: dict[str, OutType] = {
    "f32": OutType("f32", Q.F32, LlamaFileType.ALL_F32),
    "f16": OutType("f16", Q.F16, LlamaFileType.MOSTLY_F16),
    "bf16": OutType("bf16", Q.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": OutType("q8_0", Q.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": OutType("q4_0", Q.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "q4_1": OutType("q4_1", Q.Q4_1, LlamaFileType.MOSTLY_Q4_1),
}
GGML_OUT_TYPES = tuple(OUT_TYPES)
# Heads, embeddings and matrices the low-bit format cannot hold are Q8_0 in a low-bit file.
LOWBIT_OTHER = Q.Q8_0
OUT_TYPES.update({t.name: OutType(t.name, LOWBIT_OTHER, None, t) for t in all_types()})
OUT_TYPES.update({t.name: OutType(t.name, LOWBIT_OTHER, None, t) for t in TERNARY_TYPES})
# W8A8 (SmoothQuant): int8 per-channel decoder-layer matrices, int8 per-token activations;
# the embedding / tied head stay Q8_0 (per-block scales hold the head's spread rows better).
OUT_TYPES.update({t.name: OutType(t.name, LOWBIT_OTHER, None, t) for t in W8A8_TYPES})
# Minifloats with block scales (minifloat_type.py): decoder-layer matrices, the others Q8_0.
OUT_TYPES.update({t.name: OutType(t.name, LOWBIT_OTHER, None, t) for t in minifloat_types()})
# llama.cpp's ternary block types for the decoder-layer matrices (the other matrices
# Q8_0): files llama.cpp runs, e.g. to compare with t2 on the same weights.
OUT_TYPES["tq1_0"] = OutType("tq1_0", LOWBIT_OTHER, LlamaFileType.MOSTLY_TQ1_0, Q.TQ1_0)
OUT_TYPES["tq2_0"] = OutType("tq2_0", LOWBIT_OTHER, LlamaFileType.MOSTLY_TQ2_0, Q.TQ2_0)
TYPE_FORMS = (f"{', '.join(GGML_OUT_TYPES)}, w8a8, ternary t2 / tl3 / tq1_0 / tq2_0, low-bit {LOWBIT_FORMS}, "
              f"or minifloat {MINIFLOAT_FORMS}")


def parse_out_type(name: str) -> OutType:
    key = str(name).strip().lower()
    if key not in OUT_TYPES:
        parse_lowbit(key)  # raises with the low-bit forms when the name is w..g.. with bad values
        raise UnknownOutTypeError(f"unknown output type {name!r}; choose one of: {TYPE_FORMS}")
    return OUT_TYPES[key]


def with_head_type(out: OutType, name: str | None) -> OutType:
    """``out`` with the LM head stored as type ``name`` (None: the policy's own choice)."""
    if name is None:
        return out
    head = parse_out_type(name)
    return replace(out, head=head.lowbit if head.lowbit is not None else head.qtype)


def head_tensor(names: Iterable[str]) -> str:
    """The LM head among a model's tensor names: output.weight, or the tied token_embd."""
    names = set(names)
    return "output.weight" if "output.weight" in names else "token_embd.weight"


def keeps_f32(gguf_name: str, shape: Sequence[int]) -> bool:
    return len(shape) <= 1 or gguf_name.endswith("_norm.weight")


def is_layer_matrix(gguf_name: str, shape: Sequence[int]) -> bool:
    """A 2-D weight of a decoder layer (the matrices the low-bit types are for)."""
    return len(shape) == 2 and gguf_name.startswith("blk.") and gguf_name.endswith(".weight")


def choose_type(gguf_name: str, shape: Sequence[int], out: OutType,
                head: str = "output.weight") -> GGMLQuantizationType | LowBitType:
    """The type ``gguf_name`` (numpy-order ``shape``) is written as: a ggml type, or
    the low-bit format (a LowBitType) for the matrices that take it. ``head`` names
    the LM head (head_tensor), which takes ``out.head`` when that is set."""
    if keeps_f32(gguf_name, shape):
        return Q.F32
    chosen = dict(out.recipe).get(gguf_name) if out.recipe else None
    if chosen is not None:
        return _fitting(gguf_name, shape, chosen)
    if out.head is not None and gguf_name == head and len(shape) == 2:
        return _fitting(gguf_name, shape, out.head)
    if out.lowbit is not None and is_layer_matrix(gguf_name, shape):
        return _fitting(gguf_name, shape, out.lowbit)
    return _fitting(gguf_name, shape, out.qtype)


def _fitting(gguf_name: str, shape: Sequence[int], want: GGMLQuantizationType | LowBitType):
    """``want`` for a tensor, or the fallback when its rows do not split into whole
    groups/blocks: Q8_0 for a low-bit type (the type of a low-bit file's other
    matrices), F16 for a ggml type or when Q8_0 does not fit either."""
    if isinstance(want, (LowBitType, TernaryType, W8A8Type, MiniFloatType)):
        if want.fits(shape):
            return want
        fallback, unit = LOWBIT_OTHER, want.group
    else:
        if shape[-1] % GGML_QUANT_SIZES[want][0] == 0:
            return want
        fallback, unit = Q.F16, GGML_QUANT_SIZES[want][0]
    if shape[-1] % GGML_QUANT_SIZES[fallback][0] != 0:
        fallback = Q.F16
    log.warning("%s: row length %d is not a multiple of %d, storing %s instead of %s",
                gguf_name, shape[-1], unit, fallback.name, getattr(want, "name", want))
    return fallback


def nbytes(shape: Sequence[int], qtype: GGMLQuantizationType) -> int:
    block, type_size = GGML_QUANT_SIZES[qtype]
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    return n // block * type_size


def encode(values: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """float32 values -> the bytes (or F32/F16 array) stored in the file."""
    return quants.quantize(np.ascontiguousarray(values, dtype=np.float32), qtype)
