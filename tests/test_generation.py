"""Generation loop and Python API on the tiny Llama checkpoint: greedy
generation against transformers' generate(), prefix reuse, streaming, OpenAI
shapes, and clear errors on bad input."""
from __future__ import annotations

import numpy as np
import pytest

from minicpm_edge import ContextOverflowError, GGUFFormatError, Model
from minicpm_edge.convert import convert


@pytest.fixture(scope="module")
def tiny(tiny_models, tmp_path_factory):
    path = convert(tiny_models / "llama", tmp_path_factory.mktemp("gen") / "llama-f32.gguf", out_type="f32",
                   progress=False)
    return tiny_models / "llama", path


def test_greedy_matches_transformers(tiny):
    import torch
    from transformers import LlamaForCausalLM

    hf_dir, gguf = tiny
    m = Model(str(gguf), n_ctx=128, n_threads=2)
    prompt = np.random.default_rng(3).integers(0, m.n_vocab, 12).tolist()
    hf = LlamaForCausalLM.from_pretrained(str(hf_dir), torch_dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False, eos_token_id=None,
                          pad_token_id=0, min_new_tokens=24)[0, len(prompt):].tolist()
    gen = m._generator(prompt, max_tokens=24, temperature=0.0, top_k=40, top_p=0.95, min_p=0.05,
                       repeat_penalty=1.0, seed=None)
    ours = []
    while (t := gen.next()) >= 0:
        ours.append(t)
    # Stops only at an end-of-generation token of the tokenizer; compare the common part.
    assert len(ours) > 0 and ours == ref[:len(ours)]
    if len(ours) < 24:
        assert gen.finish_reason == "stop" and ref[len(ours)] in m.tokenizer.eog_ids


def test_prefix_reuse_gives_same_logits(tiny):
    _, gguf = tiny
    m = Model(str(gguf), n_ctx=128)
    ids = np.random.default_rng(5).integers(0, m.n_vocab, 40).tolist()
    full = m.logits(ids)
    m.reset()
    m.eval(ids[:25])
    tail = m.eval(ids[25:], all_logits=True)
    np.testing.assert_allclose(tail, full[25:], rtol=0, atol=1e-5 * np.abs(full).max())


def test_stream_equals_text_and_openai_shapes(tiny):
    _, gguf = tiny
    m = Model(str(gguf), n_ctx=128)
    text = m.generate("hello world", max_tokens=20, temperature=0)
    assert "".join(m.generate("hello world", max_tokens=20, temperature=0, stream=True)) == text
    r = m.create_completion("hello world", max_tokens=20, temperature=0)
    assert r["object"] == "text_completion" and r["choices"][0]["text"] == text
    assert r["choices"][0]["finish_reason"] in ("stop", "length")
    assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
    chunks = list(m.create_completion("hello world", max_tokens=20, temperature=0, stream=True))
    assert "".join(c["choices"][0]["text"] for c in chunks) == text
    assert chunks[-1]["choices"][0]["finish_reason"] == r["choices"][0]["finish_reason"]


def test_seeded_sampling_is_reproducible(tiny):
    _, gguf = tiny
    m = Model(str(gguf), n_ctx=128)
    a = m.generate("the", max_tokens=16, temperature=1.0, seed=11)
    b = m.generate("the", max_tokens=16, temperature=1.0, seed=11)
    assert a == b


def test_errors_are_python_exceptions(tiny, tmp_path):
    _, gguf = tiny
    m = Model(str(gguf), n_ctx=32)
    with pytest.raises(ContextOverflowError):
        m.generate(list(range(40)), max_tokens=4)
    with pytest.raises(ContextOverflowError):
        m.eval(list(range(33)))
    with pytest.raises(ValueError):
        m.eval([m.n_vocab])
    with pytest.raises(ValueError):
        m.generate("hi", max_tokens=4, temperature=-1)
    with pytest.raises(ValueError):
        m.generate("hi", max_tokens=-3)
    with pytest.raises(FileNotFoundError):
        Model(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(GGUFFormatError):
        Model(str(bad))
    with pytest.raises(ValueError):
        Model(str(gguf), n_ctx=-5)
