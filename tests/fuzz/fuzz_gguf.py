"""Atheris fuzz target for the GGUF reader (`_core.GGUFFile.from_bytes`).

Run (libFuzzer flags pass straight through; exits 0 when nothing was found):

    PYTHONPATH=python:<build dir> python tests/fuzz/fuzz_gguf.py -max_total_time=60 -rss_limit_mb=2048

A finding is any crash (a native fault kills the process), any exception other
than the project's own error classes, or an accepted file that breaks an
invariant the reader promises (tensor ranges inside the file, aligned,
disjoint, sized as gguf-py's GGML_QUANT_SIZES says -- Q8_1 as ggml's
block_q8_1; data views that are the file's own bytes; metadata that converts
to Python values of the declared types). libFuzzer writes the input to ./crash-<sha1>; replay it with
`python tests/fuzz/fuzz_gguf.py crash-<sha1>`.

The native module is normally built without coverage instrumentation (GCC has
no libFuzzer-compatible coverage), so feedback comes from two sources: the
custom mutator below knows the GGUF layout (it splices seeds, rewrites counts,
lengths, type tags and offsets with boundary values, truncates), and every
distinct error-message template and accepted-file shape becomes a distinct
Python branch (`_feature`) so libFuzzer keeps inputs that reach new checks;
the same outcomes also feed a corpus kept by the mutator itself (`_record`). Seeds are built
in-process from valid files; no corpus directory is needed.

For memory-error detection build the extension with -fsanitize=address and run
with LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0.
"""
from __future__ import annotations

import os
import random
import re
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import atheris
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: gguf_builders

import gguf  # noqa: E402
import gguf_builders as gb  # noqa: E402
from gguf.constants import GGMLQuantizationType  # noqa: E402

from minicpm_edge import _core  # noqa: E402

ALLOWED = (_core.GGUFFormatError, _core.UnsupportedError, _core.ArgumentError, _core.Error)

# libFuzzer only sees Python coverage, so each distinct outcome is turned into
# a distinct branch: the error message with names and numbers blanked out (its
# template, i.e. which check fired and where) is hashed onto one of N_BRANCHES
# generated `if` arms. An input reaching a check no earlier input reached
# covers a new arm and is kept in the corpus.
N_BRANCHES = 256


def _make_brancher():
    arms = "".join(f"    if h == {k}:\n        return {k}\n" for k in range(N_BRANCHES))
    scope: dict = {}
    exec("def _branch(h):\n" + arms + "    return -1\n", scope)  # noqa: S102 - generated constant code
    return atheris.instrument_func(scope["_branch"])


_branch = _make_brancher()


def _feature(outcome: str) -> int:
    return _branch(zlib.crc32(outcome.encode()) % N_BRANCHES)


def _template(msg: str) -> str:
    """Which check fired, without the names and numbers of this input."""
    msg = re.sub(r"'(?:[^'\\]|\\.)*'", "Q", msg)
    return re.sub(r"\d+", "N", re.sub(r"0x[0-9a-f]+", "H", msg))


def _seed_files() -> list[bytes]:
    seeds = [gb.standard_builder().to_bytes()]
    v2 = gb.standard_builder()
    v2.version = 2
    seeds.append(v2.to_bytes())
    seeds.append(gb.GGUFBuilder(kvs=[gb.enc_kv("general.architecture", gb.STRING, "llama"),
                                     gb.enc_kv("general.alignment", gb.U32, 64),
                                     gb.enc_kv("toks", gb.ARRAY, ["a", "bc", "\u00e9"], gb.STRING)]).to_bytes())
    seeds.append(gb.GGUFBuilder(kvs=[gb.enc_kv("general.alignment", gb.U32, 16)], alignment=16,
                                tensors=[gb.Tensor("a", [4, 2], 0), gb.Tensor("b", [32], 8),
                                         gb.Tensor("c", [256], 12)]).to_bytes())
    fd, path = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    try:
        w = gguf.GGUFWriter(path, "llama")
        w.add_array("tokenizer.ggml.scores", [0.5, -1.0])
        w.add_bool("b", True)
        x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32)
        w.add_tensor("q", gguf.quants.quantize(x, GGMLQuantizationType.Q4_0), raw_dtype=GGMLQuantizationType.Q4_0)
        w.add_tensor("h", x.astype(np.float16))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        seeds.append(Path(path).read_bytes())
    finally:
        os.unlink(path)
    return seeds


SEEDS = _seed_files()
INTERESTING = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 256, 4096, 2**20, 2**21,
               2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 32, 2**64 - 1]


