"""SmoothQuant (Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training
Quantization for Large Language Models", ICML 2023): move the activations' outlier
channels into the weights before W8A8 quantization.

Per-token int8 activations (w8a8.py, the runtime's kernels/w8a8_layout.h) lose the
quiet channels of a token whose range a few loud channels set; per-channel int8 weights
hardly care. For matrices W_i sharing an input x, the input channel j is divided by

    s_j = max|x_j|^alpha / max_i max_r |W_i[r, j]|^(1 - alpha)          (paper, eq. 4)

and column j of every W_i multiplied by it, so x W^T is unchanged in exact arithmetic;
alpha = 0.5 balances the two ranges (§4, "migration strength"). max|x_j| comes from
calibration text run through this runtime (exact activations). The division is folded
into the operation that produces x, so the runtime does no extra work:

- attention input (Q/K/V): the attn_norm weight (RMSNorm's output is w * x / rms);
- FFN input (gate/up): the ffn_norm weight;
- down input (silu(gate x) * up x): the up projection's rows;
- attention output (O): the V projection's rows. Under grouped-query attention one V
  channel (kv head g, dim d) feeds query heads g*r .. g*r + r - 1 at dim d, so s is
  shared by those r columns of O: max|x| and max|W| are taken over the r heads.

The per-row int8 grid of the rows that absorb 1/s (V, up) is invariant to row scaling,
so folding costs them nothing. By default alpha is searched per layer and site
(``alpha="search"``) on a sample of calibration tokens: the alpha in 0.2 .. 1.0 (or no
smoothing) whose W8A8 outputs of the site's matrices are closest to the float ones, with
both quantizations simulated as the runtime does them. On SmolLM2-135M the search chose
0.7-1.0 for the attention and FFN inputs and 0.5-0.9 for the down projection's.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .calibrate import SITE_TENSORS, calibration_windows, open_windows  # noqa: F401 (re-exported for tests)
from .errors import ConvertError
from .w8a8 import QMAX
from .w8a8 import quantize as quantize_weights

log = logging.getLogger(__name__)

# The paper's default strength; on SmolLM2-135M a per-layer search does better (README, "W8A8").
ALPHA = 0.5
ALPHAS = tuple(round(0.05 * i, 2) for i in range(4, 21))   # 0.2 .. 1.0, the search grid
# Calibration tokens kept per site for the alpha search (as binary16, which is far finer
# than the int8 grid being judged). On SmolLM2-135M, 512 instead of 2048 tokens gave
# PPL 17.92 instead of 17.89 (wikitext-2 test, ctx 2048, 20 windows; F16 17.73).
SAMPLE_TOKENS = 2048
# _core.Model.observe's sites -> the tensor (blk.N.<name>) that absorbs 1/s, and how.
FEEDER = {0: "attn_norm", 1: "attn_v", 2: "ffn_norm", 3: "ffn_up"}
MIN_SCALE = 1e-5
BLOCK = 32   # Q8_0's block
ARITHMETICS = ("w8a8", "q8")


def parse_alpha(value) -> float | str:
    """A migration strength in [0, 1], or "search"."""
    if isinstance(value, str) and value.strip().lower() == "search":
        return "search"
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise ConvertError(f"alpha must be a number in [0, 1] or 'search', not {value!r}") from None
    if not 0.0 <= a <= 1.0:
        raise ConvertError(f"alpha must be in [0, 1], not {a}")
    return a


@dataclass
class SiteStats:
    """max |x| per channel of one input site, and a sample of its tokens."""

    abs_max: np.ndarray                                  # [K] float32
    samples: list[np.ndarray] = field(default_factory=list)   # binary16 rows
    n_tokens: int = 0

    def sample(self) -> np.ndarray:
        if not self.samples:
            return np.zeros((0, self.abs_max.size), np.float32)
        return np.concatenate(self.samples).astype(np.float32)


def capture(model_path, text: str, n_windows: int, ctx: int, n_threads: int | None = None,
            progress: bool = True, sample_tokens: int = SAMPLE_TOKENS) -> dict[tuple[int, int], SiteStats]:
    """(layer, site) -> SiteStats of the decoder layers' linear inputs over windows of
    ``text`` (calibrate.calibration_windows), from this runtime with exact activations;
    about ``sample_tokens`` tokens of each site are kept (0: none, enough for a fixed alpha)."""
    model, windows = open_windows(model_path, text, n_windows, ctx, n_threads)
    try:
        return capture_windows(model, windows, progress, sample_tokens)
    finally:
        del model


def capture_windows(model, windows: list[list[int]], progress: bool = True,
                    sample_tokens: int = SAMPLE_TOKENS) -> dict[tuple[int, int], SiteStats]:
    total = sum(len(w) for w in windows)
    stride = max(1, total // max(1, sample_tokens))
    stats: dict[tuple[int, int], SiteStats] = {}

    def observe(layer: int, site: int, x: np.ndarray) -> None:
        if site not in FEEDER:
            return   # the LM head's input: the head stays Q8_0
        st = stats.get((layer, site))
        if st is None:
            st = stats[(layer, site)] = SiteStats(np.zeros(x.shape[1], np.float32))
        np.maximum(st.abs_max, np.abs(x).max(axis=0), out=st.abs_max)
        # every stride-th token, counting across batches
        first = (-st.n_tokens) % stride
        if sample_tokens > 0:
            st.samples.append(np.array(x[first::stride], np.float16))
        st.n_tokens += x.shape[0]

    it = windows
    if progress:
        from tqdm import tqdm
        it = tqdm(windows, desc="calibrating (SmoothQuant)", unit="window", leave=False)
    for window in it:
        model.reset()
        model._core.observe(np.asarray(window, dtype=np.int64), observe)
    model.reset()
    return stats


def smoothing_scales(x_max: np.ndarray, w_max: np.ndarray, alpha: float) -> np.ndarray:
    """s_j = x_max_j^alpha / w_max_j^(1 - alpha) (float32); 1 where a channel is silent
    or its weights are all zero (nothing to migrate)."""
    x = np.asarray(x_max, np.float64)
    w = np.asarray(w_max, np.float64)
    live = (x > 0) & (w > 0)
    s = np.ones_like(x)
    s[live] = x[live] ** alpha / w[live] ** (1.0 - alpha)
    return np.maximum(s, MIN_SCALE).astype(np.float32)


def fake_quant_tokens(x: np.ndarray) -> np.ndarray:
    """x after the runtime's per-token int8 quantization (kernels/ternary_layout.h)."""
    x = np.asarray(x, np.float32)
    inv = np.float32(QMAX) / np.maximum(np.abs(x).max(axis=1), np.float32(1e-5))
    return np.clip(np.rint(x * inv[:, None]), -128, 127).astype(np.float32) / inv[:, None]


