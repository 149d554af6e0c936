"""`llama`: LlamaForCausalLM (Llama 2/3, TinyLlama, SmolLM2, ...).

Differences from the baseline: Llama 3.1-style RoPE scaling, which llama.cpp
stores as a `rope_freqs.weight` tensor of per-frequency divisors instead of
metadata (conversion/llama.py, generate_extra_tensors).
"""
from __future__ import annotations

import math

import numpy as np

from .arch_base import DecoderArch


def llama3_rope_divisors(head_dim: int, theta: float, factor: float, low_freq_factor: float,
                         high_freq_factor: float, original_ctx: int) -> np.ndarray:
    """Per-frequency divisors of Llama 3.1's RoPE scaling ("llama3" rope_type).

    Frequencies whose wavelength is shorter than original_ctx/high_freq_factor
    are kept, those longer than original_ctx/low_freq_factor are divided by
    ``factor``, and the band between is blended smoothly (Llama 3.1 reference
    `apply_scaling`). ggml divides each frequency by the stored value.
    """
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / freqs
    with np.errstate(divide="ignore", invalid="ignore"):  # the blend is unused when the band is empty
        smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        blended = 1.0 / ((1.0 - smooth) / factor + smooth)
    out = np.where(wavelen < original_ctx / high_freq_factor, 1.0,
                   np.where(wavelen > original_ctx / low_freq_factor, factor, blended))
    return out.astype(np.float32)


class LlamaArch(DecoderArch):
    gguf_arch = "llama"
    hf_architectures = ("LlamaForCausalLM",)
    default_tied = False
    rope_types = DecoderArch.rope_types + ("llama3",)

    def extra_tensors(self) -> list[tuple[str, np.ndarray]]:
        hp, rope = self.hp, self.hp.rope
        if hp.rope_type != "llama3":
            return []
        original_ctx = rope.get("original_max_position_embeddings",
                                self.config.get("original_max_position_embeddings", 8192))
        divisors = llama3_rope_divisors(
            hp.head_dim, hp.rope_theta,
            factor=float(rope.get("factor", 8.0)),
            low_freq_factor=float(rope.get("low_freq_factor", 1.0)),
            high_freq_factor=float(rope.get("high_freq_factor", 4.0)),
            original_ctx=int(original_ctx),
        )
        return [("rope_freqs.weight", divisors)]
