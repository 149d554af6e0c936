"""`bitnet`: BitNetForCausalLM (BitNet b1.58, Ma et al. 2024; transformers' BitNet,
microsoft/bitnet-b1.58-2B-4T) and 1bitLLM's BitnetForCausalLM.

Differences from the baseline (llama.cpp conversion/bitnet.py, src/models/bitnet.cpp):
- every linear layer of the decoder is ternary, w = s * t with t in {-1, 0, +1} and
  s = mean |W| per matrix (BitNet b1.58 eq. 1-3); the converter writes the ternarized
  values (llama.cpp's weight_quant), which the ternary type t2 then stores exactly;
- an RMSNorm of the attention output before o_proj (attn_sub_norm; 1bitLLM:
  inner_attn_ln) and of the gated FFN product before down_proj (ffn_sub_norm; 1bitLLM:
  ffn_layernorm);
- the FFN gate is squared ReLU in transformers' BitNet (hidden_act "relu2"), SiLU in
  1bitLLM's models, which is what llama.cpp's bitnet graph runs: the activation is
  written as minicpm_edge.ffn_activation;
- NEOX RoPE on unpermuted Q/K rows (llama.cpp's rope type for bitnet);
- the packed release format (quantization_config quant_method "bitnet"): weights as
  uint8 [out/4, in], four 2-bit codes t + 1 per byte, code k of byte i being row
  k * out/4 + i, with a weight_scale that divides the output (linear_class
  "bitlinear") or multiplies it ("autobitlinear"), as transformers'
  integrations/bitnet.py reads them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gguf import GGUFWriter

from .arch_base import DecoderArch, TensorSpec
from .errors import CheckpointFormatError, ConfigError, UnsupportedArchitectureError
from .ternary import absmean_ternary

KEY_FFN_ACTIVATION = "minicpm_edge.ffn_activation"
# The sub-norms' HF names: transformers' BitNet, and 1bitLLM's checkpoints (BitnetForCausalLM;
# gguf-py's tensor_mapping lists both).
SUB_NORMS = {"BitNetForCausalLM": ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm"),
             "BitnetForCausalLM": ("self_attn.inner_attn_ln", "mlp.ffn_layernorm")}
ACTIVATIONS = {"relu2": "relu2", "silu": "silu", "swish": "silu"}
LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def fake_ternary(w: np.ndarray) -> np.ndarray:
    """w's BitNet b1.58 ternarization as float32 values t * s."""
    t, s = absmean_ternary(w)
    return t.astype(np.float32) * s


def unpack_release(packed: np.ndarray) -> np.ndarray:
    """uint8 [out/4, in] of the packed release -> t int8 [out, in]."""
    q = packed[None, :, :] >> (2 * np.arange(4, dtype=np.uint8))[:, None, None] & 3
    return (q.astype(np.int8) - 1).reshape(4 * packed.shape[0], packed.shape[1])


class BitNetArch(DecoderArch):
    gguf_arch = "bitnet"
    hf_architectures = ("BitNetForCausalLM", "BitnetForCausalLM")
    default_tied = False   # transformers' BitNetConfig default; 2B4T's config says true
    permute_qk = False

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        act = str(config.get("hidden_act", "relu2")).lower()
        if act not in ACTIVATIONS:
            raise UnsupportedArchitectureError(f"BitNet with hidden_act {act!r} is not supported "
                                               f"({', '.join(ACTIVATIONS)})")
        self.ffn_activation = ACTIVATIONS[act]
        names = config.get("architectures") or []
        self.sub_norms = SUB_NORMS["BitnetForCausalLM" if "BitnetForCausalLM" in names else "BitNetForCausalLM"]
        qc = config.get("quantization_config") or {}
        if not isinstance(qc, dict):
            raise ConfigError("config.json quantization_config must be an object")
        self.packed = qc.get("quant_method") == "bitnet" and qc.get("quantization_mode", "offline") == "offline"
        # bitlinear divides the output by weight_scale, autobitlinear multiplies it.
        self.scale_divides = qc.get("linear_class", "bitlinear") != "autobitlinear"

    def tensor_specs(self) -> list[TensorSpec]:
        specs = []
        for s in super().tensor_specs():
            linear = s.hf_name.endswith(".weight") and s.hf_name[:-len(".weight")].endswith(LINEARS)
            if linear:
                s = self._ternary_spec(s)
            specs.append(s)
            if s.gguf_name.endswith("attn_output.weight"):
                prefix = s.hf_name[:-len("self_attn.o_proj.weight")]
                specs.append(TensorSpec(prefix + self.sub_norms[0] + ".weight",
                                        s.gguf_name.replace("attn_output.weight", "attn_sub_norm.weight"),
                                        (self.hp.n_embd,)))
            if s.gguf_name.endswith("ffn_down.weight"):
                prefix = s.hf_name[:-len("mlp.down_proj.weight")]
                specs.append(TensorSpec(prefix + self.sub_norms[1] + ".weight",
                                        s.gguf_name.replace("ffn_down.weight", "ffn_sub_norm.weight"),
                                        (self.hp.n_ff,)))
        return specs

    def _ternary_spec(self, s: TensorSpec) -> TensorSpec:
        if not self.packed:
            return TensorSpec(s.hf_name, s.gguf_name, s.shape, fake_ternary)
        rows, cols = s.shape
        if rows % 4:
            raise ConfigError(f"{s.hf_name}: {rows} rows cannot be packed four to a byte")
        scale_name = s.hf_name[:-len("weight")] + "weight_scale"
        divides = self.scale_divides

        def load(ckpt) -> np.ndarray:
            t = unpack_release(np.asarray(ckpt.load_raw(s.hf_name)))
            if (t > 1).any():
                raise CheckpointFormatError(f"{s.hf_name}: packed code 3 is not a ternary value")
            scale = ckpt.load_float32(scale_name).reshape(-1)
            if scale.size != 1 or not np.isfinite(scale[0]) or scale[0] <= 0:
                raise CheckpointFormatError(f"{scale_name}: expected one positive finite scale")
            s_val = np.float32(1) / scale[0] if divides else scale[0]
            return t.astype(np.float32) * s_val

        return TensorSpec(s.hf_name, s.gguf_name, s.shape, hf_shape=(rows // 4, cols), hf_dtype="U8",
                          companions=(scale_name,), load=load)

    def add_arch_metadata(self, w: GGUFWriter) -> None:
        w.add_string(KEY_FFN_ACTIVATION, self.ffn_activation)
