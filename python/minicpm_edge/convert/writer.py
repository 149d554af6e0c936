"""Write a GGUF file, streaming one tensor at a time.

All tensor infos (name, shape, type, size) are declared before any data is
produced, so the header can be written first and each tensor is then computed,
written and dropped: peak memory is one tensor, not the model. A matrix in one
of the project's own formats is a PlannedGroup: its two or three file tensors
(codes, scales, offsets) come out of one quantization, so they are produced
together and written one after the other, and peak memory is one matrix. The
file is written under a temporary name and renamed at the end, so a failed
conversion never leaves a truncated GGUF behind.

Layout rules that llama.cpp checks (gguf.cpp): tensors are laid out in info
order, each one padded to the alignment; GGUFWriter does exactly that.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from tqdm import tqdm

from .quantize import nbytes


@dataclass(frozen=True)
class TensorPart:
    """One tensor of the file."""

    name: str
    shape: tuple[int, ...]          # numpy order (ggml order reversed)
    qtype: GGMLQuantizationType

    @property
    def nbytes(self) -> int:
        return nbytes(self.shape, self.qtype)


@dataclass
class PlannedTensor:
    name: str                       # GGUF tensor name, e.g. "blk.0.attn_q.weight"
    shape: tuple[int, ...]          # logical shape in numpy order (ggml order reversed)
    qtype: GGMLQuantizationType     # type stored in the file
    produce: Callable[[], np.ndarray]  # returns the encoded data for this tensor

    @property
    def parts(self) -> tuple[TensorPart, ...]:
        return (TensorPart(self.name, tuple(self.shape), self.qtype),)

    def run(self) -> tuple[np.ndarray, ...]:
        return (self.produce(),)


@dataclass
class PlannedGroup:
    """One matrix stored as several standard tensors (docs/FORMAT.md, low-bit formats)."""

    name: str                       # the matrix, e.g. "blk.0.attn_q.weight"
    shape: tuple[int, ...]          # the matrix's logical shape, numpy order
    fmt: Any                        # the project format it is stored in (lowbit.LowBitType)
    parts: tuple[TensorPart, ...]   # the file tensors, in file order
    produce: Callable[[], Sequence[np.ndarray]]  # their data, in the same order

    def run(self) -> tuple[np.ndarray, ...]:
        data = tuple(self.produce())
        if len(data) != len(self.parts):  # a bug in a producer, never user input
            raise AssertionError(f"{self.name}: produced {len(data)} tensors, expected {len(self.parts)}")
        return data


Planned = Union[PlannedTensor, PlannedGroup]


def write_gguf(path: Path, arch: str, add_metadata: Callable[[GGUFWriter], None],
               tensors: Sequence[Planned], progress: bool = True) -> Path:
    """Write ``tensors`` and the metadata filled in by ``add_metadata``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    writer = GGUFWriter(path=None, arch=arch)
    add_metadata(writer)
    for entry in tensors:
        for p in entry.parts:
            writer.add_tensor_info(p.name, p.shape, np.dtype(np.float32), p.nbytes, raw_dtype=p.qtype)
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for entry in tqdm(tensors, desc="converting", unit="tensor", disable=not progress):
            for p, data in zip(entry.parts, entry.run()):
                if data.nbytes != p.nbytes:  # a bug in a producer, never user input
                    raise AssertionError(f"{p.name}: produced {data.nbytes} bytes, expected {p.nbytes}")
                writer.write_tensor_data(np.ascontiguousarray(data))
            data = None  # let the last array go before the next entry is produced
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
