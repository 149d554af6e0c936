"""Hostile and broken GGUF input must raise GGUFFormatError with a message that
says what is wrong -- never crash, hang, allocate absurdly or return garbage.

Each case starts from a file that both gguf-py and our reader accept (checked
by test_base_files_are_valid) and changes exactly one thing at the byte level.
"""
from __future__ import annotations

import errno
import os
import re
import struct

import gguf
import pytest

from minicpm_edge import _core

import gguf_builders as gb
from gguf_builders import ARRAY, BOOL, F32, I32, STRING, U8, U32, U64, GGUFBuilder, Tensor, enc_kv, enc_str

ARCH = enc_kv("general.architecture", STRING, "llama")
F32_ID, Q8_0_ID, F64_ID = 0, 8, 28


def kv_file(*kvs: bytes) -> bytes:
    return GGUFBuilder(kvs=[ARCH, *kvs]).to_bytes()


def tensor_file(*tensors: Tensor, kvs=(), alignment: int = 32) -> bytes:
    return GGUFBuilder(kvs=[ARCH, *kvs], tensors=list(tensors), alignment=alignment).to_bytes()


def header_variant(**overrides) -> bytes:
    b = gb.standard_builder()
    for k, v in overrides.items():
        setattr(b, k, v)
    return b.to_bytes()


def raw_key(length: int, tail: bytes = b"") -> bytes:
    """A key whose declared length is `length`, followed by whatever `tail` is."""
    return struct.pack("<Q", length) + tail


def raw_info(name: bytes, n_dims: int, dims: list[int], type_id: int, offset: int) -> bytes:
    return (enc_str(name) + struct.pack("<I", n_dims) + b"".join(struct.pack("<q", d) for d in dims)
            + struct.pack("<IQ", type_id, offset))


def with_raw_info(info: bytes, data_len: int = 64) -> bytes:
    """A file whose single tensor info is `info` verbatim, plus `data_len` data bytes."""
    meta = GGUFBuilder(kvs=[ARCH], n_tensors=1).header() + ARCH + info
    return meta + bytes(gb.align_up(len(meta), 32) - len(meta)) + bytes(data_len)


def big_endian_header() -> bytes:
    raw = bytearray(gb.standard_builder().to_bytes())
    raw[4:24] = struct.pack(">Iqq", 3, 4, 17)  # gguf-py's big-endian layout: magic stays "GGUF"
    return bytes(raw)


