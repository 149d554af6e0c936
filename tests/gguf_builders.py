"""Byte-level GGUF construction for tests and the fuzzer.

Written from the format description in ggml/include/gguf.h (little-endian;
strings are a u64 length plus bytes; counts are 64-bit), not with gguf-py's
writer, so that tests can place a precise corruption at a precise byte. The
valid output of `GGUFBuilder` is checked against gguf.GGUFReader in the tests.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

# gguf_type ids (gguf.h enum gguf_type).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)

_SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
               BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


def enc_str(s: str | bytes) -> bytes:
    """GGUF string: u64 byte length, then the bytes (no terminator)."""
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def enc_scalar(vtype: int, value) -> bytes:
    if vtype == STRING:
        return enc_str(value)
    return struct.pack(_SCALAR_FMT[vtype], value)


def enc_value(vtype: int, value, elem_type: int | None = None) -> bytes:
    """Value type tag followed by the payload (array: elem type, u64 count, elements)."""
    out = struct.pack("<I", vtype)
    if vtype == ARRAY:
        out += struct.pack("<IQ", elem_type, len(value))
        out += b"".join(enc_scalar(elem_type, v) for v in value)
    else:
        out += enc_scalar(vtype, value)
    return out


def enc_kv(key: str | bytes, vtype: int, value, elem_type: int | None = None) -> bytes:
    return enc_str(key) + enc_value(vtype, value, elem_type)


def enc_tensor_info(name: str | bytes, ne: list[int], ggml_type: int, offset: int) -> bytes:
    """name, u32 n_dims, n_dims x i64 (ggml order), u32 type, u64 offset."""
    return (enc_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", d) for d in ne)
            + struct.pack("<IQ", ggml_type, offset))


# (block size, bytes per block) by type id: gguf-py's table, except Q8_1, whose
# block in ggml-common.h is two ggml_half + 32 int8 (gguf-py keeps the older
# float-scale size 40).
BLOCK_GEOMETRY = {int(t): v for t, v in GGML_QUANT_SIZES.items()}
BLOCK_GEOMETRY[int(GGMLQuantizationType.Q8_1)] = (32, 2 + 2 + 32)


def tensor_nbytes(ne: list[int], ggml_type: int) -> int:
    block, size = BLOCK_GEOMETRY[ggml_type]
    n = int(np.prod(ne, dtype=np.int64))
    return n // block * size


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass
class Tensor:
    name: str | bytes
    ne: list[int]
    ggml_type: int
    data: bytes | None = None  # default: deterministic pseudo-random bytes of the right size
    offset: int | None = None  # default: packed in order, each padded to the alignment


@dataclass
class GGUFBuilder:
    """A GGUF file as parts; every field can be overridden to corrupt it.

    `kvs` and `extra_infos` hold already-encoded bytes so a test can splice in
    anything. Counts default to the real ones; `n_kv` / `n_tensors` override.
    """
    kvs: list[bytes] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    alignment: int = 32          # used to lay out data; add the key yourself to change it in-file
    magic: bytes = b"GGUF"
    version: int = 3
    n_kv: int | None = None
    n_tensors: int | None = None
    trailing: bytes = b""        # appended after the data section

    def layout(self) -> list[tuple[Tensor, int, bytes]]:
        """Resolve each tensor's (offset, data)."""
        out, pos = [], 0
        for k, t in enumerate(self.tensors):
            if t.data is not None:
                data = t.data
            else:
                data = np.random.default_rng(k).bytes(tensor_nbytes(t.ne, t.ggml_type))
            off = t.offset if t.offset is not None else align_up(pos, self.alignment)
            out.append((t, off, data))
            pos = max(pos, off + len(data))
        return out

    def header(self) -> bytes:
        n_t = len(self.tensors) if self.n_tensors is None else self.n_tensors
        n_kv = len(self.kvs) if self.n_kv is None else self.n_kv
        return self.magic + struct.pack("<I", self.version) + struct.pack("<qq", n_t, n_kv)

    def meta_bytes(self) -> bytes:
        """Everything before the data section: header, KVs, tensor infos."""
        infos = b"".join(enc_tensor_info(t.name, t.ne, t.ggml_type, off) for t, off, _ in self.layout())
        return self.header() + b"".join(self.kvs) + infos

    def to_bytes(self) -> bytes:
        meta = self.meta_bytes()
        lay = self.layout()
        if not lay:
            return meta + self.trailing
        data_start = align_up(len(meta), self.alignment)
        placed = [(off, d) for _, off, d in lay if d]  # empty data may sit at absurd offsets
        blob = bytearray(max((off + len(d) for off, d in placed), default=0))
        for off, d in placed:
            blob[off:off + len(d)] = d
        return meta + bytes(data_start - len(meta)) + bytes(blob) + self.trailing


def standard_builder() -> GGUFBuilder:
    """A small valid file exercising every value type, arrays and four tensor types."""
    kvs = [
        enc_kv("general.architecture", STRING, "llama"),
        enc_kv("t.u8", U8, 200), enc_kv("t.i8", I8, -100), enc_kv("t.u16", U16, 60000),
        enc_kv("t.i16", I16, -30000), enc_kv("t.u32", U32, 4_000_000_000), enc_kv("t.i32", I32, -2_000_000_000),
        enc_kv("t.f32", F32, 0.25), enc_kv("t.bool", BOOL, True), enc_kv("t.u64", U64, 2**63 + 5),
        enc_kv("t.i64", I64, -(2**62)), enc_kv("t.f64", F64, -1.5e300),
        enc_kv("t.str", STRING, "héllo ✓ 😀"),
        enc_kv("t.arr_str", ARRAY, ["a", "", "ünï"], STRING),
        enc_kv("t.arr_i32", ARRAY, [1, -2, 3], I32),
        enc_kv("t.arr_f32", ARRAY, [0.5, -0.25], F32),
        enc_kv("t.arr_bool", ARRAY, [True, False, True], BOOL),
    ]
    tensors = [
        Tensor("tok.weight", [32, 3], int(GGMLQuantizationType.Q8_0)),
        Tensor("norm.weight", [5], int(GGMLQuantizationType.F32)),
        Tensor("w.f16", [3, 2], int(GGMLQuantizationType.F16)),
        Tensor("w.q4", [64, 2], int(GGMLQuantizationType.Q4_0)),
    ]
    return GGUFBuilder(kvs=kvs, tensors=tensors)


def parts_of(path) -> tuple[dict[str, bytes], dict[str, "Tensor"]]:
    """A GGUF file's encoded key/values and tensors, by name, so a test can corrupt
    one part and write the file again with write_parts."""
    import numpy as np
    from gguf import GGUFReader, GGUFValueType
    r = GGUFReader(str(path))
    kvs = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        vtype = int(f.types[0])
        elem = int(f.types[1]) if vtype == int(GGUFValueType.ARRAY) else None
        kvs[name] = enc_kv(name, vtype, f.contents(), elem)
    tensors = {t.name: Tensor(t.name, [int(n) for n in t.shape], int(t.tensor_type), bytes(np.asarray(t.data).tobytes()))
               for t in r.tensors}
    return kvs, tensors


def write_parts(path, kvs: dict[str, bytes], tensors: dict[str, "Tensor"]):
    path.write_bytes(GGUFBuilder(kvs=list(kvs.values()), tensors=list(tensors.values())).to_bytes())
    return path
