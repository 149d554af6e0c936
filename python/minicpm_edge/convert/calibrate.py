"""Calibration statistics of a model's linear-layer inputs, captured with this runtime.

The model runs windows of a calibration text; at every linear layer the C++ core shows
its input to a Python callback (``_core.Model.observe``) and the statistics the PTQ
methods need are accumulated per (layer, input site):

- H = sum over tokens of x x^T, GPTQ's Hessian (up to the factor 2 it cancels);
- sum of |x| per channel (AWQ's activation magnitude) and max |x| (SmoothQuant's).

Matrices that multiply the same input share one site: Q/K/V the attention input,
gate/up the FFN input; O and down have their own. Windows start with BOS when the
tokenizer adds one, like the perplexity windows.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConvertError

# _core.Model.observe's site numbers -> the GGUF tensors (blk.N.<name>.weight) that read them.
SITE_TENSORS = {0: ("attn_q", "attn_k", "attn_v"), 1: ("attn_output",), 2: ("ffn_gate", "ffn_up"), 3: ("ffn_down",)}
_TENSOR_SITE = {name: site for site, names in SITE_TENSORS.items() for name in names}
# The LM head's input (the final norm's output), which observe shows with layer =
# n_layer; kept under HEAD_LAYER. It is read by output.weight, or by token_embd.weight
# when the head is tied to it (the converter quantizes token_embd as a head only then).
HEAD_SITE = 4
HEAD_LAYER = -1
HEAD_TENSORS = ("output.weight", "token_embd.weight")
DEFAULT_WINDOWS = 128
# 128 x 512 tokens (AWQ's calibration size): SmolLM2-135M w4g64 GPTQ reached PPL 18.49 with
# 32 x 512 and 18.46 with 128 x 512, while capture costs about 4 ms per token on 2 cores
# (forward and Hessians), so 128 x 2048 would take 19 minutes for no measurable gain.
DEFAULT_CTX = 512
# Hessians held at once (one pass of layers); SmolLM2-135M's all fit in 0.4 GB.
DEFAULT_MAX_BYTES = 2 << 30
MIN_TOKENS = 16


@dataclass
class InputStats:
    """Statistics of one input site over the calibration tokens."""

    hessian: np.ndarray          # [K, K] float32, sum of x x^T
    abs_sum: np.ndarray          # [K] float64, sum of |x|
    abs_max: np.ndarray          # [K] float32, max of |x|
    n_tokens: int = 0

    def add(self, x: np.ndarray) -> None:
        self.hessian += x.T @ x   # numpy takes x.T @ x as one SYRK: half the multiplies
        a = np.abs(x)
        self.abs_sum += a.sum(axis=0, dtype=np.float64)
        np.maximum(self.abs_max, a.max(axis=0), out=self.abs_max)
        self.n_tokens += x.shape[0]


def layer_tensor(name: str) -> tuple[int, str] | None:
    """(N, kind) of a decoder-layer weight ``blk.N.<kind>.weight``, None for other tensors."""
    parts = name.split(".")
    if len(parts) != 4 or parts[0] != "blk" or parts[3] != "weight" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2]


def tensor_site(name: str) -> tuple[int, int] | None:
    """(layer, site) of the input GGUF tensor ``name`` multiplies: a decoder layer's
    linear map ``blk.N.<kind>.weight``, or the LM head (HEAD_LAYER, HEAD_SITE); None
    for other tensors."""
    if name in HEAD_TENSORS:
        return HEAD_LAYER, HEAD_SITE
    p = layer_tensor(name)
    site = None if p is None else _TENSOR_SITE.get(p[1])
    return None if site is None else (p[0], site)


@dataclass
class Calibration:
    """Statistics of the sites of some layers (capture_tokens)."""

    sites: dict[tuple[int, int], InputStats] = field(default_factory=dict)
    n_tokens: int = 0
    n_windows: int = 0

    def for_tensor(self, name: str) -> InputStats | None:
        key = tensor_site(name)
        return None if key is None else self.sites.get(key)


def read_text(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.is_file():
        raise ConvertError(f"calibration file {p} does not exist")
    return p.read_bytes().decode("utf-8", errors="replace")


def calibration_windows(ids: list[int], n_windows: int, ctx: int) -> list[list[int]]:
    """Up to ``n_windows`` windows of ``ctx`` tokens spread evenly over ``ids`` (all of
    them when the text holds fewer; one shorter window when it holds less than ctx)."""
    if n_windows < 1 or ctx < MIN_TOKENS:
        raise ConvertError(f"calibration needs >= 1 window of >= {MIN_TOKENS} tokens "
                           f"(got {n_windows} x {ctx})")
    if len(ids) < MIN_TOKENS:
        raise ConvertError(f"the calibration text has {len(ids)} tokens; at least {MIN_TOKENS} are needed")
    available = len(ids) // ctx
    if available == 0:
        return [list(ids)]
    starts = np.linspace(0, available - 1, min(n_windows, available)).round().astype(int) * ctx
    return [list(ids[s:s + ctx]) for s in starts]


def capture(model_path: str | os.PathLike, text: str, n_windows: int = DEFAULT_WINDOWS, ctx: int = DEFAULT_CTX,
            n_threads: int | None = None, progress: bool = True, max_bytes: int = DEFAULT_MAX_BYTES
            ) -> "LayerPasses":
    """Calibration of the model at ``model_path`` on windows of ``text``
    (calibration_windows), captured lazily in passes of layers (LayerPasses)."""
    model, windows = open_windows(model_path, text, n_windows, ctx, n_threads)
    return LayerPasses(model, windows, max_bytes, progress)


def open_windows(model_path: str | os.PathLike, text: str, n_windows: int, ctx: int,
                 n_threads: int | None = None) -> tuple:
    """(the model at ``model_path`` with exact activations and an f32 KV cache, the
    token windows of ``text`` it calibrates on: calibration_windows, each starting
    with BOS when the tokenizer adds one)."""
    from ..model import Model  # the runtime; imported late so the converter loads without it

    model = Model(model_path, n_ctx=int(ctx), n_threads=n_threads, int8_activations=False, kv_cache_type="f32")
    tok = model.tokenizer
    add_bos = tok.add_bos and tok.bos_id is not None
    windows = calibration_windows(model.tokenize(text, add_bos=add_bos), int(n_windows), int(ctx))
    if add_bos:
        for w in windows:
            w[0] = tok.bos_id
    return model, windows


class LayerPasses:
    """Calibration statistics, captured on demand a few layers at a time.

    The Hessians of every layer can outgrow memory (a 1B model with ffn 8192 needs
    ~5 GB of them), so the layers are split into passes whose Hessians fit in
    ``max_bytes``; asking for a tensor of another pass runs the windows again and
    drops the previous pass. The converter asks in file order (layer by layer), so
    each pass runs once.
    """

    def __init__(self, model, windows: list[list[int]], max_bytes: int = DEFAULT_MAX_BYTES,
                 progress: bool = True):
        self.model, self.windows, self.progress = model, windows, progress
        c = model.config
        dims = (c["n_embd"], c["n_head"] * c["head_dim"], c["n_embd"], c["n_ff"])
        per_layer = sum(4 * d * d for d in dims)
        per_pass = max(1, int(max_bytes) // per_layer)
        n = c["n_layer"]
        self.passes = [range(a, min(a + per_pass, n)) for a in range(0, n, per_pass)]
        self.n_tokens = sum(len(w) for w in windows)
        self.n_windows = len(windows)
        self._current: tuple[int, Calibration] | None = None
        self.runs = 0

    def for_tensor(self, name: str) -> InputStats | None:
        key = tensor_site(name)
        if key is None:
            return None
        # The head's input comes after the last layer, so the last pass takes it.
        index = (len(self.passes) - 1 if key[0] == HEAD_LAYER
                 else next((i for i, p in enumerate(self.passes) if key[0] in p), None))
        if index is None:
            return None
        if self._current is None or self._current[0] != index:
            self._current = None   # free the previous pass before the next one fills
            layers = self.passes[index]
            cal = capture_tokens(self.model, self.windows, self.progress, layers,
                                 head=index == len(self.passes) - 1)
            self._current = (index, cal)
            self.runs += 1
        return self._current[1].sites.get(key)


def capture_tokens(model, windows: list[list[int]], progress: bool = True, layers: range | None = None,
                   head: bool = True) -> Calibration:
    """Statistics of the linear inputs of ``layers`` (default all) of ``model`` (a
    minicpm_edge.Model, best with exact activations and an f32 KV cache), and of the
    LM head's input when ``head``, over token ``windows``, each run from an empty cache."""
    cal = Calibration()

    def observe(layer: int, site: int, x: np.ndarray) -> None:
        if site == HEAD_SITE:
            if not head:
                return
            layer = HEAD_LAYER
        elif layers is not None and layer not in layers:
            return
        stats = cal.sites.get((layer, site))
        if stats is None:
            k = x.shape[1]
            stats = cal.sites[(layer, site)] = InputStats(np.zeros((k, k), np.float32), np.zeros(k),
                                                          np.zeros(k, np.float32))
        stats.add(x)

    it = windows
    if progress:
        from tqdm import tqdm
        what = "" if layers is None else f" layers {layers.start}-{layers.stop - 1}"
        it = tqdm(windows, desc="calibrating" + what, unit="window", leave=False)
    for window in it:
        model.reset()
        model._core.observe(np.asarray(window, dtype=np.int64), observe)
        cal.n_tokens += len(window)
        cal.n_windows += 1
    model.reset()
    return cal
