"""The tokenizer a GGUF file describes, rebuilt from its `tokenizer.*` metadata.

Behaviour follows llama.cpp's `llama_vocab` (src/llama-vocab.cpp), the reference
for how a GGUF vocabulary is meant to be used:

* `tokenizer.ggml.model == "gpt2"`: byte-level BPE. The merges run in the
  `tokenizers` library; the text is first cut by the regex list llama.cpp picks
  from `tokenizer.ggml.pre` (PRE_TOKENIZERS below).
* `tokenizer.ggml.model == "llama"`: SentencePiece BPE (merge the adjacent pair
  whose concatenation is the highest-scoring token, byte fallback to `<0xNN>`,
  spaces escaped as U+2581). The vocabulary is handed to the `sentencepiece`
  library as a BPE model proto built from tokens, scores and token types.
* Control / user-defined tokens are cut out of the text before either model
  runs, longest first, exactly as llama.cpp's `tokenizer_st_partition`:
  user-defined ones always, control and unknown ones only with `special=True`.
"""
from __future__ import annotations

import codecs
import numbers
import struct
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Iterable, Mapping, Sequence


class TokenType(IntEnum):
    """`tokenizer.ggml.token_type` values (gguf-py constants.TokenType)."""
    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


# ---------------------------------------------------------------------------------------------
# Pre-tokenizers: tokenizer.ggml.pre -> regexes applied one after the other, each splitting the
# pieces the previous one left (matches and the gaps between them both become pieces), plus the
# per-type flags llama.cpp sets in llama_vocab::impl::load.  Regexes are the Hugging Face
# originals (Oniguruma syntax, as the `tokenizers` library runs them).
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreTokenizer:
    regexes: tuple[str, ...]
    clean_spaces: bool = True       # detokenize removes " ." / " 's" style spaces
    ignore_merges: bool = False     # a piece that is already a token is emitted whole
    add_bos: bool = False           # default for tokenizer.ggml.add_bos_token
    has_bos: bool = True            # False: the vocabulary has no BOS (glm4)


_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_MINICPM5 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+"
             r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SEED_CODER = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}"
               r"| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+")
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
_TEKKEN = (rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*"
           r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTIONS}?"
          rf"|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTIONS}?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_BLOOM = r" ?[^(\s|.,!?…。，、।۔،)]+"