# (id, file bytes, message fragment). One corruption per case.
CASES = [
    ("empty", lambda: b"", "empty input (0 bytes)"),
    ("bad_magic", lambda: b"GGUX" + gb.standard_builder().to_bytes()[4:], "bad magic 'GGUX'"),
    ("magic_of_other_format", lambda: b"\x89PNG\r\n\x1a\n" + bytes(64), "bad magic '\\x89PNG'"),
    ("version_0", lambda: header_variant(version=0), "unsupported version 0 (supported: 2, 3)"),
    ("version_1", lambda: header_variant(version=1), "version 1 is obsolete"),
    ("version_4", lambda: header_variant(version=4), "unsupported version 4"),
    ("big_endian", big_endian_header, "big-endian GGUF file"),
    ("huge_n_kv", lambda: header_variant(n_kv=2**40), "header claims 1099511627776 metadata entries"),
    ("max_n_kv", lambda: header_variant(n_kv=2**63 - 1), "claims 9223372036854775807 metadata entries"),
    ("huge_n_tensors", lambda: header_variant(n_tensors=2**40), "header claims 1099511627776 tensors"),
    ("negative_n_kv", lambda: header_variant(n_kv=-1), "negative metadata count -1"),
    ("negative_n_tensors", lambda: header_variant(n_tensors=-(2**63)), "negative tensor count -9223372036854775808"),
    ("huge_key_length", lambda: kv_file(raw_key(2**62, b"abc")), "metadata key #1 claims 4611686018427387904 bytes"),
    ("max_key_length", lambda: kv_file(raw_key(2**64 - 1, b"abc" * 10)), "claims 18446744073709551615 bytes"),
    ("huge_string_value", lambda: kv_file(enc_str("k") + struct.pack("<IQ", STRING, 2**60) + b"xx"),
     "string value of metadata key #1 'k' claims 1152921504606846976 bytes"),
    ("huge_array_length", lambda: kv_file(enc_str("a") + struct.pack("<IIQ", ARRAY, U32, 2**61) + bytes(8)),
     "'a' claims 2305843009213693952 elements of UINT32"),
    ("array_length_overflows_bytes", lambda: kv_file(enc_str("a") + struct.pack("<IIQ", ARRAY, U64, 2**62) + bytes(16)),
     "claims 4611686018427387904 elements of UINT64 (at least 8 bytes each)"),
    ("huge_string_array", lambda: kv_file(enc_str("a") + struct.pack("<IIQ", ARRAY, STRING, 10**12) + bytes(32)),
     "claims 1000000000000 elements of STRING"),
    ("huge_string_in_array", lambda: kv_file(enc_str("a") + struct.pack("<IIQ", ARRAY, STRING, 2) + enc_str("ok")
                                             + struct.pack("<Q", 2**40)),
     "element 1 of metadata key #1 'a' claims 1099511627776 bytes"),
    ("unknown_value_type", lambda: kv_file(enc_str("k") + struct.pack("<I", 13) + bytes(8)), "unknown value type 13"),
    ("negative_value_type", lambda: kv_file(enc_str("k") + struct.pack("<i", -1) + bytes(8)),
     "unknown value type 4294967295"),
    ("nested_array", lambda: kv_file(enc_str("k") + struct.pack("<IIQ", ARRAY, ARRAY, 1) + struct.pack("<IQ", U8, 1)
                                     + b"\x01"), "'k' is a nested array"),
    ("bad_array_elem_type", lambda: kv_file(enc_str("k") + struct.pack("<IIQ", ARRAY, 99, 1) + bytes(8)),
     "unknown array element type 99"),
    ("key_invalid_utf8", lambda: kv_file(enc_kv(b"bad\xff\xfekey", U8, 1)),
     "metadata key #1 is not valid UTF-8 (bad byte 0xff at byte 3"),
    ("key_overlong_utf8", lambda: kv_file(enc_kv(b"\xc0\xafetc", U8, 1)), "metadata key #1 is not valid UTF-8"),
    ("value_surrogate_utf8", lambda: kv_file(enc_kv("k", STRING, b"\xed\xa0\x80")),
     "string value of metadata key #1 'k' is not valid UTF-8"),
    ("value_truncated_utf8", lambda: kv_file(enc_kv("k", STRING, b"ab\xe2\x82")),
     "string value of metadata key #1 'k' is not valid UTF-8 (bad byte 0xe2 at byte 2"),
    ("value_beyond_unicode", lambda: kv_file(enc_kv("k", STRING, b"\xf4\x90\x80\x80")), "is not valid UTF-8"),
    ("array_string_invalid_utf8", lambda: kv_file(enc_kv("toks", ARRAY, [b"ok", b"\x80"], STRING)),
     "string element 1 of metadata key #1 'toks' is not valid UTF-8"),
    ("empty_key", lambda: kv_file(enc_kv("", U8, 1)), "metadata key #1 at offset 69 is empty"),
    ("duplicate_key", lambda: kv_file(enc_kv("k", U8, 1), enc_kv("k", U32, 2)),
     "metadata key #2 'k' is a duplicate of key #1"),
    ("bool_not_0_or_1", lambda: kv_file(enc_str("b") + struct.pack("<IB", BOOL, 2)),
     "BOOL value of metadata key #1 'b' has byte value 2"),
    ("bool_array_not_0_or_1", lambda: kv_file(enc_str("b") + struct.pack("<IIQ", ARRAY, BOOL, 2) + b"\x01\x07"),
     "element 1 of metadata key #1 'b' has byte value 7 (a BOOL must be 0 or 1)"),
    ("duplicate_tensor", lambda: tensor_file(Tensor("w", [8], F32_ID), Tensor("w", [8], F32_ID)),
     "tensor 'w' (#1) duplicates the name of tensor #0"),
    ("tensor_name_64_bytes", lambda: tensor_file(Tensor("n" * 64, [8], F32_ID)),
     "is 64 bytes; ggml allows at most 63"),
    ("tensor_name_empty", lambda: tensor_file(Tensor("", [8], F32_ID)), "tensor #0 has an empty name"),
    ("tensor_name_invalid_utf8", lambda: tensor_file(Tensor(b"w\xff", [8], F32_ID)),
     "name of tensor #0 is not valid UTF-8"),
    ("n_dims_0", lambda: with_raw_info(raw_info(b"w", 0, [], F32_ID, 0)), "tensor 'w' (#0) has n_dims 0 (must be 1..4)"),
    ("n_dims_5", lambda: with_raw_info(raw_info(b"w", 5, [1] * 5, F32_ID, 0)), "has n_dims 5"),
    ("n_dims_huge", lambda: with_raw_info(raw_info(b"w", 2**32 - 1, [1], F32_ID, 0)), "has n_dims 4294967295"),
    ("negative_dim", lambda: tensor_file(Tensor("w", [8, -4], F32_ID, data=bytes(32))),
     "tensor 'w' (#0) has dimension ne[1] = -4 (must be >= 1)"),
    ("zero_dim", lambda: tensor_file(Tensor("w", [0, 4], F32_ID, data=b"")), "has dimension ne[0] = 0"),
    ("dims_product_overflow", lambda: tensor_file(Tensor("w", [2**32, 2**32], F32_ID, data=b"")),
     "dimensions whose product overflows int64 (ne[1] = 4294967296)"),
    ("nbytes_overflow", lambda: tensor_file(Tensor("w", [2**62], F64_ID, data=b"")),
     "byte size overflows (4611686018427387904 blocks of 8 bytes)"),
    ("removed_ggml_type", lambda: tensor_file(Tensor("w", [32], 4, data=bytes(32))), "unknown ggml type id 4"),
    ("unknown_ggml_type", lambda: tensor_file(Tensor("w", [32], 1000, data=bytes(32))), "unknown ggml type id 1000"),
    ("row_not_block_multiple", lambda: tensor_file(Tensor("w", [33, 2], Q8_0_ID, data=bytes(68))),
     "of type Q8_0 has row length ne[0] = 33, not a multiple of the block size 32"),
    ("misaligned_offset", lambda: tensor_file(Tensor("w", [8], F32_ID, offset=4)),
     "tensor 'w' (#0) has data offset 4, not a multiple of the alignment 32"),
    ("tensor_past_eof", lambda: tensor_file(Tensor("a", [8], F32_ID), Tensor("w", [64], F32_ID, data=bytes(100))),
     "tensor 'w' (#1) extends past end of file"),
    ("tensor_offset_huge", lambda: tensor_file(Tensor("w", [8], F32_ID, offset=2**63, data=b"")),
     "offset 9223372036854775808 + 32 bytes > file size"),
    ("tensor_offset_wraps", lambda: tensor_file(Tensor("w", [8], F32_ID, offset=2**64 - 32, data=b"")),
     "offset 18446744073709551584 + 32 bytes"),
    ("tensors_overlap", lambda: tensor_file(Tensor("a", [16], F32_ID, offset=0), Tensor("b", [8], F32_ID, offset=32)),
     "tensor 'b' (#1) at offset 32 overlaps tensor 'a' (#0) which spans [0, 64)"),
    ("tensors_same_offset", lambda: tensor_file(Tensor("a", [8], F32_ID, offset=0), Tensor("b", [8], F32_ID, offset=0)),
     "overlaps"),
    ("alignment_0", lambda: tensor_file(Tensor("w", [8], F32_ID), kvs=[enc_kv("general.alignment", U32, 0)]),
     "general.alignment must be a non-zero power of two, got 0"),
    ("alignment_3", lambda: tensor_file(Tensor("w", [8], F32_ID), kvs=[enc_kv("general.alignment", U32, 3)]),
     "non-zero power of two, got 3"),
    ("alignment_wrong_type", lambda: tensor_file(Tensor("w", [8], F32_ID), kvs=[enc_kv("general.alignment", I32, 32)]),
     "general.alignment must be UINT32, got INT32"),
    ("alignment_string", lambda: kv_file(enc_kv("general.alignment", STRING, "32")), "must be UINT32, got STRING"),
    ("alignment_too_large", lambda: kv_file(enc_kv("general.alignment", U32, 1 << 21)),
     "general.alignment 2097152 exceeds the supported maximum 1048576"),
    ("data_section_past_eof", lambda: gb.standard_builder().meta_bytes(), "data section starts at offset"),
]


