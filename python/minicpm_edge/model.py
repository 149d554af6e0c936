"""The Python face of the runtime: load a GGUF model, tokenize, generate,
chat, score. Per-token work happens in the C++ core (`_core`); this layer owns
text: tokenization, chat templates, stop strings and OpenAI-shaped results."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from . import _core
from .chat_template import chat_template_from_metadata, render_chat
from .openai_format import chat_chunk, chat_response, completion_chunk, completion_response
from .stopping import StopStringFilter
from .tokenizer import Tokenizer

Messages = Sequence[dict]


class Model:
    """A loaded model with one sequence of context.

    >>> m = Model("model.gguf", n_ctx=4096, n_threads=2)
    >>> m.generate("The sky is", max_tokens=16)

    With int8_activations=True (the default) activations meeting quantized
    weights are quantized to int8 blocks and multiplied with integer dot
    products, as llama.cpp does, in prefill and decode alike: llama.cpp's
    arithmetic at several times the speed of f32. int8_activations=False keeps
    activations in f32 against weights decoded to f32, which matches an fp32
    reference of the same weights (transformers on the dequantized file).

    kv_cache_type="f16" (the default, as llama.cpp's) stores keys and values
    as IEEE half floats: half the memory and attention traffic of "f32", at
    the cost of rounding them to 11 significant bits (logits move by about
    1e-3 of their range). kv_cache_type="f32" keeps them exact.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, n_ctx: int = 0,
                 n_threads: int | None = None, n_batch: int = 512, int8_activations: bool = True,
                 kv_cache_type: str = "f16"):
        if model_path is None:
            from .hub import default_model_path
            model_path = default_model_path()
        path = Path(model_path)
        if not path.exists():
            raise FileNotFoundError(f"model file not found: {path}")
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory; pass a .gguf file "
                                    "(convert a Hugging Face checkpoint with `minicpm-edge convert`)")
        if kv_cache_type not in ("f16", "f32"):
            raise ValueError(f'kv_cache_type must be "f16" or "f32", not {kv_cache_type!r}')
        self.model_path = str(path)
        self._file = _core.GGUFFile(self.model_path)
        self.metadata: dict = self._file.metadata
        self._core = _core.Model(self.model_path, n_ctx=int(n_ctx), n_threads=int(n_threads or 0),
                                 n_batch=int(n_batch), int8_activations=bool(int8_activations),
                                 kv_cache_type=kv_cache_type)
        self.tokenizer = Tokenizer.from_metadata(self.metadata)
        self.chat_template: str = chat_template_from_metadata(self.metadata)

    # -- properties --------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self._core.n_ctx

    @property
    def n_vocab(self) -> int:
        return self._core.n_vocab

    @property
    def n_threads(self) -> int:
        return self._core.n_threads

    @property
    def kv_cache_type(self) -> str:
        """Element type of the KV cache: "f16" or "f32"."""
        return self._core.kv_cache_type

    @property
    def config(self) -> dict:
        return self._core.config

    # -- tokens ------------------------------------------------------------------------------
    def tokenize(self, text: str, add_bos: bool | None = None, special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_bos=add_bos, special=special)

    def detokenize(self, ids: Sequence[int], skip_special: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special=skip_special)

    # -- scoring -----------------------------------------------------------------------------
    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits [len(ids), n_vocab] of a fresh sequence (the cache is reset)."""
        self._core.reset()
        return self._core.eval(np.asarray(ids, dtype=np.int64), all_logits=True)

    def eval(self, ids: Sequence[int], all_logits: bool = False) -> np.ndarray:
        """Appends ids to the cached sequence; returns the logits of the last
        position [n_vocab], or of every new position [len(ids), n_vocab]."""
        out = self._core.eval(np.asarray(ids, dtype=np.int64), all_logits=all_logits)
        return out if all_logits else out[0]

    @property
    def n_past(self) -> int:
        """Tokens currently in the KV cache."""
        return self._core.n_past

    def score(self, ids: Sequence[int], first: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """log p(ids[i+1] | ids[:i+1]) and the argmax token for i in [first, len(ids)-1),
        on a fresh sequence."""
        self._core.reset()
        return self._core.score(np.asarray(ids, dtype=np.int64), int(first))

    def perplexity(self, text: str | Sequence[int], n_ctx: int = 2048, n_chunks: int | None = None,
                   progress: bool = False) -> float:
        """Perplexity as llama.cpp's perplexity tool computes it: windows of
        n_ctx tokens, BOS in front of each window when the tokenizer adds one,
        only the second half of each window scored."""
        return perplexity(self, text, n_ctx=n_ctx, n_chunks=n_chunks, progress=progress)

    # -- generation --------------------------------------------------------------------------
    def _generator(self, prompt_ids: list[int], max_tokens: int | None, temperature: float, top_k: int,
                   top_p: float, min_p: float, repeat_penalty: float, seed: int | None):
        if max_tokens is not None and max_tokens < 0:
            raise ValueError("max_tokens must be >= 0 (None: until the context is full)")
        return _core.Generator(self._core, np.asarray(prompt_ids, dtype=np.int64),
                               max_tokens=-1 if max_tokens is None else int(max_tokens),
                               stop_ids=sorted(self.tokenizer.eog_ids), temperature=float(temperature),
                               top_k=int(top_k), top_p=float(top_p), min_p=float(min_p),
                               repeat_penalty=float(repeat_penalty),
                               seed=0xFFFFFFFF if seed is None else int(seed) & 0xFFFFFFFFFFFFFFFF)

    def _stream(self, prompt_ids: list[int], stop: str | list[str] | None, info: dict, **sampling) -> Iterator[str]:
        """Text deltas of a completion; fills info with finish_reason and token counts."""
        gen = self._generator(prompt_ids, **sampling)
        decoder = self.tokenizer.stream_decoder(context=prompt_ids)
        stops = StopStringFilter([stop] if isinstance(stop, str) else stop)
        info.update(prompt_tokens=len(prompt_ids), completion_tokens=0, finish_reason="length")
        while True:
            tok = gen.next()
            if tok < 0:
                info["finish_reason"] = gen.finish_reason
                break
            info["completion_tokens"] += 1
            out = stops.feed(decoder.feed(tok))
            if out:
                yield out
            if stops.stopped:
                info["finish_reason"] = "stop"
                return
        tail = stops.feed(decoder.flush()) + stops.flush()
        if stops.stopped:
            info["finish_reason"] = "stop"
        if tail:
            yield tail

    def generate(self, prompt: str | Sequence[int], max_tokens: int | None = 128, *, temperature: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0,
                 seed: int | None = None, stop: str | list[str] | None = None, stream: bool = False,
                 add_bos: bool | None = None):
        """Completes `prompt`. Returns the text, or with stream=True an iterator of text pieces.
        temperature=0 is greedy decoding."""
        ids = self._prompt_ids(prompt, add_bos)
        it = self._stream(ids, stop, {}, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                          top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty, seed=seed)
        return it if stream else "".join(it)

    def _prompt_ids(self, prompt: str | Sequence[int], add_bos: bool | None = None) -> list[int]:
        if isinstance(prompt, str):
            ids = self.tokenize(prompt, add_bos=add_bos, special=True)
        else:
            ids = [int(t) for t in prompt]
        if not ids:
            raise ValueError("the prompt is empty (and the model adds no BOS token)")
        return ids

    def apply_chat_template(self, messages: Messages, add_generation_prompt: bool = True, **kwargs) -> str:
        return render_chat(self.chat_template, list(messages), add_generation_prompt=add_generation_prompt,
                           bos_token=self.tokenizer.token_to_piece(self.tokenizer.bos_id)
                           if self.tokenizer.bos_id is not None else "",
                           eos_token=self.tokenizer.token_to_piece(self.tokenizer.eos_id)
                           if self.tokenizer.eos_id is not None else "", **kwargs)

    def _chat_prompt_ids(self, messages: Messages) -> list[int]:
        text = self.apply_chat_template(messages)
        # The template writes BOS itself when the model wants one.
        bos = self.tokenizer.bos_id
        ids = self.tokenize(text, add_bos=False, special=True)
        if self.tokenizer.add_bos and bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def chat(self, messages: Messages, max_tokens: int | None = 512, *, temperature: float = 0.2,
             stream: bool = False, **kwargs):
        """Replies to a conversation (list of {"role", "content"}) using the model's chat template."""
        ids = self._chat_prompt_ids(messages)
        it = self._stream(ids, kwargs.pop("stop", None), {}, max_tokens=max_tokens, temperature=temperature,
                          **_sampling(kwargs))
        return it if stream else "".join(it)

    # -- OpenAI-shaped API (as llama-cpp-python) ---------------------------------------------
    def create_completion(self, prompt: str | Sequence[int], max_tokens: int | None = 16, *,
                          temperature: float = 0.8, stream: bool = False, stop=None, **kwargs):
        ids = self._prompt_ids(prompt)
        info: dict = {}
        it = self._stream(ids, stop, info, max_tokens=max_tokens, temperature=temperature, **_sampling(kwargs))
        if stream:
            return _completion_stream(self.model_path, it, info)
        text = "".join(it)
        return completion_response(self.model_path, text, info)

    def create_chat_completion(self, messages: Messages, max_tokens: int | None = None, *,
                               temperature: float = 0.2, stream: bool = False, stop=None, **kwargs):
        ids = self._chat_prompt_ids(messages)
        info: dict = {}
        it = self._stream(ids, stop, info, max_tokens=max_tokens, temperature=temperature, **_sampling(kwargs))
        if stream:
            return _chat_stream(self.model_path, it, info)
        return chat_response(self.model_path, "".join(it), info)

    def reset(self) -> None:
        """Forgets the cached context."""
        self._core.reset()