def _table() -> dict[str, PreTokenizer]:
    t: dict[str, PreTokenizer] = {}

    def add(names: str, spec: PreTokenizer) -> None:
        for name in names.split():
            t[name] = spec

    add("default", PreTokenizer((r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]")))
    add("llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
        PreTokenizer((_LLAMA3,), ignore_merges=True, add_bos=True))
    add("dbrx smaug-bpe", PreTokenizer((_LLAMA3,)))
    add("glm4 chatglm-bpe", PreTokenizer((_LLAMA3,), has_bos=False))
    add("falcon", PreTokenizer((r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]")))
    add("gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert mpt olmo "
        "jais exaone4 jina-v1-en jina-v2-code roberta-bpe", PreTokenizer((_GPT2,)))
    add("trillion granite-docling", PreTokenizer((_GPT2,), clean_spaces=False))
    add("starcoder refact codeshell exaone minerva-7b mellum2", PreTokenizer((r"\p{N}", _GPT2)))
    add("smollm command-r", PreTokenizer((r"\p{N}", _GPT2), clean_spaces=False))
    add("qwen2 deepseek-r1-qwen kormo f2llmv2 hunyuan solar-open grok-2",
        PreTokenizer((_QWEN2,), clean_spaces=False))
    add("stablelm2 megrez", PreTokenizer((_QWEN2,)))
    add("seed-coder", PreTokenizer((_SEED_CODER,), clean_spaces=False))
    add("minicpm5", PreTokenizer((r"\p{N}{1,3}", _MINICPM5), ignore_merges=True))
    add("tekken", PreTokenizer((_TEKKEN,), clean_spaces=False, ignore_merges=True, add_bos=True))
    add("gpt-4o llama4 kanana2 talkie minimax-m2", PreTokenizer((_GPT4O,), clean_spaces=False))
    add("bloom gpt3-finnish", PreTokenizer((_BLOOM,)))
    add("poro-chat", PreTokenizer((_BLOOM,), clean_spaces=False))
    add("viking", PreTokenizer((_BLOOM, r"\p{N}"), clean_spaces=False))
    add("deepseek-coder", PreTokenizer((r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"),
                                       clean_spaces=False))
    return t


PRE_TOKENIZERS: Mapping[str, PreTokenizer] = _table()

# Token texts llama.cpp treats as end-of-turn / end-of-generation whatever the file says
# (llama-vocab.cpp, "auto-detect special tokens by text"; ggml-org/llama.cpp#9606).
_EOT_NAMES = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
              "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>")
_EOM_NAMES = ("<|eom_id|>",)
_FIM_PAD_NAMES = ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]")
_FIM_REP_NAMES = ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>")
_FIM_SEP_NAMES = ("<|file_sep|>",)
_EOG_NAMES = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
              "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
              "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
              "<｜end▁of▁sentence｜>", "[e~[")

_SPECIAL_TYPES = (TokenType.CONTROL, TokenType.UNKNOWN)
_MODELS = ("gpt2", "llama")


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map: printable Latin-1 bytes stand for
    themselves, the other 68 bytes are shifted to U+0100 and up, in byte order."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(0x100 + shifted)
            shifted += 1
    return table


# ---------------------------------------------------------------------------------------------
# metadata access
# ---------------------------------------------------------------------------------------------

def _list(md: Mapping, key: str, kind: type, required: bool = False) -> list | None:
    value = md.get(key)
    if value is None:
        if required:
            raise ValueError(f"GGUF metadata has no {key}: the file carries no usable vocabulary")
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"GGUF metadata {key} must be an array, got {type(value).__name__}")
    out = list(value)
    want = {str: str, int: numbers.Integral, float: numbers.Real}[kind]
    for k, v in enumerate(out):
        if isinstance(v, bool) or not isinstance(v, want):
            raise ValueError(f"GGUF metadata {key} must hold {kind.__name__} values, found {type(v).__name__}")
        if kind is not str and type(v) is not kind:
            out[k] = kind(v)     # numpy scalars from other readers
    return out


def _scalar(md: Mapping, key: str, kind: type, default=None):
    value = md.get(key, default)
    if value is None:
        return None
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is bool and (isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b"):
        return bool(value)
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"GGUF metadata {key} must be a {kind.__name__}, got {value!r}")


class Tokenizer:
    """Text <-> token ids for one GGUF vocabulary. Build with `from_metadata` or `from_gguf`."""

    def __init__(self, md: Mapping):
        model = _scalar(md, "tokenizer.ggml.model", str)
        if model is None:
            raise ValueError("GGUF metadata has no tokenizer.ggml.model: the file carries no vocabulary")
        if model in ("none", "no_vocab"):
            raise ValueError(f"this GGUF file has no vocabulary (tokenizer.ggml.model = {model!r})")
        if model not in _MODELS:
            raise NotImplementedError(f"tokenizer.ggml.model {model!r} is not supported; supported: {_MODELS}")
        self.model = model
        tokens = _list(md, "tokenizer.ggml.tokens", str, required=True)
        n = len(tokens)
        if n == 0:
            raise ValueError("tokenizer.ggml.tokens is empty")
        # llama.cpp renames empty tokens rather than rejecting the file.
        tokens = [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
        types = _list(md, "tokenizer.ggml.token_type", int)
        if types is None:
            types = [TokenType.NORMAL] * n
        elif len(types) < n:
            raise ValueError(f"tokenizer.ggml.token_type has {len(types)} entries for {n} tokens")
        scores = _list(md, "tokenizer.ggml.scores", float)
        if scores is not None and len(scores) < n:
            raise ValueError(f"tokenizer.ggml.scores has {len(scores)} entries for {n} tokens")
        self._tokens: list[str] = tokens
        known = {int(t) for t in TokenType}
        self._types: list[int] = [t if t in known else int(TokenType.UNDEFINED) for t in types[:n]]
        self._id_of: dict[str, int] = {}
        for i, t in enumerate(tokens):
            if self._id_of.setdefault(t, i) != i:
                raise ValueError(f"duplicate token in vocabulary: {t!r} has ids {self._id_of[t]} and {i}")

        spm = model == "llama"
        pre_name = _scalar(md, "tokenizer.ggml.pre", str)
        if spm:
            self.pre = None
            self.add_space_prefix = bool(_scalar(md, "tokenizer.ggml.add_space_prefix", bool, True))
            self.clean_spaces = False
            add_bos, defaults = True, {"bos": 1, "eos": 2, "unk": 0}
        else:
            name = pre_name if pre_name else "default"   # llama.cpp warns and uses "default"
            if name not in PRE_TOKENIZERS:
                raise NotImplementedError(f"tokenizer.ggml.pre {name!r} is not supported; supported: "
                                          f"{', '.join(sorted(PRE_TOKENIZERS))}")
            self.pre = PRE_TOKENIZERS[name]
            self.add_space_prefix = False   # llama.cpp's BPE path never inserts a prefix space
            self.clean_spaces = self.pre.clean_spaces
            add_bos = self.pre.add_bos
            defaults = {"bos": 11 if self.pre.has_bos else None, "eos": 11, "unk": None}

        def special_id(key: str, default):
            value = _scalar(md, f"tokenizer.ggml.{key}_token_id", int)
            if value is not None and 0 <= value < n:
                return value
            return default if default is not None and 0 <= default < n else None

        self.bos_id: int | None = special_id("bos", defaults["bos"])
        self.eos_id: int | None = special_id("eos", defaults["eos"])
        self.unk_id: int | None = special_id("unknown", defaults["unk"])
        self.pad_id: int | None = special_id("padding", None)
        self.add_bos: bool = bool(_scalar(md, "tokenizer.ggml.add_bos_token", bool, add_bos))
        self.add_eos: bool = bool(_scalar(md, "tokenizer.ggml.add_eos_token", bool, False))
        if self.add_bos and self.bos_id is None:
            raise ValueError("tokenizer.ggml.add_bos_token is true, but the file has no BOS token")
        if self.add_eos and self.eos_id is None:
            raise ValueError("tokenizer.ggml.add_eos_token is true, but the file has no EOS token")
        self._find_end_tokens(md)

        # Longest first, as tokenizer_st_partition walks them (ties by id, to be deterministic).
        self._special_order = sorted(
            (i for i, t in enumerate(self._types)
             if t in (TokenType.CONTROL, TokenType.USER_DEFINED, TokenType.UNKNOWN)),
            key=lambda i: (-len(self._tokens[i]), i))
        self._pieces = [self._piece_of(i) for i in range(n)]
        if spm:
            self._backend = _SpmBackend(self._tokens, scores or [0.0] * n, self._types, self.unk_id)
        else:
            merges = _list(md, "tokenizer.ggml.merges", str)
            if merges is None:
                raise ValueError("a gpt2 (BPE) vocabulary needs tokenizer.ggml.merges, which the file lacks")
            self._backend = _BpeBackend(self._id_of, merges, self.pre)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, md: Mapping) -> "Tokenizer":
        """From GGUF metadata as a plain dict (key -> str/int/float/bool/list)."""
        if not isinstance(md, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(md).__name__}")
        return cls(md)

    @classmethod
    def from_gguf(cls, path) -> "Tokenizer":
        """Reads only the tokenizer keys of a GGUF file with the `gguf` package."""
        import gguf
        reader = gguf.GGUFReader(str(path))
        md = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}
        return cls(md)

    def _find_end_tokens(self, md: Mapping) -> None:
        """EOT and the end-of-generation set by llama.cpp's rules: the ids the file names, plus
        tokens recognised by their text, which llama.cpp also forces to CONTROL."""
        by_text: set[int] = set()

        def by_name(names: Iterable[str]) -> int | None:
            tid = next((self._id_of[s] for s in names if s in self._id_of), None)
            if tid is not None:
                by_text.add(tid)
            return tid

        def file_id(key: str) -> int | None:
            value = _scalar(md, f"tokenizer.ggml.{key}_token_id", int)
            return value if value is not None and 0 <= value < len(self._tokens) else None

        self.eot_id: int | None = file_id("eot")
        if self.eot_id is None:
            self.eot_id = by_name(_EOT_NAMES)
        eom = file_id("eom")
        if eom is None:
            eom = by_name(_EOM_NAMES)
        found = {self.eot_id, eom, self.eos_id}
        for names, key in ((_FIM_PAD_NAMES, "fim_pad"), (_FIM_REP_NAMES, "fim_rep"), (_FIM_SEP_NAMES, "fim_sep")):
            tid = file_id(key)
            found.add(tid if tid is not None else by_name(names))
        named = {self._id_of[s] for s in _EOG_NAMES if s in self._id_of}
        by_text |= named
        found |= named
        found.discard(None)
        # gpt-oss / solar-open: "<|end|>" separates messages there, it does not end generation.
        texts = {self._tokens[i] for i in found}
        if "<|end|>" in texts and (("<|return|>" in texts and "<|call|>" in texts)
                                   or ("<|calls|>" in texts and "<|flush|>" in texts)):
            found.discard(self._id_of["<|end|>"])
            by_text.discard(self._id_of["<|end|>"])
        for tid in by_text:
            self._types[tid] = TokenType.CONTROL
        self.eog_ids: frozenset[int] = frozenset(found)

    # -- properties -----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def token_type(self, token_id: int) -> TokenType:
        return TokenType(self._types[self._check_id(token_id)])

    def is_special(self, token_id: int) -> bool:
        """Control and unknown tokens: text only with special rendering, matched only with special=True."""
        return self._types[self._check_id(token_id)] in _SPECIAL_TYPES

    def is_eog(self, token_id: int) -> bool:
        return token_id in self.eog_ids

    def token_text(self, token_id: int) -> str:
        """The token as the vocabulary spells it (byte-level / U+2581 form)."""
        return self._tokens[self._check_id(token_id)]

    def token_id(self, text: str) -> int | None:
        """The id of the token spelled `text` in the vocabulary, if any."""
        return self._id_of.get(text)

    def token_to_bytes(self, token_id: int, special: bool = True) -> bytes:
        """The bytes the token stands for. Control/unknown tokens give b"" unless `special`."""
        tid = self._check_id(token_id)
        if not special and self._types[tid] in _SPECIAL_TYPES:
            return b""
        return self._pieces[tid]

    def token_to_piece(self, token_id: int, special: bool = True) -> str:
        """The token's text (a lone byte of a multi-byte character decodes to U+FFFD)."""
        return self.token_to_bytes(token_id, special).decode("utf-8", errors="replace")

    def _check_id(self, token_id) -> int:
        if isinstance(token_id, bool) or not hasattr(token_id, "__index__"):
            raise TypeError(f"token ids must be integers, got {token_id!r}")
        tid = token_id.__index__()
        if not 0 <= tid < len(self._tokens):
            raise ValueError(f"token id {tid} is out of range for a vocabulary of {len(self._tokens)}")
        return tid

    def _piece_of(self, tid: int) -> bytes:
        """llama.cpp token_to_piece with special=True."""
        text, kind = self._tokens[tid], self._types[tid]
        if kind in (TokenType.CONTROL, TokenType.UNKNOWN, TokenType.USER_DEFINED):
            return text.encode("utf-8")
        if kind == TokenType.BYTE:
            if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
                try:
                    return bytes([int(text[3:5], 16)])
                except ValueError:
                    pass
            return text.encode("utf-8")
        if kind != TokenType.NORMAL:
            return b""      # unused / undefined tokens render as nothing
        if self.model == "llama":
            return text.replace("\u2581", " ").encode("utf-8")
        inverse = _unicode_to_byte()
        return b"".join(bytes([inverse[c]]) if c in inverse else c.encode("utf-8") for c in text)

    # -- encode / decode ------------------------------------------------------------------------
    def _partition(self, text: str, special: bool) -> list[str | int]:
        """Cuts special tokens out of `text`, longest first (llama.cpp tokenizer_st_partition)."""
        parts: list[str | int] = [text] if text else []
        for tid in self._special_order:
            if not special and self._types[tid] in _SPECIAL_TYPES:
                continue
            needle = self._tokens[tid]
            if needle not in text:
                continue
            out: list[str | int] = []
            for part in parts:
                if isinstance(part, int) or needle not in part:
                    out.append(part)
                    continue
                for k, chunk in enumerate(part.split(needle)):
                    if k:
                        out.append(tid)
                    if chunk:
                        out.append(chunk)
            parts = out
        return parts

    def encode(self, text: str, add_bos: bool | None = None, special: bool = False,
               add_eos: bool | None = None) -> list[int]:
        """Token ids of `text`. add_bos/add_eos None follow the file (tokenizer.ggml.add_bos_token,
        else the vocabulary type's default); special=True turns control-token text into its id."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        add_bos = self.add_bos if add_bos is None else bool(add_bos)
        add_eos = self.add_eos if add_eos is None else bool(add_eos)
        parts = self._partition(text, special)
        if self.model == "llama" and self.add_space_prefix:
            # SPM: a space goes in front of the text and after every special token.
            parts = [(" " + p) if isinstance(p, str) and (k == 0 or isinstance(parts[k - 1], int)) else p
                     for k, p in enumerate(parts)]
        texts = [p for p in parts if isinstance(p, str)]
        encoded = iter(self._backend.encode(texts))
        ids: list[int] = []
        if add_bos:
            if self.bos_id is None:
                raise ValueError("add_bos=True, but this vocabulary has no BOS token")
            ids.append(self.bos_id)
        for p in parts:
            if isinstance(p, int):
                ids.append(p)
            else:
                ids.extend(next(encoded))
        if add_eos:
            if self.eos_id is None:
                raise ValueError("add_eos=True, but this vocabulary has no EOS token")
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int], skip_special: bool = False, clean_spaces: bool | None = None) -> str:
        """Text of `ids`. skip_special drops control/unknown tokens; clean_spaces (None: as the
        vocabulary's pre-tokenizer says, like llama.cpp's detokenize) removes spaces before . , ! ?
        and in contractions."""
        pieces = [self.token_to_bytes(t, special=not skip_special) for t in ids]
        if self.add_space_prefix:
            # SPM: the space encode put in front of the text is not part of it.
            first = next((k for k, p in enumerate(pieces) if p), None)
            if first is not None and pieces[first].startswith(b" "):
                pieces[first] = pieces[first][1:]
        text = b"".join(pieces).decode("utf-8", errors="replace")
        if self.clean_spaces if clean_spaces is None else clean_spaces:
            text = _clean_up_spaces(text)
        return text

    def stream_decoder(self, skip_special: bool = True, context: Sequence[int] = ()) -> "StreamDecoder":
        return StreamDecoder(self, skip_special=skip_special, context=context)


class StreamDecoder:
    """Incremental detokenizer: feed(id) returns only text that is final. Bytes of a character
    split across tokens are held until the character is whole; an SPM vocabulary's prefix space
    is dropped from the first piece of text, unless `context` (ids already shown, e.g. the
    prompt) produced text before. Invalid UTF-8 becomes U+FFFD. Call flush() at the end."""

    def __init__(self, tokenizer: Tokenizer, *, skip_special: bool = True, context: Sequence[int] = ()):
        self._tok = tokenizer
        self._special = not skip_special
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = tokenizer.add_space_prefix
        for t in context:
            self.feed(t)

    def feed(self, token_id: int) -> str:
        piece = self._tok.token_to_bytes(token_id, special=self._special)
        if piece and self._at_start:
            self._at_start = False
            if piece.startswith(b" "):
                piece = piece[1:]
        return self._utf8.decode(piece)

    def flush(self) -> str:
        """Whatever is still held (an incomplete character becomes U+FFFD)."""
        out = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return out


def _clean_up_spaces(text: str) -> str:
    """llama.cpp's detokenize clean_spaces, its three passes in order: " ?", " !", " .", " ,"
    lose the space; an apostrophe between two spaces loses both; " 's", " 'm", " 're", " 've"
    lose the space (" 't", " 'd", " 'll" keep it)."""
    if len(text) < 2:
        return text
    out = [text[0]]
    for i in range(1, len(text)):
        if text[i - 1] == " " and text[i] in "?!.,":
            out.pop()
        out.append(text[i])
    chars = out
    out = [chars[0]]
    i = 1
    while i < len(chars):
        x = chars[i]
        if x == "'" and i + 1 < len(chars) and chars[i - 1] == " " and chars[i + 1] == " ":
            out.pop()
            i += 1
            chars[i] = "\0"    # as llama.cpp: the dropped space no longer counts as a space
        out.append(x)
        i += 1
    chars = out
    out = [chars[0]]
    n = len(chars)
    for i in range(1, n):
        x = chars[i]
        if chars[i - 1] == " " and x == "'" and i + 1 < n:
            x1 = chars[i + 1]
            if x1 in "sm" or (i + 2 < n and x1 + chars[i + 2] in ("re", "ve")):
                out.pop()
        out.append(x)
    return "".join(out)


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------

class _BpeBackend:
    """Byte-level BPE in the `tokenizers` library: regex splits, byte -> character map, merges."""

    def __init__(self, vocab: dict[str, int], merges: list[str], pre: PreTokenizer):
        from tokenizers import Regex
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, pre_tokenizers

        pairs = []
        for m in merges:
            # llama.cpp splits at the first space after the first character.
            cut = m.find(" ", 1)
            if cut < 0:
                raise ValueError(f"malformed BPE merge {m!r} in tokenizer.ggml.merges")
            left, right = m[:cut], m[cut + 1:]
            # A merge whose parts or result are not tokens can never fire in llama.cpp either.
            if left in vocab and right in vocab and left + right in vocab:
                pairs.append((left, right))
        model = models.BPE(vocab=dict(vocab), merges=pairs, ignore_merges=pre.ignore_merges)
        self._tk = HFTokenizer(model)
        self._tk.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in pre.regexes]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])

    def encode(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        if len(texts) == 1:
            return [self._tk.encode(texts[0], add_special_tokens=False).ids]
        return [e.ids for e in self._tk.encode_batch(texts, add_special_tokens=False)]


class _SpmBackend:
    """SentencePiece BPE: the vocabulary becomes a sentencepiece ModelProto (BPE, identity
    normalization, spaces escaped, no dummy prefix -- Tokenizer.encode adds the prefix space
    where llama.cpp does)."""

    def __init__(self, tokens: list[str], scores: list[float], types: list[int], unk_id: int | None):
        import sentencepiece

        proto = _spm_model_proto(tokens, scores, types, unk_id)
        self._sp = sentencepiece.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(proto)
        except (RuntimeError, OSError) as e:
            raise ValueError(f"the SentencePiece vocabulary in this file is not usable: {e}") from e

    def encode(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self._sp.encode(texts, out_type=int)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _spm_model_proto(tokens: list[str], scores: list[float], types: list[int], unk_id: int | None) -> bytes:
    """Serialized sentencepiece ModelProto (sentencepiece_model.proto: pieces = 1 {piece = 1,
    score = 2, type = 3}, trainer_spec = 2 {model_type = 3, byte_fallback = 35},
    normalizer_spec = 3 {name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4,
    escape_whitespaces = 5}). Piece types share GGUF's numbering."""
    kinds = [t if t in (1, 2, 3, 4, 5, 6) else TokenType.NORMAL for t in types]
    # sentencepiece wants exactly one unknown piece.
    unknown = [i for i, k in enumerate(kinds) if k == TokenType.UNKNOWN]
    for i in unknown[1:]:
        kinds[i] = TokenType.CONTROL
    if not unknown:
        if unk_id is None:
            raise ValueError("this SentencePiece vocabulary has no unknown token (type 2 or unknown_token_id)")
        kinds[unk_id] = TokenType.UNKNOWN
    for i, k in enumerate(kinds):
        # sentencepiece only accepts <0xNN> as a byte piece.
        if k == TokenType.BYTE and not (len(tokens[i]) == 6 and tokens[i].startswith("<0x")):
            kinds[i] = TokenType.NORMAL
    byte_fallback = any(k == TokenType.BYTE for k in kinds)
    out = bytearray()
    for text, score, kind in zip(tokens, scores, kinds):
        piece = _len_field(1, text.encode("utf-8")) + _varint(2 << 3 | 5) + struct.pack("<f", float(score))
        if kind != TokenType.NORMAL:
            piece += _int_field(3, int(kind))
        out += _len_field(1, piece)
    out += _len_field(2, _int_field(3, 2) + _int_field(35, int(byte_fallback)))
    out += _len_field(3, _len_field(1, b"identity") + _int_field(3, 0) + _int_field(4, 0) + _int_field(5, 1))
    return bytes(out)
