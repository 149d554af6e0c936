"""The C++ GGUF reader agrees with gguf-py's GGUFReader (the oracle) on valid files.

Files are written with gguf.GGUFWriter (the reference writer) or with the
byte-level builder in gguf_builders.py (for what the writer cannot produce:
version 2, metadata-only files without padding). `compare_with_gguf_reader`
works on any GGUF path, including real models.
"""
from __future__ import annotations

import gc
import os
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from minicpm_edge import _core

import gguf_builders as gb


def _oracle_value(field):
    """A field's value as plain Python, decoded by gguf-py."""
    value = field.contents()
    if isinstance(value, list):
        return [v.item() if isinstance(v, np.generic) else v for v in value]
    return value.item() if isinstance(value, np.generic) else value


def compare_with_gguf_reader(path) -> _core.GGUFFile:
    """Open `path` with both readers and assert they agree on everything."""
    ours = _core.GGUFFile(path)
    ref = gguf.GGUFReader(path)

    assert ours.version == int(ref.fields["GGUF.version"].parts[-1][0])
    assert ours.alignment == ref.alignment
    assert ours.data_offset == ref.data_offset
    assert ours.file_size == os.path.getsize(path)

    ref_fields = [(k, f) for k, f in ref.fields.items() if not k.startswith("GGUF.")]
    assert list(ours.metadata) == [k for k, _ in ref_fields]  # same keys, same order
    for key, f in ref_fields:
        main = f.types[0]
        elem = f.types[-1].name if main == GGUFValueType.ARRAY else None
        assert ours.metadata_types[key] == (main.name, elem), key
        expected = _oracle_value(f)
        got = ours.metadata[key]
        assert got == expected, key
        if main == GGUFValueType.BOOL:
            assert type(got) is bool, key
        if main == GGUFValueType.ARRAY and f.types[-1] == GGUFValueType.BOOL:
            assert all(type(v) is bool for v in got), key

    assert [t["name"] for t in ours.tensors] == [t.name for t in ref.tensors]
    for mine, theirs in zip(ours.tensors, ref.tensors):
        assert mine["shape"] == [int(d) for d in theirs.shape], mine["name"]
        assert mine["type"] == int(theirs.tensor_type), mine["name"]
        assert mine["type_name"] == theirs.tensor_type.name, mine["name"]
        assert mine["nbytes"] == int(theirs.n_bytes), mine["name"]
        assert ours.data_offset + mine["offset"] == int(theirs.data_offset), mine["name"]
        data = ours.tensor_data(mine["name"])
        assert data.dtype == np.uint8 and data.shape == (mine["nbytes"],)
        assert data.tobytes() == np.ascontiguousarray(theirs.data).tobytes(), mine["name"]
    return ours