def fake_quant_blocks(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` after Q8_0's quantization, blocks of 32 with a binary16 scale
    amax / 127 and codes rounded half away from zero (ggml's quantize_row_q8_0, which
    the runtime applies to the activations of its Q8_0, Q4_x and low-bit int8 paths,
    and the converter to Q8_0 weights)."""
    x = np.asarray(x, np.float32)
    b = x.reshape(x.shape[0], -1, BLOCK)
    d = np.abs(b).max(axis=2, keepdims=True) / np.float32(QMAX)
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.trunc(b * inv + np.copysign(np.float32(0.5), b))
    return (q * d.astype(np.float16).astype(np.float32)).reshape(x.shape)


def output_error(ws: list[np.ndarray], x: np.ndarray, s: np.ndarray, arithmetic: str = "w8a8") -> float:
    """sum_i || x W_i^T - Q(x / s) Q(W_i diag s)^T ||^2 over the sample tokens, Q being
    the runtime's quantization in ``arithmetic``: "w8a8" (per-token activations,
    per-row int8 weights) or "q8" (Q8_0 blocks of 32 for both)."""
    if arithmetic == "q8":
        xq = fake_quant_blocks(x / s)
        wq = [fake_quant_blocks(w * s[None, :]) for w in ws]
    else:
        xq = fake_quant_tokens(x / s)
        wq = [q.astype(np.float32) * d[:, None] for q, d in (quantize_weights(w * s[None, :]) for w in ws)]
    total = 0.0
    for w, q in zip(ws, wq):
        diff = xq @ q.T - x @ w.T
        total += float(np.einsum("ij,ij->", diff, diff, dtype=np.float64))
    return total


def w8a8_output_error(ws: list[np.ndarray], x: np.ndarray, s: np.ndarray) -> float:
    """sum_i || x W_i^T - Q(x / s) Q(W_i diag s)^T ||^2 over the sample tokens (W8A8)."""
    return output_error(ws, x, s, "w8a8")


class SmoothQuant:
    """The smoothing of every layer, found on first use from ``stats`` (capture) and
    the float tensors ``load`` returns; a converter Rewrite (plan.Rewrite).

    ``n_head`` / ``n_head_kv`` give the query heads each V channel feeds (GQA);
    ``arithmetic`` ("w8a8" or "q8", see output_error) is what the alpha search
    simulates: the file's W8A8 matrices, or Q8_0-block activations (Q8_0, Q4_x and
    low-bit files, whose int8 paths quantize activations in blocks of 32)."""

    def __init__(self, stats: dict[tuple[int, int], SiteStats], load: Callable[[str], np.ndarray],
                 n_head: int, n_head_kv: int, alpha: float | str = ALPHA, alphas=ALPHAS,
                 arithmetic: str = "w8a8"):
        if n_head <= 0 or n_head_kv <= 0 or n_head % n_head_kv:
            raise ConvertError(f"SmoothQuant: {n_head} query heads do not split into {n_head_kv} KV groups")
        if arithmetic not in ARITHMETICS:
            raise ConvertError(f"SmoothQuant arithmetic must be one of {ARITHMETICS}, not {arithmetic!r}")
        self.arithmetic = arithmetic
        self.stats, self.load, self.alpha, self.grid = stats, load, alpha, tuple(alphas)
        self.n_head, self.n_head_kv = n_head, n_head_kv
        self._scales: dict[int, dict[int, np.ndarray]] = {}
        self.chosen: dict[tuple[int, int], float | None] = {}   # (layer, site) -> alpha (None: not smoothed)

    # -- the scales -------------------------------------------------------------------------
    def _o_groups(self, k: int) -> tuple[np.ndarray, int]:
        """For the attention output's k channels: the V row each one reads, and that V's rows."""
        d = k // self.n_head
        h = np.arange(k) // d
        return (h // (self.n_head // self.n_head_kv)) * d + np.arange(k) % d, self.n_head_kv * d

    def _site_scales(self, layer: int, site: int) -> np.ndarray | None:
        st = self.stats.get((layer, site))
        if st is None or st.n_tokens == 0:
            return None
        ws = [np.asarray(self.load(f"blk.{layer}.{m}.weight"), np.float32) for m in SITE_TENSORS[site]]
        w_max = np.max([np.abs(w).max(axis=0) for w in ws], axis=0)
        x_max = st.abs_max
        expand = None
        if site == 1:   # tie the columns that one V channel feeds
            v_row, n_v = self._o_groups(x_max.size)
            xg, wg = np.zeros(n_v, np.float32), np.zeros(n_v, np.float32)
            np.maximum.at(xg, v_row, x_max)
            np.maximum.at(wg, v_row, w_max)
            x_max, w_max, expand = xg, wg, v_row

        def full(s):
            return s if expand is None else s[expand]

        if self.alpha != "search":
            self.chosen[(layer, site)] = float(self.alpha)
            return smoothing_scales(x_max, w_max, float(self.alpha))
        sample = st.sample()
        if sample.shape[0] == 0:
            raise ConvertError("SmoothQuant's alpha search needs calibration samples (capture with sample_tokens > 0)")
        if self.arithmetic == "q8" and ws[0].shape[1] % BLOCK:
            self.chosen[(layer, site)] = None   # rows not in whole blocks: stored F16, nothing to smooth for
            return None
        best = (output_error(ws, sample, np.ones(ws[0].shape[1], np.float32), self.arithmetic), None, None)
        for a in self.grid:
            s = smoothing_scales(x_max, w_max, a)
            err = output_error(ws, sample, full(s), self.arithmetic)
            if err < best[0]:
                best = (err, s, a)
        self.chosen[(layer, site)] = best[2]
        return best[1]

    def scales(self, layer: int) -> dict[int, np.ndarray]:
        """site -> s (for site 1, per V row) of one layer; sites left unsmoothed are absent."""
        if layer not in self._scales:
            found = {}
            for site in FEEDER:
                s = self._site_scales(layer, site)
                if s is not None:
                    found[site] = s
            self._scales[layer] = found
        return self._scales[layer]

    # -- the Rewrite ------------------------------------------------------------------------
    @staticmethod
    def _parse(name: str) -> tuple[int, str, str] | None:
        parts = name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or not parts[1].isdigit() or parts[3] not in ("weight", "bias"):
            return None
        return int(parts[1]), parts[2], parts[3]

    def touches(self, name: str) -> bool:
        p = self._parse(name)
        if p is None:
            return False
        _, kind, what = p
        if what == "bias":
            return kind == FEEDER[1]   # V's bias follows its rows
        return kind in FEEDER.values() or any(kind in SITE_TENSORS[site] for site in FEEDER)

    def apply(self, name: str, values: np.ndarray) -> np.ndarray:
        layer, kind, what = self._parse(name)
        sc = self.scales(layer)
        v = np.asarray(values, np.float32)
        if what == "weight":
            for site, s in sc.items():
                if kind in SITE_TENSORS[site]:          # the matrix's input columns
                    v = v * (s[self._o_groups(v.shape[1])[0]] if site == 1 else s)[None, :]
        for site, feeder in FEEDER.items():
            if kind == feeder and site in sc:           # what produces the site's input
                s = sc[site]
                v = v / (s if v.ndim == 1 else s[:, None])
        return v

    def summary(self) -> str:
        """The alphas chosen, per site (for the log)."""
        names = {0: "attn_in", 1: "attn_out", 2: "ffn_in", 3: "down_in"}
        parts = []
        for site, label in names.items():
            got = [a for (layer, s), a in sorted(self.chosen.items()) if s == site]
            if got:
                parts.append(f"{label}: " + " ".join("-" if a is None else f"{a:.2f}" for a in got))
        return "; ".join(parts)
