"""Read a Hugging Face checkpoint directory without torch.

Only the JSON headers of the safetensors files are parsed up front; tensor data
is memory-mapped and decoded to float32 one tensor at a time, so converting a
model needs memory for one tensor, not the whole model.

safetensors layout (https://github.com/huggingface/safetensors, "Format"):
8-byte little-endian header length N, N bytes of JSON mapping each name to
{dtype, shape, data_offsets=[begin, end]} (offsets relative to the byte after
the header), then the data. numpy has no bfloat16, so BF16 is read as uint16
and widened by placing the 16 bits in the top half of a float32 (BF16 is the
upper half of an IEEE float32).
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointFormatError, MissingConfigError

# Header sizes beyond this are not produced by any real writer; refusing them
# keeps a corrupt length field from making us allocate gigabytes.
_MAX_HEADER_BYTES = 100 * 1024 * 1024

_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # decoded in to_float32
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor lives: enough to load it later."""

    name: str
    file: Path
    dtype: str          # safetensors dtype string, e.g. "BF16"
    shape: tuple[int, ...]
    begin: int          # absolute byte offset in file
    end: int


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen raw BF16 bit patterns (uint16) to float32 exactly."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors_header(path: Path) -> dict[str, TensorRef]:
    """Parse and validate one safetensors file's header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointFormatError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > _MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointFormatError(f"{path}: bad safetensors header length {n} (file has {size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointFormatError(f"{path}: safetensors header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointFormatError(f"{path}: safetensors header is not a JSON object")

    data_start = 8 + n
    refs: dict[str, TensorRef] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointFormatError(f"{path}: malformed header entry for {name!r}") from None
        if dtype not in _DTYPES:
            raise CheckpointFormatError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r}")
        if any(d < 0 for d in shape):
            raise CheckpointFormatError(f"{path}: tensor {name!r} has a negative dimension {shape}")
        nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
        if not (0 <= begin <= end) or end - begin != nbytes or data_start + end > size:
            raise CheckpointFormatError(
                f"{path}: tensor {name!r} data_offsets {[begin, end]} do not fit shape {list(shape)} "
                f"of {dtype} inside a file of {size} bytes"
            )
        refs[name] = TensorRef(name, path, dtype, shape, data_start + begin, data_start + end)
    return refs


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointFormatError(f"{path}: not valid JSON: {e}") from None


class HFCheckpoint:
    """A Hugging Face model directory: config.json plus safetensors weights."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise MissingConfigError(f"{self.dir}: not a directory (expected a Hugging Face checkpoint)")
        config_path = self.dir / "config.json"
        if not config_path.is_file():
            raise MissingConfigError(
                f"{self.dir}: no config.json; a Hugging Face checkpoint directory needs config.json "
                "next to its *.safetensors files"
            )
        config = _load_json(config_path)
        if not isinstance(config, dict):
            raise CheckpointFormatError(f"{config_path}: expected a JSON object")
        # Multimodal wrappers keep the language model's settings in text_config.
        if isinstance(config.get("text_config"), dict):
            config = {**config, **config["text_config"]}
        self.config: dict[str, Any] = config
        self.tensors: dict[str, TensorRef] = self._index_tensors()
        self._maps: dict[Path, np.memmap] = {}

    def _weight_files(self) -> list[Path]:
        index_path = self.dir / "model.safetensors.index.json"
        if index_path.is_file():
            index = _load_json(index_path)
            weight_map = index.get("weight_map") if isinstance(index, dict) else None
            if not isinstance(weight_map, dict) or not weight_map:
                raise CheckpointFormatError(f"{index_path}: missing or empty 'weight_map'")
            names = sorted(set(weight_map.values()))
            missing = [n for n in names if not (self.dir / n).is_file()]
            if missing:
                raise CheckpointFormatError(f"{self.dir}: shard(s) listed in the index are missing: {missing}")
            self._index_names = set(weight_map)
            return [self.dir / n for n in names]
        self._index_names = None
        single = self.dir / "model.safetensors"
        if single.is_file():
            return [single]
        parts = sorted(self.dir.glob("model*.safetensors"))
        if parts:
            return parts
        hint = " (PyTorch .bin checkpoints are not supported; re-save with safe_serialization=True)" \
            if any(self.dir.glob("*.bin")) else ""
        raise CheckpointFormatError(f"{self.dir}: no *.safetensors weights found{hint}")

    def _index_tensors(self) -> dict[str, TensorRef]:
        refs: dict[str, TensorRef] = {}
        for path in self._weight_files():
            for name, ref in read_safetensors_header(path).items():
                if name in refs:
                    raise CheckpointFormatError(
                        f"tensor {name!r} appears in both {refs[name].file.name} and {path.name}")
                refs[name] = ref
        if self._index_names is not None and self._index_names != set(refs):
            missing = sorted(self._index_names - set(refs))
            extra = sorted(set(refs) - self._index_names)
            raise CheckpointFormatError(
                f"{self.dir}: model.safetensors.index.json disagrees with the shards; "
                f"listed but absent: {missing[:8]}, present but unlisted: {extra[:8]}"
            )
        return refs

    def _map(self, path: Path) -> np.memmap:
        if path not in self._maps:
            self._maps[path] = np.memmap(path, dtype=np.uint8, mode="r")
        return self._maps[path]

    def load_raw(self, name: str) -> np.ndarray:
        """One tensor's stored values (a read-only view; BF16 as its uint16 bits)."""
        ref = self.tensors[name]
        return self._map(ref.file)[ref.begin:ref.end].view(_DTYPES[ref.dtype]).reshape(ref.shape)

    def load_float32(self, name: str) -> np.ndarray:
        """Decode one tensor to a fresh float32 array in its HF (row-major) shape."""
        ref = self.tensors[name]
        if ref.dtype not in _FLOAT_DTYPES:
            raise CheckpointFormatError(f"tensor {name!r} is {ref.dtype}, expected a floating point weight")
        raw = self._map(ref.file)[ref.begin:ref.end].view(_DTYPES[ref.dtype]).reshape(ref.shape)
        if ref.dtype == "BF16":
            return bf16_bits_to_float32(raw)
        return raw.astype(np.float32)  # always a copy: the memmap stays read-only