_SAMPLING_KEYS = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0, "seed": None}


def _sampling(kwargs: dict) -> dict:
    unknown = set(kwargs) - set(_SAMPLING_KEYS)
    if unknown:
        raise TypeError(f"unexpected argument(s): {', '.join(sorted(unknown))}")
    return {k: kwargs.get(k, v) for k, v in _SAMPLING_KEYS.items()}


def _completion_stream(model_path, it, info):
    for piece in it:
        yield completion_chunk(model_path, piece, None)
    yield completion_chunk(model_path, "", info["finish_reason"])


def _chat_stream(model_path, it, info):
    yield chat_chunk(model_path, {"role": "assistant"}, None)
    for piece in it:
        yield chat_chunk(model_path, {"content": piece}, None)
    yield chat_chunk(model_path, {}, info["finish_reason"])


def perplexity(model: Model, text, n_ctx: int = 2048, n_chunks: int | None = None, progress: bool = False) -> float:
    if n_ctx < 4 or n_ctx > model.n_ctx:
        raise ValueError(f"perplexity window n_ctx={n_ctx} must be in [4, model n_ctx = {model.n_ctx}]")
    add_bos = model.tokenizer.add_bos and model.tokenizer.bos_id is not None
    ids = model.tokenize(text, add_bos=add_bos) if isinstance(text, str) else [int(t) for t in text]
    available = len(ids) // n_ctx
    if available == 0:
        raise ValueError(f"need at least {n_ctx} tokens for one window, the text has {len(ids)}")
    n = available if n_chunks is None or n_chunks <= 0 else min(n_chunks, available)
    first = n_ctx // 2
    total, count = 0.0, 0
    chunks = range(n)
    if progress:
        from tqdm import tqdm
        chunks = tqdm(chunks, desc="perplexity", unit="window")
    for i in chunks:
        window = ids[i * n_ctx:(i + 1) * n_ctx]
        if add_bos:
            window[0] = model.tokenizer.bos_id
        logp, _ = model.score(window, first)
        total += float(-logp.sum())
        count += len(logp)
        if progress:
            chunks.set_postfix(ppl=f"{np.exp(total / count):.4f}")
    return float(np.exp(total / count))
