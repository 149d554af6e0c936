"""The ternary tl3 format (docs/FORMAT.md "Ternary"): the converter's packing against
FORMAT.md's rule (spelled out here), the matmul driver on every ISA level against numpy's
BitLinear and against t2 of the same weights, and clear errors for inconsistent files."""
from __future__ import annotations

import numpy as np
import pytest

import gguf_builders as gb
from model_oracles import bitlinear_reference
from minicpm_edge import Model, _core
from minicpm_edge.convert import convert, ternary


def test_pack_follows_the_layout_rule():
    """Every weight read back by FORMAT.md's rule: row r is row r % 32 of block r // 32;
    input k is digit k % 3 of group g = k // 3 of octet g // 16; the group's sign is bit
    p = (g % 16) // 2 of byte 32 h + 16 l + j (h = (r % 32) // 16, j = r % 16, l = g % 2),
    its index the nibble h of byte 64 + 32 p + 16 l + j; v = +-index = 9 w0 + 3 w1 + w2."""
    rng = np.random.default_rng(11)
    rows, cols = 45, 100
    t = rng.integers(-1, 2, (rows, cols)).astype(np.int8)
    data = ternary.pack_tl3(t)
    assert data.shape == (2, 320 * 3)
    for r in range(rows):
        block = data[r // 32]
        h, j = (r % 32) // 16, r % 16
        for k in range(cols):
            g = k // 3
            octet = block[320 * (g // 16):320 * (g // 16 + 1)]
            p, l = (g % 16) // 2, g % 2
            negative = (octet[32 * h + 16 * l + j] >> p) & 1
            index = (octet[64 + 32 * p + 16 * l + j] >> (4 * h)) & 15
            v = -int(index) if negative else int(index)
            digits = [(v + 13) // 9 - 1, 0, 0]
            rest = v - 9 * digits[0]
            digits[1] = (rest + 4) // 3 - 1
            digits[2] = rest - 3 * digits[1]
            assert digits[k % 3] == t[r, k], (r, k)
    assert np.array_equal(ternary.unpack_tl3(data, rows, cols), t)
    # Padding: rows 45..63 and inputs 100..143 are zero weights.
    full = np.zeros((64, 144), np.int8)
    full[:rows, :cols] = t
    assert np.array_equal(ternary.unpack_tl3(data, 64, 144), full)


@pytest.mark.parametrize("rows,cols", [(37, 100), (640, 2560), (70, 6912)])
@pytest.mark.parametrize("n_tok", [1, 3, 64])
def test_tl3_matmul_against_numpy_and_t2(rows, cols, n_tok):
    rng = np.random.default_rng(rows * 5 + n_tok)
    t = rng.integers(-1, 2, (rows, cols)).astype(np.int8)
    s = 0.0371
    data = ternary.pack_tl3(t)
    x = (rng.standard_normal((n_tok, cols)) * rng.uniform(0.1, 10, (n_tok, 1))).astype(np.float32)
    ref = bitlinear_reference(x, t, s)
    exact = x.astype(np.float64) @ (t.astype(np.float64) * s).T
    # t2 of the same weights gives the same integer dots, so the same bits.
    t2 = _core.ternary_matmul(ternary.pack(t), s, rows, x, int8=True) if cols % 128 == 0 else None
    for isa in _core.supported_isas():
        for threads in (1, 2):
            y = _core.ternary_matmul(data, s, rows, x, int8=True, n_threads=threads, isa=isa, layout="tl3")
            assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(ref)), (isa, threads)
            if t2 is not None:
                assert np.array_equal(y, t2), (isa, threads)
            y = _core.ternary_matmul(data, s, rows, x, int8=False, n_threads=threads, isa=isa, layout="tl3")
            assert np.max(np.abs(y - exact)) <= 1e-5 * np.max(np.abs(exact)), (isa, threads)


def test_binding_checks_sizes():
    data = ternary.pack_tl3(np.zeros((4, 96), np.int8))
    x = np.zeros((2, 96), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        _core.ternary_matmul(data[:, :-1], 1.0, 4, x, layout="tl3")
    with pytest.raises(ValueError, match="layout"):
        _core.ternary_matmul(data, 1.0, 4, x, layout="tl2")
    assert _core.ternary_matmul(data, 1.0, 4, np.zeros((0, 96), np.float32), layout="tl3").shape == (0, 4)


@pytest.fixture(scope="module")
def tl3_file(tiny_models, tmp_path_factory):
    return convert(tiny_models / "bitnet", tmp_path_factory.mktemp("tl3") / "bitnet-tl3.gguf", out_type="tl3",
                   progress=False)


def test_tl3_file_equals_t2_file(tl3_file, tiny_models, tmp_path):
    """Both layouts of the same ternarized weights give the same integer dots: the same
    logits bit for bit, prefill and decode (the transformers comparison of test_bitnet
    covers t2)."""
    t2 = convert(tiny_models / "bitnet", tmp_path / "t2.gguf", out_type="t2", progress=False)
    ids = list(range(3, 40))
    a, b = Model(str(tl3_file), n_ctx=64), Model(str(t2), n_ctx=64)
    assert np.array_equal(a.logits(ids), b.logits(ids))
    a.reset(), b.reset()
    for i in ids[:8]:
        assert np.array_equal(a.logits([i]), b.logits([i]))


def test_tl3_descriptor_and_reconversion(tl3_file, tmp_path):
    from gguf import GGUFReader
    reader = GGUFReader(str(tl3_file))
    name = "blk.1.ffn_down.weight"
    hidden, ffn = (reader.fields[f"bitnet.{k}"].contents() for k in ("embedding_length", "feed_forward_length"))
    assert list(reader.fields["minicpm_edge.ternary." + name].contents()) == [3, hidden, ffn]
    # tl3 -> t2 -> tl3 keeps every weight.
    t2 = convert(tl3_file, tmp_path / "t2.gguf", out_type="t2", progress=False)
    back = convert(t2, tmp_path / "tl3.gguf", out_type="tl3", progress=False)
    a, b = GGUFReader(str(tl3_file)), GGUFReader(str(back))
    for t in a.tensors:
        assert np.array_equal(np.asarray(t.data), np.asarray(b.get_tensor(
            [u.name for u in b.tensors].index(t.name)).data)), t.name


def test_tl3_hostile_metadata(tl3_file, tmp_path):
    kvs, tensors = gb.parts_of(tl3_file)
    name = "blk.0.ffn_up.weight"
    key = "minicpm_edge.ternary." + name
    data = tensors[name]
    from gguf import GGUFReader
    _, rows, cols = (int(v) for v in GGUFReader(str(tl3_file)).fields[key].contents())
    cases = {
        "short": ({key: gb.enc_kv(key, gb.ARRAY, [3, rows], gb.U32)}, {}, r"must be \[3, rows, cols\]"),
        "rows": ({key: gb.enc_kv(key, gb.ARRAY, [3, rows + 1, cols], gb.U32)}, {}, "describes a"),
        "cols": ({key: gb.enc_kv(key, gb.ARRAY, [3, rows, cols - 1], gb.U32)}, {}, "describes a"),
        "shape": ({}, {name: gb.Tensor(name, [data.ne[0] - 320, data.ne[1]], data.ggml_type)},
                  "must be I8 of shape"),
    }
    for label, (kv_patch, t_patch, says) in cases.items():
        p = gb.write_parts(tmp_path / f"{label}.gguf", {**kvs, **kv_patch}, {**tensors, **t_patch})
        with pytest.raises((ValueError, NotImplementedError), match=says):
            Model(str(p), n_ctx=16)