@pytest.mark.parametrize("make, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed(make, fragment):
    data = make()
    with pytest.raises(_core.GGUFFormatError) as info:
        _core.GGUFFile.from_bytes(data)
    msg = str(info.value)
    assert msg.startswith("GGUF: "), msg
    assert fragment in msg, msg


def test_case_ids_are_distinct():
    assert len({c[0] for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("data", [
    gb.standard_builder().to_bytes(),
    kv_file(enc_kv("k", U8, 1)),
    tensor_file(Tensor("w", [8], F32_ID), Tensor("n" * 63, [8], F32_ID)),  # 63-byte name: the largest allowed
    tensor_file(Tensor("w", [8], F32_ID), kvs=[enc_kv("general.alignment", U32, 1 << 20)], alignment=1 << 20),
    with_raw_info(raw_info(b"w", 4, [8, 1, 1, 1], F32_ID, 0)),
], ids=["standard", "kv", "name_63", "alignment_max", "raw_info"])
def test_base_files_are_valid(tmp_path, data):
    """The starting points of the corruptions are valid for both readers."""
    path = tmp_path / "ok.gguf"
    path.write_bytes(data)
    ref = gguf.GGUFReader(path)
    ours = _core.GGUFFile.from_bytes(data)
    assert [t["name"] for t in ours.tensors] == [t.name for t in ref.tensors]
    assert list(ours.metadata) == [k for k in ref.fields if not k.startswith("GGUF.")]


def test_big_endian_file_from_gguf_writer(tmp_path):
    path = tmp_path / "be.gguf"
    w = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("x", 1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(_core.GGUFFormatError, match="version field reads 0x03000000: this is a big-endian"):
        _core.GGUFFile(path)


def _python_accepts(b: bytes) -> bool:
    try:
        b.decode("utf-8")  # strict: the oracle for "valid UTF-8"
        return True
    except UnicodeDecodeError:
        return False


def test_utf8_validation_matches_python():
    """Every 1- and 2-byte sequence, and boundary-biased 3..5-byte ones, are
    accepted as a string value exactly when Python's strict decoder accepts them."""
    import random
    rng = random.Random(0)
    edges = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
             0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF]
    samples = [bytes([a]) for a in range(256)] + [bytes([a, b]) for a in range(256) for b in range(256)]
    samples += [bytes(rng.choice(edges) for _ in range(rng.randint(3, 5))) for _ in range(20_000)]
    prefix = GGUFBuilder(kvs=[ARCH], n_kv=2).to_bytes() + enc_str("s") + struct.pack("<I", STRING)
    mismatches = []
    for s in samples:
        try:
            _core.GGUFFile.from_bytes(prefix + enc_str(s))
            ours = True
        except _core.GGUFFormatError as e:
            assert "is not valid UTF-8" in str(e), str(e)
            ours = False
        if ours != _python_accepts(s):
            mismatches.append(s)
    assert not mismatches, mismatches[:10]


def _truncation_points(raw: bytes, data_offset: int) -> list[int]:
    data_len = len(raw) - data_offset
    return list(range(data_offset)) + [data_offset, data_offset + 1, data_offset + data_len // 2, len(raw) - 1]


def test_truncation_at_every_offset():
    raw = gb.standard_builder().to_bytes()
    data_offset = _core.GGUFFile.from_bytes(raw).data_offset
    pattern = re.compile(r"^GGUF: .*(file truncated|claims|past the end of the file|extends past end of file)")
    for cut in _truncation_points(raw, data_offset):
        with pytest.raises(_core.GGUFFormatError) as info:
            _core.GGUFFile.from_bytes(raw[:cut])
        msg = str(info.value)
        if cut == 0:
            assert "empty input" in msg
            continue
        assert pattern.search(msg), (cut, msg)
        assert f"file size {cut}" in msg, (cut, msg)


def test_truncation_names_the_field():
    # A large first entry keeps the up-front count check satisfied, so parsing
    # reaches the cut and reports the field it was reading.
    pad = enc_kv("pad", STRING, "x" * 200)
    arch = enc_kv("general.architecture", STRING, "llama")
    arr = enc_kv("arr", ARRAY, ["abcdefgh", "cd"], STRING)
    raw = GGUFBuilder(kvs=[pad, arch, arr]).to_bytes()
    k1 = 24 + len(pad)
    k2 = k1 + len(arch)
    a0 = k2 + 8 + 3 + 4 + 4 + 8  # first array element
    cases = [
        (2, "magic needs 4 bytes at offset 0"),
        (6, "version needs 4 bytes at offset 4"),
        (12, "tensor count needs 8 bytes at offset 8"),
        (20, "metadata count needs 8 bytes at offset 16"),
        (k1 + 4, f"length of metadata key #1 needs 8 bytes at offset {k1} but only 4 remain"),
        (k1 + 8 + 3, f"metadata key #1 claims 20 bytes at offset {k1 + 8} but only 3 remain"),
        (k1 + 28 + 2, "value type of metadata key #1 'general.architecture' needs 4 bytes"),
        (k1 + 32 + 5, "length of string value of metadata key #1 'general.architecture' needs 8 bytes"),
        (k1 + 40 + 2, "string value of metadata key #1 'general.architecture' claims 5 bytes"),
        (k2 + 15 + 1, "array element type of metadata key #2 'arr' needs 4 bytes"),
        (k2 + 19 + 7, "array length of metadata key #2 'arr' needs 8 bytes"),
        (a0 + 16 + 3, "length of element 1 of metadata key #2 'arr' needs 8 bytes"),
        (a0 + 16 + 8 + 1, "element 1 of metadata key #2 'arr' claims 2 bytes"),
    ]
    for cut, fragment in cases:
        with pytest.raises(_core.GGUFFormatError) as info:
            _core.GGUFFile.from_bytes(raw[:cut])
        assert fragment in str(info.value), (cut, str(info.value))
        assert f"file size {cut})" in str(info.value)


def test_truncated_in_tensor_info_names_the_tensor():
    b = GGUFBuilder(kvs=[ARCH], tensors=[Tensor("blk.0.attn_q.weight", [8, 2], F32_ID)])
    meta = b.meta_bytes()
    info_start = 24 + len(ARCH)
    name_end = info_start + 8 + len("blk.0.attn_q.weight")
    cases = [(name_end + 2, "n_dims of tensor 'blk.0.attn_q.weight' (#0) needs 4 bytes"),
             (name_end + 4 + 8 + 3, "dimension 1 of tensor 'blk.0.attn_q.weight' (#0)"),
             (name_end + 4 + 16 + 1, "type of tensor 'blk.0.attn_q.weight' (#0)"),
             (len(meta) - 1, "data offset of tensor 'blk.0.attn_q.weight' (#0) needs 8 bytes")]
    for cut, fragment in cases:
        with pytest.raises(_core.GGUFFormatError, match=re.escape(fragment)):
            _core.GGUFFile.from_bytes(meta[:cut])


def test_empty_file_on_disk(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(_core.GGUFFormatError, match=r"^GGUF: empty file \(0 bytes\): not a GGUF file \[in '.*empty\.gguf'\]$"):
        _core.GGUFFile(path)


def test_errors_from_a_path_name_the_file(tmp_path):
    path = tmp_path / "bad.gguf"
    path.write_bytes(header_variant(version=7))
    with pytest.raises(_core.GGUFFormatError, match=r"unsupported version 7 .*\[in '.*bad\.gguf'\]"):
        _core.GGUFFile(path)


def test_nonexistent_path(tmp_path):
    path = tmp_path / "missing.gguf"
    with pytest.raises(FileNotFoundError) as info:
        _core.GGUFFile(path)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(path)
    assert str(info.value) == f"[Errno 2] GGUF: cannot open: No such file or directory: '{path}'"


def test_nonexistent_undecodable_path(tmp_path):
    path = os.fsencode(tmp_path) + b"/caf\xe9-\xff.gguf"  # not UTF-8
    with pytest.raises(FileNotFoundError) as info:
        _core.GGUFFile(path)
    assert info.value.filename == os.fsdecode(path)


def test_messages_keep_unicode_names_readable():
    data = kv_file(enc_kv("ключ", U8, 1), enc_kv("ключ", U8, 2))
    with pytest.raises(_core.GGUFFormatError, match="metadata key #2 'ключ' is a duplicate of key #1"):
        _core.GGUFFile.from_bytes(data)


def test_directory_path(tmp_path):
    with pytest.raises(IsADirectoryError):
        _core.GGUFFile(tmp_path)


def test_path_with_nul_byte(tmp_path):
    real = tmp_path / "m.gguf"
    real.write_bytes(gb.standard_builder().to_bytes())
    with pytest.raises(_core.ArgumentError, match="NUL byte"):
        _core.GGUFFile(str(real) + "\0.txt")  # must not open the prefix


def test_from_bytes_rejects_non_buffers():
    with pytest.raises(TypeError):
        _core.GGUFFile.from_bytes("GGUF as text")