def _mutate_structured(data: bytearray, rng: random.Random) -> bytearray:
    op = rng.randrange(7)
    if op == 0 and data:  # boundary value as u32 or u64 at a random position
        width = rng.choice((4, 8))
        value = rng.choice(INTERESTING + [len(data), len(data) - 24, rng.randrange(1 << 16)])
        pos = rng.randrange(len(data))
        packed = struct.pack("<Q", value % 2**64)[:width]
        data[pos:pos + width] = packed
    elif op == 1 and data:  # truncate
        del data[rng.randrange(len(data)):]
    elif op == 2:  # header counts
        if len(data) >= 24:
            which = rng.choice((8, 16))
            data[which:which + 8] = struct.pack("<q", rng.choice([0, 1, 2, 5, 17, -1, 2**40, rng.randrange(64)]))
    elif op == 3 and len(data) > 8:  # duplicate a chunk (repeated keys, tensor infos)
        a = rng.randrange(len(data))
        b = min(len(data), a + rng.randrange(1, 96))
        at = rng.randrange(len(data))
        data[at:at] = data[a:b]
    elif op == 4 and data:  # single invalid-UTF-8 / high byte
        data[rng.randrange(len(data))] = rng.choice((0x80, 0xC0, 0xED, 0xF4, 0xF8, 0xFF, 0x00))
    elif op == 5:  # splice with another seed
        other = rng.choice(_CORPUS)
        cut = rng.randrange(len(data) + 1)
        data = data[:cut] + other[rng.randrange(len(other) + 1):]
    else:  # delete a small range
        if data:
            a = rng.randrange(len(data))
            del data[a:a + rng.randrange(1, 16)]
    return data


# Inputs that produced an outcome no earlier input produced. libFuzzer keeps its
# own corpus from coverage, but that feedback disappears when the sanitizer
# runtime is preloaded (it takes over the coverage callbacks), so the mutator
# also draws from this list: the search stays guided in both set-ups.
_CORPUS: list[bytes] = list(SEEDS)
_SEEN: set[str] = set()
_CORPUS_MAX = 20_000


def _record(outcome: str, data: bytes) -> None:
    if outcome not in _SEEN:
        _SEEN.add(outcome)
        if len(_CORPUS) < _CORPUS_MAX:
            _CORPUS.append(data)
    _feature(outcome)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if len(data) < 24 or rng.random() < 0.5:
        data = rng.choice(_CORPUS)
    if rng.random() < 0.4:
        out = bytearray(atheris.Mutate(data, max(max_size, len(data))))
    else:
        out = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            out = _mutate_structured(out, rng)
    return bytes(out[:max_size])


@atheris.instrument_func
def _check_accepted(f, data: bytes) -> None:
    """Invariants of a file the reader accepted; a violation is a finding."""
    assert f.file_size == len(data)
    a = f.alignment
    assert a > 0 and a & (a - 1) == 0 and a <= 1 << 20, a
    assert f.data_offset % a == 0 and f.version in (2, 3)
    md, types = f.metadata, f.metadata_types
    assert list(md) == list(types)
    for key, value in md.items():
        main, elem = types[key]
        if main == "ARRAY":
            assert isinstance(value, list) and elem not in (None, "ARRAY")
        else:
            assert elem is None and not isinstance(value, list)
        if main == "STRING":
            assert isinstance(value, str)
    spans = []
    names = set()
    for t in f.tensors:
        assert t["name"] not in names and 0 < len(t["name"].encode()) < 64
        names.add(t["name"])
        block, size = gb.BLOCK_GEOMETRY[t["type"]]
        assert 1 <= len(t["shape"]) <= 4 and all(d >= 1 for d in t["shape"])
        assert t["shape"][0] % block == 0
        assert t["nbytes"] == int(np.prod(t["shape"], dtype=object)) // block * size
        assert t["offset"] % a == 0
        start = f.data_offset + t["offset"]
        assert start + t["nbytes"] <= len(data)
        view = f.tensor_data(t["name"])
        assert view.nbytes == t["nbytes"] and view.tobytes() == data[start:start + t["nbytes"]]
        spans.append((t["offset"], t["offset"] + t["nbytes"]))
    spans.sort()
    assert all(prev[1] <= cur[0] for prev, cur in zip(spans, spans[1:]))


@atheris.instrument_func
def TestOneInput(data: bytes) -> None:
    try:
        f = _core.GGUFFile.from_bytes(data)
    except ALLOWED as e:
        msg = str(e)
        assert msg.startswith("GGUF: "), msg
        _record(_template(msg), data)
        return
    _check_accepted(f, data)
    _record(f"ok v{f.version} a{f.alignment} kv{len(f.metadata).bit_length()} t{len(f.tensors).bit_length()} "
            + " ".join(sorted({t["type_name"] for t in f.tensors})), data)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
