"""The Llama-style decoder every supported architecture is a variation of.

An architecture says how HF tensor names map to GGUF names, which shapes
config.json implies, how each tensor is transformed on the way, which extra
tensors it adds and which metadata keys it writes. Subclasses (arch_llama.py,
arch_minicpm.py) state only how they differ from this baseline.

Conventions follow llama.cpp (convert_hf_to_gguf.py / conversion/*.py,
gguf-py constants, src/llama-model.cpp) so llama.cpp runs the files we write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from gguf import GGUFWriter, RopeScalingType

from .errors import ConfigError, UnsupportedArchitectureError


def permute_for_interleaved_rope(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder Q or K projection rows from HF's half-split RoPE to ggml's NORM RoPE.

    HF Llama rotates pairs (i, i + d/2) of each head ("rotate_half"); ggml's
    LLAMA_ROPE_TYPE_NORM rotates adjacent pairs (2i, 2i+1). Moving HF row
    a*(d/2)+b of a head to row 2b+a makes the two agree, which is what
    llama.cpp's converter does (conversion/llama.py, LlamaModel.permute).
    Works on weights [rows, in] and biases [rows].
    """
    rows = w.shape[0]
    if rows % (2 * n_heads) != 0:
        raise ConfigError(f"cannot split {rows} rows into {n_heads} heads of even size for RoPE")
    return (w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


@dataclass
class TensorSpec:
    """One checkpoint tensor and where it goes."""

    hf_name: str
    gguf_name: str
    shape: tuple[int, ...]                     # HF (numpy) shape; the GGUF numpy-order shape is the same
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    # A checkpoint that stores the tensor in another form (BitNet's packed ternary
    # release): its shape and dtype there, the other checkpoint tensors it needs, and
    # how to turn them into float32 values of ``shape`` (given the HFCheckpoint).
    hf_shape: tuple[int, ...] | None = None
    hf_dtype: str | None = None
    companions: tuple[str, ...] = ()
    load: Callable[[Any], np.ndarray] | None = None


@dataclass
class HParams:
    """The config.json values every Llama-style decoder needs."""

    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_ctx: int
    rms_eps: float
    rope_theta: float
    rope: dict[str, Any] = field(default_factory=dict)   # rope scaling parameters, possibly empty
    rope_type: str | None = None                         # normalised name: linear, yarn, longrope, llama3, ...
    tied: bool = False
    attention_bias: bool = False


class DecoderArch:
    """Baseline: a Llama decoder (pre-RMSNorm, GQA attention with RoPE, SwiGLU MLP)."""

    gguf_arch: str = ""
    hf_architectures: tuple[str, ...] = ()
    default_tied: bool = False
    # rope scaling types this architecture can express in GGUF
    rope_types: tuple[str, ...] = ("linear", "yarn")
    # checkpoint tensors that carry no weights (recomputed buffers)
    ignored_suffixes: tuple[str, ...] = (".rotary_emb.inv_freq",)
    # Q/K rows reordered for ggml's NORM (interleaved) RoPE; False for architectures
    # llama.cpp runs with NEOX RoPE on unpermuted rows.
    permute_qk: bool = True

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.hp = self.parse_hparams(config)

    # ---- config -------------------------------------------------------------------------
    def cfg(self, *keys: str, default: Any = ConfigError) -> Any:
        """First of ``keys`` present (and not null) in config.json."""
        for k in keys:
            if self.config.get(k) is not None:
                return self.config[k]
        if default is ConfigError:
            raise ConfigError(f"config.json lacks {' / '.join(keys)} (needed for {self.gguf_arch})")
        return default

    def parse_hparams(self, c: dict[str, Any]) -> HParams:
        def positive_int(*keys: str, default: Any = ConfigError) -> int:
            v = self.cfg(*keys, default=default)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"config.json {keys[0]} must be a positive integer, got {v!r}")
            return v

        n_embd = positive_int("hidden_size")
        n_head = positive_int("num_attention_heads")
        n_head_kv = positive_int("num_key_value_heads", default=n_head)
        if n_embd % n_head and self.config.get("head_dim") is None:
            raise ConfigError(f"hidden_size {n_embd} is not divisible by num_attention_heads {n_head}")
        head_dim = positive_int("head_dim", default=n_embd // n_head)
        if n_head % n_head_kv:
            raise ConfigError(f"num_attention_heads {n_head} is not a multiple of num_key_value_heads {n_head_kv}")

        # transformers >= 5 writes rope_parameters (with rope_theta inside); older
        # configs use rope_scaling plus a top-level rope_theta. Either may be null.
        rope = dict(c.get("rope_parameters") or c.get("rope_scaling") or {})
        rope_type = rope.get("rope_type", rope.get("type"))
        rope_type = None if rope_type in (None, "default", "none") else str(rope_type).lower()
        if rope_type == "su":  # Phi-3's old name for LongRoPE
            rope_type = "longrope"
        if rope_type is not None and rope_type not in self.rope_types:
            raise UnsupportedArchitectureError(
                f"rope scaling type {rope_type!r} is not supported for {self.gguf_arch}; "
                f"supported: {', '.join(self.rope_types)}")
        rope_theta = float(rope.get("rope_theta", self.cfg("rope_theta", default=10000.0)))

        tied = c.get("tie_word_embeddings")
        return HParams(
            n_vocab=positive_int("vocab_size"),
            n_embd=n_embd,
            n_layer=positive_int("num_hidden_layers"),
            n_head=n_head,
            n_head_kv=n_head_kv,
            head_dim=head_dim,
            n_ff=positive_int("intermediate_size"),
            n_ctx=positive_int("max_position_embeddings"),
            rms_eps=float(self.cfg("rms_norm_eps", default=1e-6)),
            rope_theta=rope_theta,
            rope=rope,
            rope_type=rope_type,
            tied=self.default_tied if tied is None else bool(tied),
            attention_bias=bool(c.get("attention_bias", False)),
        )

    # ---- tensors ------------------------------------------------------------------------
    def tensor_specs(self) -> list[TensorSpec]:
        hp = self.hp
        q_rows, kv_rows = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
        q_perm = lambda w: permute_for_interleaved_rope(w, hp.n_head)     # noqa: E731
        k_perm = lambda w: permute_for_interleaved_rope(w, hp.n_head_kv)  # noqa: E731
        if not self.permute_qk:
            q_perm = k_perm = None

        specs = [TensorSpec("model.embed_tokens.weight", "token_embd.weight", (hp.n_vocab, hp.n_embd))]
        for i in range(hp.n_layer):
            hf, gg = f"model.layers.{i}.", f"blk.{i}."
            specs += [
                TensorSpec(hf + "input_layernorm.weight", gg + "attn_norm.weight", (hp.n_embd,)),
                TensorSpec(hf + "self_attn.q_proj.weight", gg + "attn_q.weight", (q_rows, hp.n_embd), q_perm),
                TensorSpec(hf + "self_attn.k_proj.weight", gg + "attn_k.weight", (kv_rows, hp.n_embd), k_perm),
                TensorSpec(hf + "self_attn.v_proj.weight", gg + "attn_v.weight", (kv_rows, hp.n_embd)),
                TensorSpec(hf + "self_attn.o_proj.weight", gg + "attn_output.weight", (hp.n_embd, q_rows)),
            ]
            if hp.attention_bias:
                specs += [
                    TensorSpec(hf + "self_attn.q_proj.bias", gg + "attn_q.bias", (q_rows,), q_perm),
                    TensorSpec(hf + "self_attn.k_proj.bias", gg + "attn_k.bias", (kv_rows,), k_perm),
                    TensorSpec(hf + "self_attn.v_proj.bias", gg + "attn_v.bias", (kv_rows,)),
                    TensorSpec(hf + "self_attn.o_proj.bias", gg + "attn_output.bias", (hp.n_embd,)),
                ]
            specs += [
                TensorSpec(hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", (hp.n_embd,)),
                TensorSpec(hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", (hp.n_ff, hp.n_embd)),
                TensorSpec(hf + "mlp.up_proj.weight", gg + "ffn_up.weight", (hp.n_ff, hp.n_embd)),
                TensorSpec(hf + "mlp.down_proj.weight", gg + "ffn_down.weight", (hp.n_embd, hp.n_ff)),
            ]
        specs.append(TensorSpec("model.norm.weight", "output_norm.weight", (hp.n_embd,)))
        # Tied: llama.cpp reuses token_embd when output.weight is absent.
        if not hp.tied:
            specs.append(TensorSpec("lm_head.weight", "output.weight", (hp.n_vocab, hp.n_embd)))
        return specs

    def is_ignored(self, hf_name: str) -> bool:
        # A tied checkpoint may still store lm_head; tying means it equals the embedding.
        return hf_name.endswith(self.ignored_suffixes) or (self.hp.tied and hf_name == "lm_head.weight")

    def extra_tensors(self) -> list[tuple[str, np.ndarray]]:
        """Tensors computed from config.json (F32), written before the weights."""
        return []

    # ---- metadata -----------------------------------------------------------------------
    def add_metadata(self, w: GGUFWriter) -> None:
        """Hyper-parameter keys, as llama.cpp's TextModel.set_gguf_parameters writes them."""
        hp = self.hp
        w.add_block_count(hp.n_layer)
        w.add_context_length(hp.n_ctx)
        w.add_embedding_length(hp.n_embd)
        w.add_feed_forward_length(hp.n_ff)
        w.add_head_count(hp.n_head)
        w.add_head_count_kv(hp.n_head_kv)
        self.add_rope_scaling(w)
        w.add_rope_freq_base(hp.rope_theta)
        w.add_layer_norm_rms_eps(hp.rms_eps)
        if self.config.get("head_dim") is not None:
            w.add_key_length(hp.head_dim)
            w.add_value_length(hp.head_dim)
        w.add_vocab_size(hp.n_vocab)
        w.add_rope_dimension_count(hp.head_dim)
        self.add_arch_metadata(w)

    def add_rope_scaling(self, w: GGUFWriter) -> None:
        hp, rope = self.hp, self.hp.rope
        if hp.rope_type == "linear":
            w.add_rope_scaling_type(RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(float(self._rope_param("factor")))
        elif hp.rope_type == "yarn":
            w.add_rope_scaling_type(RopeScalingType.YARN)
            w.add_rope_scaling_factor(float(self._rope_param("factor")))
            w.add_rope_scaling_orig_ctx_len(int(self._rope_param("original_max_position_embeddings")))
            for key, add in (("extrapolation_factor", w.add_rope_scaling_yarn_ext_factor),
                             ("attention_factor", w.add_rope_scaling_yarn_attn_factor),
                             ("beta_fast", w.add_rope_scaling_yarn_beta_fast),
                             ("beta_slow", w.add_rope_scaling_yarn_beta_slow)):
                if rope.get(key) is not None:
                    add(float(rope[key]))

    def _rope_param(self, key: str) -> Any:
        if self.hp.rope.get(key) is None:
            raise ConfigError(f"rope scaling {self.hp.rope_type!r} in config.json lacks {key!r}")
        return self.hp.rope[key]

    def add_arch_metadata(self, w: GGUFWriter) -> None:
        """Keys only this architecture writes."""
