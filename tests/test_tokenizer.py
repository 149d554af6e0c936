"""Tokenizer built from GGUF metadata, against independent oracles:

* SentencePiece vocabularies: a small BPE model trained here with sentencepiece, converted to GGUF
  the way llama.cpp's convert_hf_to_gguf.py does (tokens, scores, token types), checked against the
  sentencepiece processor itself.
* Byte-level BPE vocabularies: a small BPE trained here with the `tokenizers` library, converted
  to GGUF likewise, checked against a `tokenizers` pipeline laid out as the model families'
  tokenizer.json files lay it out.
* The default model (SmolLM2-135M-Instruct): against transformers loading the same GGUF.
"""
from __future__ import annotations

import io
import json

import gguf
import pytest

from conftest import WIKI_TEST, WIKI_VALID, read_raw
from minicpm_edge.tokenizer import StreamDecoder, Tokenizer, TokenType, byte_to_unicode

MIXED_TEXT = ("Zürich — 東京 and 서울: 3½ km, naïve café 🎉🇺🇸 Ωμέγα\n\t  tabs  and   spaces "
              "don't 'quote' Ünïcödé ½ ⅔ 12345 x² \u200b end")


def _read_back(writer_fill, path) -> dict:
    """Writes a vocabulary-only GGUF with gguf.GGUFWriter, returns what gguf.GGUFReader gives back
    (the dict shape the runtime's own reader produces, float32 scores included)."""
    w = gguf.GGUFWriter(str(path), "llama")
    writer_fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    reader = gguf.GGUFReader(str(path))
    return {k: f.contents() for k, f in reader.fields.items()}


def _stream(tok: Tokenizer, ids, **kw) -> list[str]:
    dec = StreamDecoder(tok, **kw)
    return [dec.feed(i) for i in ids] + [dec.flush()]


