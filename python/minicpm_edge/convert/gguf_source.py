"""Re-type an existing GGUF file (e.g. a llama.cpp Q4_K_M model to our Q8_0).

Metadata is copied key by key with its original value types; only
general.file_type changes. Each tensor is decoded with gguf.quants.dequantize
and encoded again under the same policy as a fresh conversion (quantize.py).
A tensor that already has its target type is copied byte for byte, so
re-typing never drifts values it does not have to touch. Q/K rows are already
in llama.cpp's RoPE order inside a GGUF, so no permutation happens here.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, quants

from .errors import CheckpointFormatError, UnsupportedTypeError
from .quantize import OutType, choose_type, encode
from .writer import PlannedTensor, write_gguf

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


def _tensor_producer(t, qtype: GGMLQuantizationType, shape: tuple[int, ...]):
    def run() -> np.ndarray:
        if qtype == t.tensor_type:
            return np.asarray(t.data).view(np.uint8).reshape(-1)
        try:
            values = quants.dequantize(np.asarray(t.data), t.tensor_type)
        except NotImplementedError:
            raise UnsupportedTypeError(f"{t.name}: cannot decode tensor type {t.tensor_type.name}") from None
        return encode(values.reshape(shape), qtype)
    return run


def retype_gguf(src: Path, out: Path, out_type: OutType, progress: bool = True) -> Path:
    if src.resolve() == out.resolve():
        raise CheckpointFormatError(f"{out}: output would overwrite the source file")
    reader = open_gguf(src)
    arch_field = reader.get_field("general.architecture")
    if arch_field is None:
        raise CheckpointFormatError(f"{src}: no general.architecture key")
    arch = arch_field.contents()

    plan: list[PlannedTensor] = []
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # ggml order -> numpy order
        if t.tensor_type not in _FLOAT_OR_QUANT:
            qtype = t.tensor_type  # integer tensors are data, not weights: keep as they are
        else:
            qtype = choose_type(t.name, shape, out_type)
            if qtype != t.tensor_type and not _can_decode(t.tensor_type):
                raise UnsupportedTypeError(f"{src}: tensor {t.name} has type {t.tensor_type.name}, "
                                           "which the gguf package cannot decode")
        plan.append(PlannedTensor(t.name, shape, qtype, _tensor_producer(t, qtype, shape)))

    def add_metadata(w: GGUFWriter) -> None:
        for key, field in reader.fields.items():
            if key.startswith("GGUF.") or key in _NOT_COPIED:
                continue
            if key == "general.file_type":  # same place, new value
                w.add_file_type(out_type.file_type)
                continue
            value, vtype, sub = _field_value(field)
            w.add_key_value(key, value, vtype, sub_type=sub)
        if reader.get_field("general.file_type") is None:
            w.add_file_type(out_type.file_type)
        if reader.get_field("general.quantization_version") is None:
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        if reader.get_field("general.alignment") is not None:
            w.add_custom_alignment(reader.alignment)

    log.info("re-typing %s (%s, %d tensors) to %s", src, arch, len(plan), out_type.name)
    return write_gguf(out, arch, add_metadata, plan, progress=progress)
