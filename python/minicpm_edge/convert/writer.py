"""Write a GGUF file, streaming one tensor at a time.

All tensor infos (name, shape, type, size) are declared before any data is
produced, so the header can be written first and each tensor is then computed,
written and dropped: peak memory is one tensor, not the model. The file is
written under a temporary name and renamed at the end, so a failed conversion
never leaves a truncated GGUF behind.

Layout rules that llama.cpp checks (gguf.cpp): tensors are laid out in info
order, each one padded to the alignment; GGUFWriter does exactly that.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from tqdm import tqdm

from .quantize import nbytes


@dataclass
class PlannedTensor:
    name: str                       # GGUF tensor name, e.g. "blk.0.attn_q.weight"
    shape: tuple[int, ...]          # logical shape in numpy order (ggml order reversed)
    qtype: GGMLQuantizationType     # type stored in the file
    produce: Callable[[], np.ndarray]  # returns the encoded data for this tensor


def write_gguf(path: Path, arch: str, add_metadata: Callable[[GGUFWriter], None],
               tensors: Sequence[PlannedTensor], progress: bool = True) -> Path:
    """Write ``tensors`` and the metadata filled in by ``add_metadata``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    writer = GGUFWriter(path=None, arch=arch)
    add_metadata(writer)
    for t in tensors:
        writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), nbytes(t.shape, t.qtype), raw_dtype=t.qtype)
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in tqdm(tensors, desc="converting", unit="tensor", disable=not progress):
            data = t.produce()
            expected = nbytes(t.shape, t.qtype)
            if data.nbytes != expected:  # a bug in a producer, never user input
                raise AssertionError(f"{t.name}: produced {data.nbytes} bytes, expected {expected}")
            writer.write_tensor_data(np.ascontiguousarray(data))
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