# ---------------------------------------------------------------------------------------------
# SentencePiece ("llama") vocabulary
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spm_pair(tmp_path_factory):
    """(sentencepiece processor, GGUF metadata converted from it)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(WIKI_VALID), model_writer=buf, model_type="bpe", vocab_size=4000, byte_fallback=True,
        # Llama's own settings: no normalization and whitespace kept as is -- GGUF has no
        # normalizer, so llama.cpp tokenizes the raw text.
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, control_symbols=["<|im_start|>", "<|im_end|>"],
        user_defined_symbols=["<tool>"], num_threads=2, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())

    # convert_hf_to_gguf.py _create_vocab_sentencepiece: type from the processor's predicates;
    # a user-defined symbol that tokenizer_config lists comes out USER_DEFINED.
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        kind = TokenType.NORMAL
        if sp.is_unknown(i):
            kind = TokenType.UNKNOWN
        elif sp.is_control(i):
            kind = TokenType.CONTROL
        elif sp.is_unused(i):
            kind = TokenType.UNUSED
        elif sp.is_byte(i):
            kind = TokenType.BYTE
        elif piece == "<tool>":
            kind = TokenType.USER_DEFINED
        tokens.append(piece)
        scores.append(sp.get_score(i))
        types.append(int(kind))

    def fill(w):
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(sp.bos_id())
        w.add_eos_token_id(sp.eos_id())
        w.add_unk_token_id(sp.unk_id())
        w.add_add_space_prefix(True)

    return sp, _read_back(fill, tmp_path_factory.mktemp("spm") / "spm-vocab.gguf")


@pytest.fixture(scope="module")
def spm_tok(spm_pair):
    return Tokenizer.from_metadata(spm_pair[1])


def test_spm_matches_sentencepiece_on_wikitext(spm_pair, spm_tok):
    sp, _ = spm_pair
    text = WIKI_TEST.read_text(encoding="utf-8")
    assert spm_tok.encode(text, add_bos=False) == sp.encode(text)
    for line in text.splitlines()[:3000]:
        assert spm_tok.encode(line, add_bos=False) == sp.encode(line), line


def test_spm_bos_follows_llama_cpp_default_and_file_flag(spm_pair, spm_tok):
    sp, md = spm_pair
    text = "The tower is 324 metres tall ."
    # No tokenizer.ggml.add_bos_token in the file: llama.cpp adds BOS to SPM vocabularies.
    assert spm_tok.add_bos is True
    assert spm_tok.encode(text) == [sp.bos_id()] + sp.encode(text)
    assert spm_tok.encode(text, add_bos=False) == sp.encode(text)
    no_bos = Tokenizer.from_metadata({**md, "tokenizer.ggml.add_bos_token": False})
    assert no_bos.encode(text) == sp.encode(text)
    assert no_bos.encode(text, add_bos=True)[0] == sp.bos_id()
    with_eos = Tokenizer.from_metadata({**md, "tokenizer.ggml.add_eos_token": True})
    assert with_eos.encode(text) == [sp.bos_id()] + sp.encode(text) + [sp.eos_id()]
    assert spm_tok.encode("") == [sp.bos_id()]
    assert spm_tok.encode("", add_bos=False) == []


def test_spm_decode_matches_sentencepiece(spm_pair, spm_tok):
    sp, _ = spm_pair
    lines = [ln for ln in WIKI_TEST.read_text(encoding="utf-8").splitlines()[:2000] if ln]
    for line in lines + [MIXED_TEXT, "  two leading spaces", "trailing  "]:
        ids = sp.encode(line)
        assert spm_tok.decode(ids) == sp.decode(ids) == line
        # BOS dropped on decode; its prefix space goes with it, as in sentencepiece.
        assert spm_tok.decode([sp.bos_id()] + ids, skip_special=True) == line
        assert spm_tok.decode(spm_tok.encode(line), skip_special=True) == line


def test_spm_byte_fallback_and_streaming(spm_pair, spm_tok):
    sp, _ = spm_pair
    ids = spm_tok.encode(MIXED_TEXT, add_bos=False)
    assert ids == sp.encode(MIXED_TEXT)
    assert any(spm_tok.token_type(i) == TokenType.BYTE for i in ids), "text should need byte fallback"
    deltas = _stream(spm_tok, ids)
    assert "".join(deltas) == MIXED_TEXT
    assert all("\ufffd" not in d for d in deltas), "a delta split a UTF-8 character"
    # A prompt that produced text before: the first generated piece keeps its leading space.
    prompt = sp.encode("The sky is")
    gen = sp.encode("The sky is blue")[len(prompt):]
    assert "".join(_stream(spm_tok, gen, context=prompt)) == sp.decode(prompt + gen)[len("The sky is"):]


def test_spm_special_and_user_defined_tokens(spm_pair, spm_tok):
    sp, _ = spm_pair
    start = sp.piece_to_id("<|im_start|>")
    tool = sp.piece_to_id("<tool>")
    # special=True: the control token is one id, and llama.cpp starts the following text with a
    # prefix space again, as sentencepiece does for a fresh string.
    assert spm_tok.encode("<|im_start|>user", add_bos=False, special=True) == [start] + sp.encode("user")
    # special=False: control-token text is ordinary text (sentencepiece never matches control pieces).
    assert spm_tok.encode("<|im_start|>user", add_bos=False) == sp.encode("<|im_start|>user")
    # User-defined tokens are matched whatever `special` says.
    for special in (False, True):
        assert spm_tok.encode("a<tool>b", add_bos=False, special=special) == \
            sp.encode("a") + [tool] + sp.encode("b")
    assert spm_tok.is_special(start) and not spm_tok.is_special(tool)
    assert spm_tok.decode([start], skip_special=True) == ""
    assert spm_tok.token_to_piece(start) == "<|im_start|>"
    assert spm_tok.decode([tool], skip_special=True) == "<tool>"


def test_spm_end_of_generation(spm_pair, spm_tok):
    sp, _ = spm_pair
    assert (spm_tok.bos_id, spm_tok.eos_id, spm_tok.unk_id) == (sp.bos_id(), sp.eos_id(), sp.unk_id())
    # llama.cpp: EOS, plus "<|im_end|>" recognised by its text (it also becomes the EOT token).
    assert spm_tok.eog_ids == {sp.eos_id(), sp.piece_to_id("<|im_end|>")}
    assert spm_tok.eot_id == sp.piece_to_id("<|im_end|>")
    assert spm_tok.vocab_size == sp.get_piece_size()


# ---------------------------------------------------------------------------------------------
# Byte-level BPE ("gpt2") vocabularies
# ---------------------------------------------------------------------------------------------

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Pre-tokenizer regexes as the model families' tokenizer.json files spell them (Llama 3, Qwen2).
HF_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
HF_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def _hf_pipeline(pre: str):
    """(pre_tokenizer, ignore_merges) of the original Hugging Face tokenizer each GGUF pre name
    stands for (llama.cpp convert_hf_to_gguf_update.py pairs the two)."""
    from tokenizers import Regex
    from tokenizers import pre_tokenizers as P

    byte_level = P.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "gpt-2":
        return byte_level, False
    if pre == "smollm":    # SmolLM / StarCoder: digits one by one, then GPT-2's split
        return P.Sequence([P.Digits(individual_digits=True), byte_level]), False
    regex = {"llama-bpe": HF_LLAMA3, "qwen2": HF_QWEN2}[pre]
    split = P.Sequence([P.Split(Regex(regex), behavior="isolated"),
                        P.ByteLevel(add_prefix_space=False, use_regex=False)])
    return split, pre == "llama-bpe"


@pytest.fixture(scope="module")
def bpe_trained():
    """vocab (token -> id) and merges of a byte-level BPE trained on wikitext-2 valid."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    tk = HFTokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train([str(WIKI_VALID)], trainer)
    model = json.loads(tk.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return model["vocab"], merges


def _bpe_metadata(bpe_trained, pre: str, tmp_path, **extra) -> dict:
    vocab, merges = bpe_trained
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    types = [int(TokenType.CONTROL if t in SPECIALS else TokenType.NORMAL) for t in tokens]

    def fill(w):
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(vocab["<|im_start|>"])
        w.add_eos_token_id(vocab["<|im_end|>"])
        for key, value in extra.items():
            getattr(w, f"add_{key}")(value)

    return _read_back(fill, tmp_path / f"bpe-{pre}.gguf")


def _bpe_oracle(bpe_trained, pre: str):
    from tokenizers import AddedToken
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models

    vocab, merges = bpe_trained
    pre_tok, ignore_merges = _hf_pipeline(pre)
    tk = HFTokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges],
                                ignore_merges=ignore_merges))
    tk.pre_tokenizer = pre_tok
    tk.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in SPECIALS])
    return tk