def _write_with_gguf_writer(path: Path, alignment: int | None) -> None:
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_uint8("v.u8", 255)
    w.add_int8("v.i8", -128)
    w.add_uint16("v.u16", 65535)
    w.add_int16("v.i16", -32768)
    w.add_uint32("v.u32", 2**32 - 1)
    w.add_int32("v.i32", -(2**31))
    w.add_float32("v.f32", 3.14159)
    w.add_uint64("v.u64", 2**64 - 1)
    w.add_int64("v.i64", -(2**63))
    w.add_float64("v.f64", 2.718281828459045)
    w.add_bool("v.bool_t", True)
    w.add_bool("v.bool_f", False)
    w.add_string("v.str", "UTF-8: ünïcödé ✓ 日本語 😀")
    w.add_string("v.str_empty", "")
    w.add_array("v.arr_str", ["<s>", "", "Ġthe", "日本", "\n"])
    w.add_array("v.arr_int", [1, -2, 3, 2**31 - 1])
    w.add_array("v.arr_float", [0.5, -1.25, 1e-7])
    w.add_array("v.arr_bool", [True, False, False, True])
    for sub in (GGUFValueType.UINT8, GGUFValueType.INT16, GGUFValueType.UINT64, GGUFValueType.INT64,
                GGUFValueType.FLOAT64):
        w.add_key_value(f"v.arr_{sub.name.lower()}", [0, 1, 7], GGUFValueType.ARRAY, sub_type=sub)

    w.add_tensor("t.f32", rng.standard_normal((3, 7)).astype(np.float32))
    w.add_tensor("t.f16", rng.standard_normal((5, 4)).astype(np.float16))
    for qtype, shape in ((GGMLQuantizationType.Q8_0, (4, 64)), (GGMLQuantizationType.Q4_0, (2, 96))):
        x = rng.standard_normal(shape).astype(np.float32)
        w.add_tensor(f"t.{qtype.name.lower()}", gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    w.add_tensor("t.1d", rng.standard_normal(17).astype(np.float32))
    w.add_tensor("t.4d", rng.standard_normal((2, 3, 1, 5)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("alignment", [None, 1, 64, 4096])
def test_writer_file_matches_oracle(tmp_path, alignment):
    path = tmp_path / "model.gguf"
    _write_with_gguf_writer(path, alignment)
    f = compare_with_gguf_reader(path)
    assert f.alignment == (alignment or 32)
    assert f.data_offset % f.alignment == 0
    # Spot-check values against what was written, not only against the oracle.
    md = f.metadata
    assert md["v.u64"] == 2**64 - 1 and md["v.i64"] == -(2**63)
    assert md["v.f32"] == float(np.float32(3.14159)) and md["v.f64"] == 2.718281828459045
    assert md["v.arr_str"] == ["<s>", "", "Ġthe", "日本", "\n"]
    assert md["v.arr_bool"] == [True, False, False, True]
    assert f.metadata_types["v.arr_int"] == ("ARRAY", "INT32")
    assert f.metadata_types["v.u8"] == ("UINT8", None)
    shapes = {t["name"]: t["shape"] for t in f.tensors}
    assert shapes["t.f32"] == [7, 3] and shapes["t.q8_0"] == [64, 4] and shapes["t.4d"] == [5, 1, 3, 2]


def test_quantized_tensor_bytes_dequantize_like_oracle(tmp_path):
    path = tmp_path / "q.gguf"
    _write_with_gguf_writer(path, None)
    f = _core.GGUFFile(path)
    info = {t["name"]: t for t in f.tensors}["t.q4_0"]
    got = gguf.quants.dequantize(f.tensor_data("t.q4_0").reshape(2, -1), GGMLQuantizationType.Q4_0)
    ref = gguf.GGUFReader(path).get_tensor([t.name for t in gguf.GGUFReader(path).tensors].index("t.q4_0"))
    assert info["shape"] == [96, 2]
    np.testing.assert_array_equal(got, gguf.quants.dequantize(ref.data, GGMLQuantizationType.Q4_0))


def test_builder_file_matches_oracle(tmp_path):
    path = tmp_path / "b.gguf"
    path.write_bytes(gb.standard_builder().to_bytes())
    f = compare_with_gguf_reader(path)
    assert f.metadata["t.str"] == "héllo ✓ 😀"
    assert f.metadata["t.u64"] == 2**63 + 5


def test_version_2_file(tmp_path):
    b = gb.standard_builder()
    b.version = 2
    path = tmp_path / "v2.gguf"
    path.write_bytes(b.to_bytes())
    assert compare_with_gguf_reader(path).version == 2


def test_metadata_only_file_without_padding(tmp_path):
    # llama.cpp writes vocab-only files that end right after the header; the
    # data section then "starts" past EOF, which is fine with zero tensors.
    b = gb.GGUFBuilder(kvs=[gb.enc_kv("general.architecture", gb.STRING, "llama"),
                            gb.enc_kv("x", gb.U32, 7)])
    raw = b.to_bytes()
    assert len(raw) % 32 != 0
    path = tmp_path / "meta.gguf"
    path.write_bytes(raw)
    f = compare_with_gguf_reader(path)
    assert f.tensors == [] and f.data_offset > f.file_size


def test_from_bytes_equals_path(tmp_path):
    path = tmp_path / "m.gguf"
    _write_with_gguf_writer(path, 64)
    a = _core.GGUFFile(str(path))
    b = _core.GGUFFile.from_bytes(path.read_bytes())
    c = _core.GGUFFile.from_bytes(bytearray(path.read_bytes()))
    d = _core.GGUFFile(os.fsencode(path))
    for other in (b, c, d):
        assert other.metadata == a.metadata
        assert other.metadata_types == a.metadata_types
        assert other.tensors == a.tensors
        assert (other.version, other.alignment, other.data_offset, other.file_size) == \
               (a.version, a.alignment, a.data_offset, a.file_size)
        for t in a.tensors:
            assert other.tensor_data(t["name"]).tobytes() == a.tensor_data(t["name"]).tobytes()


def test_tensor_data_is_a_readonly_view_that_keeps_the_file_alive(tmp_path):
    path = tmp_path / "m.gguf"
    _write_with_gguf_writer(path, None)
    expected = np.ascontiguousarray(gguf.GGUFReader(path).tensors[0].data).tobytes()
    for opener in (lambda: _core.GGUFFile(path), lambda: _core.GGUFFile.from_bytes(path.read_bytes())):
        f = opener()
        name = f.tensors[0]["name"]
        view = f.tensor_data(name)
        assert np.shares_memory(view, f.tensor_data(name))  # zero-copy: both views alias one buffer
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view[0] = 1
        del f
        gc.collect()
        assert view.tobytes() == expected  # still valid: the view owns a reference to the file


def test_tensor_data_unknown_name(tmp_path):
    f = _core.GGUFFile.from_bytes(gb.standard_builder().to_bytes())
    with pytest.raises(KeyError, match="no tensor named"):
        f.tensor_data("nope")


def test_metadata_is_built_once():
    f = _core.GGUFFile.from_bytes(gb.standard_builder().to_bytes())
    assert f.metadata is f.metadata
    assert f.tensors is f.tensors
    assert f.metadata_types is f.metadata_types


def test_typed_getters():
    b = gb.standard_builder()
    b.kvs.append(gb.enc_kv("t.u64_small", gb.U64, 12345))
    f = _core.GGUFFile.from_bytes(b.to_bytes())
    for key, value in (("t.u8", 200), ("t.i8", -100), ("t.u16", 60000), ("t.i16", -30000),
                       ("t.u32", 4_000_000_000), ("t.i32", -2_000_000_000), ("t.i64", -(2**62)),
                       ("t.u64_small", 12345)):
        assert f.get_int(key) == value
        assert f.get_float(key) == float(value)
    assert f.get_float("t.f32") == 0.25 and f.get_float("t.f64") == -1.5e300
    assert f.get_bool("t.bool") is True
    assert f.get_string("t.str") == "héllo ✓ 😀"
    assert f.get_int("missing", 7) == 7 and f.get_string("missing") is None
    with pytest.raises(_core.GGUFFormatError, match=r"'t.u64' = 9223372036854775813 does not fit in int64"):
        f.get_int("t.u64")
    wrong = [("get_int", "t.f32", "FLOAT32, expected an integer"), ("get_int", "t.bool", "BOOL"),
             ("get_float", "t.str", "STRING, expected a number"), ("get_bool", "t.u8", "UINT8, expected BOOL"),
             ("get_string", "t.arr_str", "ARRAY of STRING, expected STRING"),
             ("get_int", "t.arr_i32", "ARRAY of INT32")]
    for getter, key, fragment in wrong:
        with pytest.raises(_core.GGUFFormatError, match=f"'{key}' has type {fragment}"):
            getattr(f, getter)(key)


# Newest id in the runtime's GgmlType enum (MXFP4); later ids must be unknown.
MAX_KNOWN_TYPE_ID = 39


def test_type_table_matches_gguf_py():
    for type_id in range(256):
        info = _core.ggml_type_info(type_id)
        try:
            qtype = GGMLQuantizationType(type_id)
        except ValueError:
            qtype = None
        if qtype is None or qtype not in GGML_QUANT_SIZES or type_id > MAX_KNOWN_TYPE_ID:
            assert info is None, type_id
        elif qtype == GGMLQuantizationType.Q8_1:
            # ggml-common.h: block_q8_1 = 2 x ggml_half + 32 x int8 (static_assert there);
            # gguf-py still carries the old float-scale size 4 + 4 + 32.
            assert info == ("Q8_1", 32, 2 + 2 + 32)
        else:
            assert info == (qtype.name, *GGML_QUANT_SIZES[qtype]), type_id


def test_every_known_type_parses_with_oracle_sizes(tmp_path):
    # One tensor of each type our table knows, sized with gguf-py's table.
    tensors = []
    for type_id in range(64):
        info = _core.ggml_type_info(type_id)
        if info is not None:
            tensors.append(gb.Tensor(f"t{type_id}", [info[1] * 2, 3], type_id))
    path = tmp_path / "all_types.gguf"
    path.write_bytes(gb.GGUFBuilder(tensors=tensors).to_bytes())
    f = _core.GGUFFile(path)
    for t, spec in zip(f.tensors, tensors):
        assert t["nbytes"] == gb.tensor_nbytes(spec.ne, spec.ggml_type)


def test_large_vocabulary_array_round_trips():
    words = [f"tok{i}·{chr(0x4E00 + i % 2000)}" for i in range(50_000)]
    b = gb.GGUFBuilder(kvs=[gb.enc_kv("tokenizer.ggml.tokens", gb.ARRAY, words, gb.STRING),
                            gb.enc_kv("tokenizer.ggml.scores", gb.ARRAY, [float(i) for i in range(50_000)], gb.F32)])
    f = _core.GGUFFile.from_bytes(b.to_bytes())
    assert f.metadata["tokenizer.ggml.tokens"] == words
    assert f.metadata["tokenizer.ggml.scores"][-1] == 49_999.0


def test_header_fields_read_from_raw_bytes():
    raw = gb.standard_builder().to_bytes()
    f = _core.GGUFFile.from_bytes(raw)
    assert f.version == struct.unpack_from("<I", raw, 4)[0] == 3
    assert len(f.tensors) == struct.unpack_from("<q", raw, 8)[0]
    assert len(f.metadata) == struct.unpack_from("<q", raw, 16)[0]
    assert f.file_size == len(raw)


@pytest.mark.slow
def test_default_model_matches_gguf_reader(default_model):
    compare_with_gguf_reader(default_model)
