"""What the writer gets for one source tensor, and the type keys of the file.

Shared by both sources (hf_convert.py, gguf_source.py) and tools/make_random_model.py,
so a ggml-typed tensor and a low-bit matrix are planned the same way everywhere.
"""
from __future__ import annotations

from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

from . import lowbit, minifloat_type, ternary, w8a8
from .lowbit import LowBitType
from .minifloat_type import MiniFloatType
from .ternary import TernaryType
from .w8a8 import W8A8Type
from .quantize import OutType, encode
from .writer import Planned, PlannedGroup, PlannedTensor, TensorPart


def lowbit_group(name: str, shape: Sequence[int], t: LowBitType | TernaryType | MiniFloatType,
                 produce: Callable[[], Sequence[np.ndarray]]) -> PlannedGroup:
    """The tensors of matrix ``name`` (numpy shape [M, K]) in low-bit or ternary type ``t``."""
    parts = tuple(TensorPart(n, s, q) for n, s, q in t.parts(name, shape))
    return PlannedGroup(name, tuple(int(d) for d in shape), t, parts, produce)


# How a low-bit matrix is quantized: (name, float values [M, K], type) -> (codes, d, m).
LowBitQuantizer = Callable[[str, np.ndarray, LowBitType], tuple]


class Rewrite(Protocol):
    """A change of float values before encoding (e.g. AWQ scales folded into norms)."""

    def touches(self, name: str) -> bool: ...

    def apply(self, name: str, values: np.ndarray) -> np.ndarray: ...


def rtn(name: str, w: np.ndarray, t: LowBitType | MiniFloatType) -> tuple:
    """Round to nearest: (codes, d, m) of a low-bit type, (codes, scales, tensor scale) of a minifloat one."""
    if isinstance(t, MiniFloatType):
        return t.quantize_rtn(w, name)
    return lowbit.quantize_rtn(w, t, name)


def plan_entry(name: str, shape: Sequence[int], choice: GGMLQuantizationType | LowBitType,
               load: Callable[[], np.ndarray], quantize: LowBitQuantizer = rtn) -> Planned:
    """``load`` returns the tensor's float values (numpy order); ``choice`` comes from choose_type;
    ``quantize`` makes the codes of a low-bit matrix (methods.py: RTN, GPTQ)."""
    if isinstance(choice, LowBitType):
        return lowbit_group(name, shape, choice, lambda: lowbit.pack(*quantize(name, load(), choice), choice))
    if isinstance(choice, MiniFloatType):
        return lowbit_group(name, shape, choice, lambda: choice.pack(*quantize(name, load(), choice)))
    if isinstance(choice, (TernaryType, W8A8Type)):
        return lowbit_group(name, shape, choice, lambda: choice.encode(load(), name))
    if choice in (GGMLQuantizationType.TQ1_0, GGMLQuantizationType.TQ2_0):
        # One scale per matrix, so that every block carries the same d (readers
        # that take TQ files as per-tensor ternary, ours included, need that).
        return PlannedTensor(name, tuple(shape), choice, lambda: encode(ternary.ternary_values(load(), name), choice))
    return PlannedTensor(name, tuple(shape), choice, lambda: encode(load(), choice))


def lowbit_matrices(plan: Iterable[Planned], kind: type = LowBitType) -> list[tuple[str, LowBitType | TernaryType]]:
    return [(e.name, e.fmt) for e in plan if isinstance(e, PlannedGroup) and isinstance(e.fmt, kind)]


def add_type_metadata(w: GGUFWriter, out_type: OutType, plan: Sequence[Planned]) -> None:
    """general.file_type for the ggml types; the minicpm_edge.* keys (and no
    general.file_type, which has no value for them) for the low-bit and ternary types. A ggml
    file whose head alone is low-bit (--output-tensor-type) gets both."""
    matrices, ternaries = lowbit_matrices(plan), lowbit_matrices(plan, TernaryType)
    w8a8s = lowbit_matrices(plan, W8A8Type)
    minifloats = lowbit_matrices(plan, MiniFloatType)
    if out_type.file_type is not None:
        w.add_file_type(out_type.file_type)
    if (matrices or ternaries or w8a8s or minifloats
            or isinstance(out_type.lowbit, (LowBitType, TernaryType, W8A8Type, MiniFloatType))):
        lowbit.add_metadata(w, out_type.name, matrices)
        ternary.add_descriptors(w, [(e.name, e.fmt, e.shape) for e in plan
                                    if isinstance(e, PlannedGroup) and isinstance(e.fmt, TernaryType)])
        w8a8.add_descriptors(w, [name for name, _ in w8a8s])
        minifloat_type.add_descriptors(w, minifloats)