@pytest.mark.parametrize("pre", ["gpt-2", "smollm", "llama-bpe", "qwen2"])
def test_bpe_matches_reference_pipeline(bpe_trained, pre, tmp_path):
    tok = Tokenizer.from_metadata(_bpe_metadata(bpe_trained, pre, tmp_path))
    ref = _bpe_oracle(bpe_trained, pre)
    text = WIKI_TEST.read_text(encoding="utf-8")[:300_000]    # the whole file: the default-model test
    for sample in (text, MIXED_TEXT, "  \n\n 1 \t\n", "I'M SURE it'S fine 'LL"):
        ids = tok.encode(sample, add_bos=False)
        assert ids == ref.encode(sample, add_special_tokens=False).ids
        assert tok.decode(ids, clean_spaces=False) == sample


@pytest.mark.parametrize("pre", ["smollm", "llama-bpe"])
def test_bpe_special_tokens(bpe_trained, pre, tmp_path):
    tok = Tokenizer.from_metadata(_bpe_metadata(bpe_trained, pre, tmp_path))
    ref = _bpe_oracle(bpe_trained, pre)
    chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.encode(chat, add_bos=False, special=True) == ref.encode(chat, add_special_tokens=False).ids
    assert tok.encode("<|im_start|>", add_bos=False, special=True) == [bpe_trained[0]["<|im_start|>"]]
    ref.encode_special_tokens = True     # control-token text as ordinary text
    assert tok.encode(chat, add_bos=False) == ref.encode(chat, add_special_tokens=False).ids
    ids = tok.encode(chat, add_bos=False, special=True)
    assert tok.decode(ids) == chat
    assert tok.decode(ids, skip_special=True) == "user\nWhat is 2+2?\nassistant\n"


def test_bpe_streaming_holds_partial_characters(bpe_trained, tmp_path):
    tok = Tokenizer.from_metadata(_bpe_metadata(bpe_trained, "smollm", tmp_path))
    ids = tok.encode(MIXED_TEXT)
    assert len(ids) > len(MIXED_TEXT.encode("utf-8")) // 2, "expected byte-level pieces"
    deltas = _stream(tok, ids)
    assert "".join(deltas) == MIXED_TEXT
    assert all("\ufffd" not in d for d in deltas)
    # An id cut off mid-character: flush() reports it as U+FFFD rather than dropping it.
    lead_byte = tok.token_id(byte_to_unicode()[0xE6])     # first byte of U+6771 (東)
    assert tok.token_to_bytes(lead_byte) == b"\xe6"
    dec = StreamDecoder(tok)
    assert dec.feed(lead_byte) == ""
    assert dec.flush() == "\ufffd"


