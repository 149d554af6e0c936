"""What the readers of the project's own matrix formats (low-bit, ternary, W8A8,
minifloat; docs/FORMAT.md) share: finding each ``minicpm_edge.<kind>.<tensor>``
descriptor, parsing it, and checking the side tensors a format adds."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

from gguf import GGUFValueType

from .errors import CheckpointFormatError

T = TypeVar("T")


def described(reader, prefix: str, parse: Callable[[list[int]], T | None], what: str
              ) -> Iterator[tuple[str, str, T, dict]]:
    """(key, tensor name, parsed type, all tensors by name) for every ``prefix + name``
    key of a gguf.GGUFReader. The value must be a UINT32 array that ``parse`` accepts
    (else "<key>: not a <what>"), and the tensor must exist."""
    tensors = {t.name: t for t in reader.tensors}
    for key, field in reader.fields.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        value = ([int(v) for v in field.contents()] if field.types == [GGUFValueType.ARRAY, GGUFValueType.UINT32]
                 else None)
        t = None if value is None else parse(value)
        if t is None:
            raise CheckpointFormatError(f"{key}: not a {what}")
        if name not in tensors:
            raise CheckpointFormatError(f"{key}: names a missing tensor {name!r}")
        yield key, name, t, tensors


def check_parts(name: str, type_name: str, parts: Sequence[tuple], tensors: dict) -> None:
    """The side tensors ``parts`` ((name, ggml shape, ggml type), the codes first) of
    matrix ``name`` exist with those types and shapes."""
    for part, shape, qtype in parts[1:]:
        u = tensors.get(part)
        if u is None or u.tensor_type != qtype or tuple(int(x) for x in reversed(u.shape.tolist())) != shape:
            raise CheckpointFormatError(f"{name}: {type_name} needs tensor {part} of type {qtype.name} "
                                        f"and shape {list(shape)}")
