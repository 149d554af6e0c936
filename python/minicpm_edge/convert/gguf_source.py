"""Re-type an existing GGUF file (e.g. a llama.cpp Q4_K_M model to our Q8_0 or w4g64).

Metadata is copied key by key with its original value types; only the keys that
describe the tensor types change: general.file_type, and the minicpm_edge.* keys
of the low-bit format (docs/FORMAT.md), which are written afresh for the output
(a low-bit output has no general.file_type). Each tensor is decoded with
gguf.quants.dequantize (a low-bit matrix of the source: its codes, scales and
offsets with lowbit.decode) and encoded again under the same policy as a fresh
conversion (quantize.py). A tensor (or low-bit matrix) that already has its
target type is copied byte for byte, so re-typing never drifts values it does
not have to touch. Q/K rows are already in llama.cpp's RoPE order inside a
GGUF, so no permutation happens here.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, quants

from . import lowbit, minifloat_type, ternary, w8a8
from .errors import CheckpointFormatError, UnsupportedTypeError
from .lowbit import LowBitType
from .plan import LowBitQuantizer, Rewrite, add_type_metadata, lowbit_group, plan_entry, rtn
from .quantize import OutType, choose_type, head_tensor
from .writer import Planned, PlannedTensor, write_gguf

log = logging.getLogger(__name__)

Q = GGMLQuantizationType
_FLOAT_OR_QUANT = {t for t in Q if t not in (Q.I8, Q.I16, Q.I32, Q.I64, Q.F64)}
# Keys the writer produces itself (or that describe the source file, not the model).
_NOT_COPIED = {"general.architecture", "general.alignment"}


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def open_gguf(path: Path) -> GGUFReader:
    try:
        return GGUFReader(path, "r")
    except Exception as e:  # gguf-py raises ValueError, struct.error, IndexError... on corrupt input
        raise CheckpointFormatError(f"{path}: not a readable GGUF file: {e}") from None


def _field_value(field) -> tuple[Any, GGUFValueType, GGUFValueType | None]:
    vtype = field.types[0]
    if vtype == GGUFValueType.ARRAY:
        sub = field.types[-1]
        if len(field.types) != 2:
            raise CheckpointFormatError(f"{field.name}: nested arrays are not supported")
        if sub == GGUFValueType.STRING:  # raw bytes: token texts need not be valid UTF-8
            return [bytes(field.parts[i]) for i in field.data], vtype, sub
        return field.contents(), vtype, sub
    if vtype == GGUFValueType.STRING:
        return bytes(field.parts[-1]), vtype, None
    return field.contents(), vtype, None


def _can_decode(qtype: GGMLQuantizationType) -> bool:
    """Whether gguf.quants can dequantize ``qtype`` (probed on one zero block)."""
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    try:
        quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), qtype)
    except NotImplementedError:
        return False
    return True


def _raw(t) -> np.ndarray:
    return np.asarray(t.data).view(np.uint8).reshape(-1)


def _float_loader(t, shape: tuple[int, ...]):
    def run() -> np.ndarray:
        try:
            values = quants.dequantize(np.asarray(t.data), t.tensor_type)
        except NotImplementedError:
            raise UnsupportedTypeError(f"{t.name}: cannot decode tensor type {t.tensor_type.name}") from None
        return values.reshape(shape)
    return run


def _touches(rewrite: Rewrite | None, name: str) -> bool:
    return rewrite is not None and rewrite.touches(name)


def _rewritten(name: str, load, rewrite: Rewrite | None):
    if not _touches(rewrite, name):
        return load
    return lambda: rewrite.apply(name, load())


def _plan_tensor(src: Path, t, out_type: OutType, head: str, quantize: LowBitQuantizer,
                 rewrite: Rewrite | None) -> Planned:
    shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # ggml order -> numpy order
    if t.tensor_type not in _FLOAT_OR_QUANT:
        # integer tensors are data, not weights: keep as they are
        return PlannedTensor(t.name, shape, t.tensor_type, lambda: _raw(t))
    choice = choose_type(t.name, shape, out_type, head)
    touched = _touches(rewrite, t.name)
    if choice == t.tensor_type and not touched:
        return PlannedTensor(t.name, shape, choice, lambda: _raw(t))
    if not _can_decode(t.tensor_type):
        raise UnsupportedTypeError(f"{src}: tensor {t.name} has type {t.tensor_type.name}, "
                                   "which the gguf package cannot decode")
    return plan_entry(t.name, shape, choice, _rewritten(t.name, _float_loader(t, shape), rewrite), quantize)


def _decode_group(parts: list, fmt) -> np.ndarray:
    data = [np.asarray(p.data) for p in parts]
    return lowbit.decode(data, fmt) if isinstance(fmt, LowBitType) else fmt.decode(data)


def _group_formats(reader: GGUFReader) -> dict:
    """The source's matrices in the project's formats: name -> LowBitType / TernaryType."""
    found: dict = {}
    for formats in (lowbit.read_descriptors(reader), ternary.read_descriptors(reader),
                    w8a8.read_descriptors(reader), minifloat_type.read_descriptors(reader)):
        both = sorted(set(found) & set(formats))
        if both:
            raise CheckpointFormatError(f"{both[0]}: has more than one descriptor (low-bit, ternary, W8A8, minifloat)")
        found.update(formats)
    return found


def _plan_lowbit(parts: list, fmt, out_type: OutType, head: str,
                 quantize: LowBitQuantizer, rewrite: Rewrite | None) -> Planned:
    """A low-bit or ternary matrix of the source (its codes and side tensors)."""
    codes = parts[0]
    codes_shape = reversed(codes.shape.tolist())
    shape = lowbit.matrix_shape(codes_shape, fmt) if isinstance(fmt, LowBitType) else fmt.matrix_shape(codes_shape)
    choice = choose_type(codes.name, shape, out_type, head)
    if choice == fmt and not _touches(rewrite, codes.name):
        return lowbit_group(codes.name, shape, fmt, lambda: tuple(np.asarray(p.data) for p in parts))
    load = _rewritten(codes.name, lambda: _decode_group(parts, fmt), rewrite)
    return plan_entry(codes.name, shape, choice, load, quantize)


def float_tensors(path: Path):
    """name -> float32 values (numpy order) of any tensor of a GGUF file, low-bit
    matrices decoded; for methods that look at other tensors than the one written."""
    reader = open_gguf(path)
    groups = _group_formats(reader)
    by_name = {t.name: t for t in reader.tensors}

    def load(name: str) -> np.ndarray:
        if name in groups:
            fmt = groups[name]
            return _decode_group([by_name[n] for n in fmt.part_names(name)], fmt)
        t = by_name[name]
        return _float_loader(t, tuple(int(d) for d in reversed(t.shape.tolist())))()
    return load


def _copied_keys(reader: GGUFReader):
    """(key, field) of the metadata that is copied; None marks where the type keys go."""
    typed = False
    for key, field in reader.fields.items():
        if (key.startswith("GGUF.") or key in _NOT_COPIED or lowbit.is_lowbit_key(key) or ternary.is_ternary_key(key)
                or w8a8.is_w8a8_key(key) or minifloat_type.is_minifloat_key(key)):
            continue
        if key == "general.file_type":  # same place, new value(s)
            typed = True
            yield key, None
            continue
        yield key, field
    if not typed:
        yield "general.file_type", None


def _plan(src: Path, reader: GGUFReader, out_type: OutType, quantize: LowBitQuantizer = rtn,
          rewrite: Rewrite | None = None) -> list[Planned]:
    groups = _group_formats(reader)
    by_name = {t.name: t for t in reader.tensors}
    consumed = {part for name, fmt in groups.items() for part in fmt.part_names(name)[1:]}
    plan: list[Planned] = []
    head = head_tensor(by_name)
    for t in reader.tensors:
        if t.name in groups:
            fmt = groups[t.name]
            parts = [by_name[n] for n in fmt.part_names(t.name)]
            plan.append(_plan_lowbit(parts, fmt, out_type, head, quantize, rewrite))
        elif t.name not in consumed:
            plan.append(_plan_tensor(src, t, out_type, head, quantize, rewrite))
    return plan


def planned_tensors(src: Path, out_type: OutType) -> tuple[list[Planned], str, int]:
    """What retype_gguf would write for ``src`` (nothing is computed), the name of the
    LM head, and the bytes of ``src`` outside its tensor data (metadata, padding)."""
    reader = open_gguf(src)
    data = sum(int(t.n_bytes) for t in reader.tensors)
    return _plan(src, reader, out_type), head_tensor(t.name for t in reader.tensors), src.stat().st_size - data


def retype_gguf(src: Path, out: Path, out_type: OutType, progress: bool = True,
                quantize: LowBitQuantizer = rtn, rewrite: Rewrite | None = None) -> Path:
    """``quantize`` makes the codes of low-bit matrices; ``rewrite`` changes the float
    values of the tensors it touches before they are encoded (AWQ's folded scales)."""
    if src.resolve() == out.resolve():
        raise CheckpointFormatError(f"{out}: output would overwrite the source file")
    reader = open_gguf(src)
    arch_field = reader.get_field("general.architecture")
    if arch_field is None:
        raise CheckpointFormatError(f"{src}: no general.architecture key")
    arch = arch_field.contents()
    plan = _plan(src, reader, out_type, quantize, rewrite)

    def add_metadata(w: GGUFWriter) -> None:
        for key, field in _copied_keys(reader):
            if field is None:
                add_type_metadata(w, out_type, plan)
                continue
            value, vtype, sub = _field_value(field)
            w.add_key_value(key, value, vtype, sub_type=sub)
        if reader.get_field("general.quantization_version") is None:
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        if reader.get_field("general.alignment") is not None:
            w.add_custom_alignment(reader.alignment)

    log.info("re-typing %s (%s, %d tensors) to %s", src, arch, len(plan), out_type.name)
    return write_gguf(out, arch, add_metadata, plan, progress=progress)