def test_bpe_bos_defaults_follow_llama_cpp(bpe_trained, tmp_path):
    bos = bpe_trained[0]["<|im_start|>"]
    # llama.cpp: BPE vocabularies add no BOS unless the pre-tokenizer family does (Llama 3)
    # or the file says so.
    assert Tokenizer.from_metadata(_bpe_metadata(bpe_trained, "smollm", tmp_path)).encode("hi")[0] != bos
    assert Tokenizer.from_metadata(_bpe_metadata(bpe_trained, "llama-bpe", tmp_path)).encode("hi")[0] == bos
    md = _bpe_metadata(bpe_trained, "llama-bpe", tmp_path, add_bos_token=False)
    assert Tokenizer.from_metadata(md).encode("hi")[0] != bos
    md = _bpe_metadata(bpe_trained, "smollm", tmp_path, add_bos_token=True)
    assert Tokenizer.from_metadata(md).encode("hi")[0] == bos


def test_clean_spaces_follows_llama_cpp_detokenize(bpe_trained, tmp_path):
    # llama.cpp cleans spaces for "gpt-2" vocabularies and not for "smollm" ones; the expected
    # strings apply llama-vocab.cpp's three passes by hand.
    text = "a , b ! c 's d ' e 're f 't g 'll h ."
    cleaned = "a, b! c's d'e're f 't g 'll h."
    gpt2 = Tokenizer.from_metadata(_bpe_metadata(bpe_trained, "gpt-2", tmp_path))
    assert gpt2.decode(gpt2.encode(text)) == cleaned
    assert gpt2.decode(gpt2.encode(text), clean_spaces=False) == text
    smollm = Tokenizer.from_metadata(_bpe_metadata(bpe_trained, "smollm", tmp_path))
    assert smollm.decode(smollm.encode(text)) == text


def test_bad_metadata_is_a_clear_error(bpe_trained, tmp_path):
    md = _bpe_metadata(bpe_trained, "smollm", tmp_path)
    tok = Tokenizer.from_metadata(md)
    with pytest.raises(NotImplementedError, match="pre"):
        Tokenizer.from_metadata({**md, "tokenizer.ggml.pre": "no-such-pre"})
    with pytest.raises(NotImplementedError, match="bert"):
        Tokenizer.from_metadata({**md, "tokenizer.ggml.model": "bert"})
    with pytest.raises(ValueError, match="merges"):
        Tokenizer.from_metadata({k: v for k, v in md.items() if k != "tokenizer.ggml.merges"})
    with pytest.raises(ValueError, match="tokenizer.ggml.tokens"):
        Tokenizer.from_metadata({k: v for k, v in md.items() if k != "tokenizer.ggml.tokens"})
    with pytest.raises(ValueError, match="model"):
        Tokenizer.from_metadata({k: v for k, v in md.items() if k != "tokenizer.ggml.model"})
    tokens = list(md["tokenizer.ggml.tokens"])
    with pytest.raises(ValueError, match="duplicate"):
        Tokenizer.from_metadata({**md, "tokenizer.ggml.tokens": tokens[:-1] + [tokens[5]]})
    with pytest.raises(ValueError, match="token_type"):
        Tokenizer.from_metadata({**md, "tokenizer.ggml.token_type": md["tokenizer.ggml.token_type"][:10]})
    with pytest.raises(ValueError, match="array"):
        Tokenizer.from_metadata({**md, "tokenizer.ggml.tokens": "abc"})
    # "glm4" vocabularies have no BOS (llama.cpp), so asking to add one cannot work.
    no_bos = {k: v for k, v in md.items() if k != "tokenizer.ggml.bos_token_id"}
    assert Tokenizer.from_metadata({**no_bos, "tokenizer.ggml.pre": "glm4"}).bos_id is None
    with pytest.raises(ValueError, match="BOS"):
        Tokenizer.from_metadata({**no_bos, "tokenizer.ggml.pre": "glm4", "tokenizer.ggml.add_bos_token": True})
    with pytest.raises(TypeError):
        Tokenizer.from_metadata([("tokenizer.ggml.model", "gpt2")])
    with pytest.raises(TypeError):
        tok.encode(b"bytes")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([-1])
    with pytest.raises(TypeError):
        tok.decode(["a"])


