"""Tokenizer files -> GGUF tokenizer metadata (tokenizer.ggml.*, tokenizer.chat_template).

Two kinds, as in llama.cpp's converter (conversion/base.py):
- SentencePiece (`tokenizer.model`): tokenizer.ggml.model = "llama", pieces with
  their scores and types (_create_vocab_sentencepiece);
- byte-level BPE (`tokenizer.json` with a BPE model): "gpt2", byte-encoded tokens
  ("Ġ" = space), merges, and `tokenizer.ggml.pre` naming the pre-tokenizer regex.
  llama.cpp identifies the pre-tokenizer by hashing the token ids of a fixed
  test string (convert_hf_to_gguf_update.py); we use the same string and the
  hashes of the Llama-family tokenizers, falling back to "default" with a warning.
Special token ids, add_bos/add_eos, merges and the chat template come from
gguf.SpecialVocab, the same reader llama.cpp's converter uses.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import gguf
from gguf import GGUFWriter, TokenType

from .errors import CheckpointFormatError, ConvertError

log = logging.getLogger(__name__)

# The fixed text llama.cpp's convert_hf_to_gguf_update.py encodes to fingerprint a
# BPE pre-tokenizer; the hash is sha256 of str(list_of_token_ids).
CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
    "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
    "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

# chkhsh -> tokenizer.ggml.pre, for tokenizers used by Llama-architecture models.
KNOWN_PRE: dict[str, str] = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",   # Llama 3
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",   # Smaug-Llama-3
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",      # SmolLM / SmolLM2
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",       # GPT-2 regex
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",      # Mistral Nemo
}

# Tokens llama.cpp itself treats as end-of-turn when it loads a vocab; we write
# the id explicitly so runtimes need not guess.
EOT_TEXTS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


def looks_special(text: str) -> bool:
    """Added tokens some checkpoints forget to flag as special (llama.cpp does_token_look_special)."""
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (text.startswith("<|") and text.endswith("|>"))
            or (text.startswith("<｜") and text.endswith("｜>"))
            or (text.startswith("<unused") and text.endswith(">")))


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointFormatError(f"{path}: not valid JSON: {e}") from None


class Vocab:
    """Tokenizer metadata read from a checkpoint directory, ready to add to a GGUF."""

    def __init__(self, directory: str | Path, n_vocab: int, config: dict[str, Any]):
        self.dir = Path(directory)
        self.n_vocab = n_vocab
        self.config = config
        tc = self.dir / "tokenizer_config.json"
        self.tokenizer_config: dict[str, Any] = _read_json(tc) if tc.is_file() else {}
        if not isinstance(self.tokenizer_config, dict):
            raise CheckpointFormatError(f"{tc}: expected a JSON object")
        self.scores: list[float] | None = None
        self.pre = "default"
        if (self.dir / "tokenizer.model").is_file():
            self.model = "llama"
            self._load_sentencepiece()
        elif (self.dir / "tokenizer.json").is_file():
            self.model = "gpt2"
            self._load_bpe()
        else:
            raise ConvertError(f"{self.dir}: no tokenizer.model or tokenizer.json; cannot build the vocabulary")
        self.special = gguf.SpecialVocab(self.dir, load_merges=self.model == "gpt2", n_vocab=len(self.tokens))
        self._complete_special_tokens()

    # ---- SentencePiece ------------------------------------------------------------------
    def _load_sentencepiece(self) -> None:
        from sentencepiece import SentencePieceProcessor

        sp = SentencePieceProcessor()
        try:
            sp.LoadFromFile(str(self.dir / "tokenizer.model"))
        except (OSError, RuntimeError) as e:
            raise CheckpointFormatError(f"{self.dir / 'tokenizer.model'}: not a SentencePiece model: {e}") from None
        n = self.n_vocab
        tokens = [f"[PAD{i}]".encode() for i in range(n)]
        scores = [-10000.0] * n
        types = [int(TokenType.UNUSED)] * n
        if sp.vocab_size() > n:
            log.warning("tokenizer.model has %d pieces but vocab_size is %d; ignoring the rest", sp.vocab_size(), n)
        for i in range(min(sp.vocab_size(), n)):
            tokens[i] = sp.IdToPiece(i).encode("utf-8")
            scores[i] = float(sp.GetScore(i))
            types[i] = int(TokenType.UNKNOWN if sp.IsUnknown(i) else TokenType.CONTROL if sp.IsControl(i)
                           else TokenType.UNUSED if sp.IsUnused(i) else TokenType.BYTE if sp.IsByte(i)
                           else TokenType.NORMAL)

        # Tokens added on top of the SentencePiece model (e.g. MiniCPM's ChatML markers).
        added = self.dir / "added_tokens.json"
        if added.is_file():
            entries = _read_json(added)
            if not isinstance(entries, dict):
                raise CheckpointFormatError(f"{added}: expected a JSON object of token -> id")
            for text, i in entries.items():
                if not isinstance(i, int) or not 0 <= i < n:
                    log.warning("added token %r has id %r outside the vocabulary; ignored", text, i)
                    continue
                tokens[i], scores[i], types[i] = text.encode("utf-8"), -1000.0, int(TokenType.USER_DEFINED)
        for key, data in (self.tokenizer_config.get("added_tokens_decoder") or {}).items():
            text = data.get("content") if isinstance(data, dict) else None
            if not isinstance(text, str) or not str(key).isdigit():
                raise CheckpointFormatError(f"tokenizer_config.json: malformed added_tokens_decoder entry {key!r}")
            i = int(key)
            if not 0 <= i < n:
                log.warning("added token %r has id %d outside the vocabulary; ignored", text, i)
                continue
            if data.get("special") or looks_special(text):
                types[i] = int(TokenType.CONTROL)
            else:
                text = text.replace("\u2581", " ")  # llama.cpp expects user-defined tokens pre-normalised
                types[i] = int(TokenType.USER_DEFINED)
            tokens[i], scores[i] = text.encode("utf-8"), -1000.0
        self.tokens, self.scores, self.types = tokens, scores, types

    # ---- byte-level BPE -----------------------------------------------------------------
    def _load_bpe(self) -> None:
        from tokenizers import Tokenizer

        path = self.dir / "tokenizer.json"
        spec = _read_json(path)
        model = spec.get("model") if isinstance(spec, dict) else None
        kind = model.get("type") if isinstance(model, dict) else None
        if kind != "BPE":
            raise ConvertError(f"{path}: only BPE tokenizer.json files are supported (found {kind!r})")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # the tokenizers library raises its own Exception type
            raise CheckpointFormatError(f"{path}: cannot be loaded: {e}") from None
        self.hf_tokenizer = tok
        vocab = tok.get_vocab(with_added_tokens=True)
        if vocab and max(vocab.values()) >= self.n_vocab:
            raise ConvertError(f"tokenizer has id {max(vocab.values())} but config vocab_size is {self.n_vocab}")
        added = tok.get_added_tokens_decoder()
        by_id = {i: t for t, i in vocab.items()}
        tokens: list[str] = []
        types: list[int] = []
        for i in range(self.n_vocab):
            if i not in by_id:
                tokens.append(f"[PAD{i}]")
                types.append(int(TokenType.UNUSED))
                continue
            text = by_id[i]
            if i in added:
                if not added[i].normalized:
                    # llama.cpp expects control/user tokens in their normalised, decoded form.
                    text = tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False)
                if added[i].special or looks_special(text):
                    types.append(int(TokenType.CONTROL))
                else:
                    text = text.replace("\u2581", " ")
                    types.append(int(TokenType.USER_DEFINED))
            else:
                types.append(int(TokenType.NORMAL))
            tokens.append(text)
        self.tokens, self.types = tokens, types
        chkhsh = hashlib.sha256(str(tok.encode(CHKTXT).ids).encode()).hexdigest()
        if chkhsh in KNOWN_PRE:
            self.pre = KNOWN_PRE[chkhsh]
        else:
            log.warning("BPE pre-tokenizer not recognised (chkhsh %s); writing tokenizer.ggml.pre = 'default'. "
                        "llama.cpp will split text with its default regex, which may differ from this tokenizer's.",
                        chkhsh)

    # ---- special tokens -----------------------------------------------------------------
    def _complete_special_tokens(self) -> None:
        ids = self.special.special_token_ids
        # config.json may list several EOS ids (MiniCPM4: [2, 73440]); SpecialVocab skips lists.
        eos = self.config.get("eos_token_id")
        if "eos" not in ids and isinstance(eos, list) and eos and isinstance(eos[0], int):
            self.special._set_special_token("eos", eos[0])
        if "eot" not in ids:
            index = {t if isinstance(t, str) else t.decode("utf-8", "replace"): i for i, t in enumerate(self.tokens)}
            for text in EOT_TEXTS:
                if text in index:
                    ids["eot"] = index[text]
                    break
        # A BPE tokenizer that states nothing: ask it whether it prepends BOS.
        if self.model == "gpt2" and "bos" not in self.special.add_special_token:
            bos = ids.get("bos")
            first = self.hf_tokenizer.encode("a").ids[:1]
            self.special.add_special_token["bos"] = bos is not None and first == [bos]

    def add_to(self, w: GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        w.add_token_types(self.types)
        if isinstance(self.tokenizer_config.get("add_prefix_space"), bool):
            w.add_add_space_prefix(self.tokenizer_config["add_prefix_space"])
        self.special.add_to_gguf(w, quiet=True)
