"""`minicpm`: MiniCPMForCausalLM (MiniCPM-1B/2B and MiniCPM4/4.1 dense).

Differences from the baseline (llama.cpp conversion/minicpm.py, src/models/minicpm.cpp):
- three muP scalars: embeddings x scale_emb, every residual branch x
  scale_depth/sqrt(L), logits / (hidden_size/dim_model_base); llama.cpp reads
  them as minicpm.{embedding,residual,logit}_scale;
- tied embeddings unless config.json says otherwise (MiniCPM's default);
- LongRoPE (MiniCPM4): per-frequency divisors as rope_factors_{long,short}.weight
  (head_dim/2 floats each) and rope.scaling.type = longrope. We also write the
  original context and the LongRoPE attention factor under llama.cpp's generic
  keys, which llama.cpp's own converter omits for MiniCPM (it then falls back to
  n_ctx_train and 1.0, the values of every released MiniCPM4 config);
- MiniCPM4's InfLLM v2 `sparse_config` is kept as minicpm_edge.sparse.* scalars
  for our runtime; llama.cpp ignores unknown keys and runs the model densely.
"""
from __future__ import annotations

import logging
import math

import numpy as np
from gguf import GGUFWriter, RopeScalingType

from .arch_base import DecoderArch
from .errors import ConfigError

log = logging.getLogger(__name__)

EDGE = "minicpm_edge"


class MiniCPMArch(DecoderArch):
    gguf_arch = "minicpm"
    hf_architectures = ("MiniCPMForCausalLM",)
    default_tied = True
    rope_types = DecoderArch.rope_types + ("longrope",)

    def __init__(self, config):
        super().__init__(config)
        # Defaults are the ones transformers' native MiniCPMConfig uses.
        self.scale_emb = float(self.cfg("scale_emb", default=12.0))
        self.scale_depth = float(self.cfg("scale_depth", default=1.4))
        self.dim_model_base = float(self.cfg("dim_model_base", default=256))
        sparse = config.get("sparse_config")
        self.sparse = sparse if isinstance(sparse, dict) else {}
        # MiniCPM 1/2 have neither LongRoPE nor InfLLM v2; every MiniCPM4 config has LongRoPE.
        self.variant = "minicpm4" if self.hp.rope_type == "longrope" or self.sparse else "minicpm"

    # ---- LongRoPE -----------------------------------------------------------------------
    def _original_ctx(self) -> int:
        v = self.hp.rope.get("original_max_position_embeddings",
                             self.config.get("original_max_position_embeddings"))
        if v is None:
            raise ConfigError("longrope rope_scaling lacks original_max_position_embeddings")
        return int(v)

    def longrope_attention_factor(self) -> float:
        """LongRoPE's cos/sin multiplier: sqrt(1 + ln(s)/ln(L0)), s = max_pos/L0 (1 when s <= 1)."""
        if self.hp.rope.get("attention_factor") is not None:
            return float(self.hp.rope["attention_factor"])
        original = self._original_ctx()
        scale = self.hp.n_ctx / original
        return math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1.0 else 1.0

    def extra_tensors(self) -> list[tuple[str, np.ndarray]]:
        if self.hp.rope_type != "longrope":
            return []
        n = self.hp.head_dim // 2
        out = []
        for which in ("long", "short"):
            factors = self.hp.rope.get(f"{which}_factor")
            if not isinstance(factors, list) or len(factors) != n:
                got = len(factors) if isinstance(factors, list) else factors
                raise ConfigError(f"rope_scaling.{which}_factor must be a list of head_dim/2 = {n} numbers, got {got}")
            out.append((f"rope_factors_{which}.weight", np.asarray(factors, dtype=np.float32)))
        return out

    def add_rope_scaling(self, w: GGUFWriter) -> None:
        super().add_rope_scaling(w)
        if self.hp.rope_type == "longrope":
            w.add_rope_scaling_type(RopeScalingType.LONGROPE)
            w.add_rope_scaling_orig_ctx_len(self._original_ctx())
            w.add_rope_scaling_attn_factors(self.longrope_attention_factor())

    # ---- scalars and our own keys -------------------------------------------------------
    def add_arch_metadata(self, w: GGUFWriter) -> None:
        hp = self.hp
        w.add_embedding_scale(self.scale_emb)
        w.add_residual_scale(self.scale_depth / math.sqrt(hp.n_layer))
        w.add_logit_scale(hp.n_embd / self.dim_model_base)
        w.add_string(f"{EDGE}.arch_variant", self.variant)
        for key, value in self.sparse.items():
            self._add_sparse_scalar(w, f"{EDGE}.sparse.{key}", value)

    @staticmethod
    def _add_sparse_scalar(w: GGUFWriter, key: str, value) -> None:
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            if -2**31 <= value < 2**31:
                w.add_int32(key, value)
            else:
                w.add_int64(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        elif isinstance(value, str):
            w.add_string(key, value)
        else:  # lists, dicts, null: nothing our runtime reads
            log.info("sparse_config.%s is not a scalar, not stored", key.rsplit(".", 1)[-1])