# ---------------------------------------------------------------------------------------------
# The default model, against transformers loading the same GGUF
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm(default_model):
    reader = gguf.GGUFReader(str(default_model))
    md = {k: f.contents() for k, f in reader.fields.items()}
    return md, Tokenizer.from_metadata(md)


@pytest.fixture(scope="module")
def hf_smollm(default_model):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(default_model.parent), gguf_file=default_model.name)


@pytest.fixture(scope="module")
def hf_smollm_digits(hf_smollm, smollm):
    """transformers' GGUF tokenizer (its `tokenizers` backend) with the pre-tokenizer "smollm"
    names. transformers (5.24) builds plain ByteLevel for it, while llama.cpp (llama-vocab.cpp,
    LLAMA_VOCAB_PRE_TYPE_SMOLLM) and SmolLM2's own tokenizer.json split every digit off first.
    Everything else -- vocabulary, merges, special tokens, BOS rule -- is transformers' reading
    of the file."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import pre_tokenizers as P

    assert smollm[0]["tokenizer.ggml.pre"] == "smollm"
    backend = HFTokenizer.from_str(hf_smollm.backend_tokenizer.to_str())
    assert "Digits" not in backend.to_str(), "transformers now splits digits itself: drop this fixture"
    backend.pre_tokenizer = P.Sequence([P.Digits(individual_digits=True),
                                        P.ByteLevel(add_prefix_space=False, use_regex=True)])
    return backend


@pytest.mark.slow
def test_default_model_wikitext_matches_transformers(smollm, hf_smollm, hf_smollm_digits):
    _, tok = smollm
    text = read_raw(WIKI_TEST)
    ids = tok.encode(text)
    assert ids == hf_smollm_digits.encode(text).ids     # the whole file, BOS rule included
    assert tok.decode(ids) == text
    assert hf_smollm_digits.decode(ids, skip_special_tokens=False) == text
    # Unpatched transformers agrees wherever no numeric character is involved.
    plain = "\n".join(ln for ln in text.split("\n") if not any(c.isnumeric() for c in ln))
    assert len(plain) > 200_000
    assert tok.encode(plain) == hf_smollm.encode(plain)


@pytest.mark.slow
def test_default_model_special_tokens(smollm, hf_smollm):
    md, tok = smollm
    for text in ("<|im_start|>user", "<|im_start|>system\nYou are kind.<|im_end|>\n<|endoftext|>"):
        ids = tok.encode(text, special=True)
        assert ids == hf_smollm.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text
    assert tok.encode("<|im_start|>user", special=True)[0] == hf_smollm.convert_tokens_to_ids("<|im_start|>")
    plain = tok.encode("<|im_start|>user")
    assert hf_smollm.convert_tokens_to_ids("<|im_start|>") not in plain
    assert tok.decode(plain) == "<|im_start|>user"
    assert (tok.bos_id, tok.eos_id) == (hf_smollm.bos_token_id, hf_smollm.eos_token_id)
    assert (tok.bos_id, tok.eos_id) == (md["tokenizer.ggml.bos_token_id"], md["tokenizer.ggml.eos_token_id"])
    assert tok.add_bos is md["tokenizer.ggml.add_bos_token"] is False
    assert tok.vocab_size == len(hf_smollm) == len(md["tokenizer.ggml.tokens"])
    ends = {hf_smollm.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    assert ends <= tok.eog_ids
    assert hf_smollm.convert_tokens_to_ids("<|im_start|>") not in tok.eog_ids


@pytest.mark.slow
def test_default_model_streaming_matches_transformers_decode(smollm, hf_smollm):
    _, tok = smollm
    ids = tok.encode(MIXED_TEXT + "<|im_end|>", special=True)
    deltas = _stream(tok, ids, skip_special=True)
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == hf_smollm.decode(ids, skip_special_tokens=True) == MIXED_TEXT


@pytest.mark.slow
def test_default_model_wikitext_matches_llama_cpp(smollm, default_model):
    """The whole file against llama.cpp's own tokenizer (llama-cpp-python, vocab only)."""
    from llama_cpp import Llama

    _, tok = smollm
    text = read_raw(WIKI_TEST)
    llm = Llama(model_path=str(default_model), vocab_only=True, verbose=False)
    ref = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    llm.close()
    assert tok.encode(text, add_bos=False) == ref
