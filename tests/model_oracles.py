"""Independent references for model logits: transformers (torch, fp32) for
Llama-family checkpoints, and llama.cpp through llama-cpp-python for any GGUF."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def ours_prefill_and_decode(gguf, ids: list[int], **kw) -> tuple[np.ndarray, np.ndarray]:
    """Our logits for ``ids``: one prefill, then the same tokens decoded one at a time
    (the two paths a reference is compared with); ``kw`` goes to Model."""
    from minicpm_edge import Model
    m = Model(str(gguf), n_ctx=128, n_threads=2, **kw)
    prefill = m.logits(ids)
    m.reset()
    decode = np.stack([m.eval([t]) for t in ids])
    return prefill, decode


def max_abs_relative(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref| over all logits: the error relative to the
    scale of the logits, insensitive to individual near-zero entries."""
    return float(np.max(np.abs(ours.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def transformers_llama_logits(hf_dir: Path, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(hf_dir), torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        with torch._dynamo.config.patch(disable=True):
            out = model(torch.tensor([ids]))
    return out.logits[0].double().numpy()


def minicpm_as_llama_logits(hf_dir: Path, ids: list[int]) -> np.ndarray:
    """MiniCPM through transformers' Llama code with the three μP scalars folded
    into the weights (the 'Llama format' of MiniCPM/CPM.cu): E' = scale_emb E,
    W_o' = r W_o, W_down' = r W_down with r = scale_depth / sqrt(L), and
    W_lm' = W_lm / (hidden / dim_model_base). LongRoPE maps onto transformers'
    longrope rope type."""
    import torch
    from safetensors.torch import load_file
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = json.loads((hf_dir / "config.json").read_text())
    tensors = {}
    for f in sorted(hf_dir.glob("*.safetensors")):
        tensors.update({k: v.float().numpy() for k, v in load_file(str(f)).items()})
    L, H = cfg["num_hidden_layers"], cfg["hidden_size"]
    r = cfg["scale_depth"] / np.sqrt(L)
    logit_div = H / cfg["dim_model_base"]
    sd = {}
    for k, v in tensors.items():
        v = v.astype(np.float32)
        if k == "model.embed_tokens.weight":
            head = tensors.get("lm_head.weight", v).astype(np.float32) / logit_div
            sd["lm_head.weight"] = torch.from_numpy(np.ascontiguousarray(head))
            v = v * cfg["scale_emb"]
        elif k.endswith("self_attn.o_proj.weight") or k.endswith("mlp.down_proj.weight"):
            v = v * r
        elif k == "lm_head.weight":
            continue
        sd[k] = torch.from_numpy(np.ascontiguousarray(v))
    llama_cfg = dict(
        vocab_size=cfg["vocab_size"], hidden_size=H, intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=L, num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
        rms_norm_eps=cfg["rms_norm_eps"], max_position_embeddings=cfg["max_position_embeddings"],
        tie_word_embeddings=False, attention_bias=False,
    )
    rope = cfg.get("rope_scaling")
    rope_params = {"rope_type": "default", "rope_theta": cfg.get("rope_theta", 10000.0)}
    if rope and rope.get("rope_type", rope.get("type")) == "longrope":
        rope_params = {"rope_type": "longrope", "rope_theta": cfg.get("rope_theta", 10000.0),
                       "long_factor": rope["long_factor"], "short_factor": rope["short_factor"],
                       "original_max_position_embeddings": rope["original_max_position_embeddings"]}
    config = LlamaConfig(**llama_cfg, rope_parameters=rope_params)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    model.eval()
    with torch.no_grad():
        with torch._dynamo.config.patch(disable=True):
            out = model(torch.tensor([ids]))
    return out.logits[0].double().numpy()


def llama_cpp_logits(gguf_path: Path, ids: list[int], kv_cache_type: str = "f32") -> np.ndarray:
    from llama_cpp import Llama

    # F32 KV cache by default: llama.cpp's default F16 cache alone would exceed
    # the f32 tolerance. ggml type ids: 0 = F32, 1 = F16.
    kv = {"f32": 0, "f16": 1}[kv_cache_type]
    llm = Llama(model_path=str(gguf_path), n_ctx=max(256, len(ids) + 8), logits_all=True, verbose=False,
                n_threads=2, n_batch=512, type_k=kv, type_v=kv, flash_attn=False)
    llm.reset()
    llm.eval(ids)
    out = np.array(llm.scores[: len(ids)], dtype=np.float64)
    llm.close()
    return out


def llama_cpp_perplexity(gguf_path: Path, ids: list[int], n_ctx: int, n_chunks: int, bos_id: int | None) -> float:
    """llama-perplexity's method through llama-cpp-python: windows of n_ctx
    tokens (BOS in front when the vocabulary adds one), the second half of
    each window scored."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=512, logits_all=True,
                verbose=False, n_threads=2)
    first, nll, count = n_ctx // 2, 0.0, 0
    for i in range(n_chunks):
        window = list(ids[i * n_ctx:(i + 1) * n_ctx])
        if bos_id is not None:
            window[0] = bos_id
        llm.reset()
        llm.eval(window)
        logits = np.array(llm.scores[first:n_ctx - 1], dtype=np.float64)
        mx = logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(logits - mx).sum(axis=1)) + mx[:, 0]
        nll -= float((logits[np.arange(len(logits)), window[first + 1:]] - lse).sum())
        count += len(logits)
    llm.close()
    return float(np.exp(nll / count))


def logit_rms_errors(hf_dir: Path, paths: list[Path], text: str, n_tokens: int = 160) -> list[float]:
    """RMS distance of each GGUF file's logits (exact arithmetic) on the first tokens of
    ``text`` from transformers' logits of the float checkpoint ``hf_dir``."""
    from minicpm_edge import Model
    ids = Model(str(paths[0]), n_ctx=256, n_threads=2).tokenize(text)[:n_tokens]
    ref = transformers_llama_logits(hf_dir, ids)
    errors = []
    for path in paths:
        got = Model(str(path), n_ctx=256, n_threads=2, int8_activations=False).logits(ids)
        errors.append(float(np.sqrt(np.mean((got - ref) ** 2))))
    return errors


def bitlinear_reference(x: np.ndarray, t: np.ndarray, s: float) -> np.ndarray:
    """BitNet's BitLinear in numpy, float64: per-token absmax int8 activations (round half
    to even) times the ternary weights s * t."""
    inv = np.float32(127) / np.maximum(np.abs(x).max(axis=1, keepdims=True), np.float32(1e-5))
    a = np.clip(np.rint(x * inv), -128, 127).astype(np.float64)
    return (a / inv.astype(np.float64)) @ (t.astype(np.float64) * s).T


def transformers_bitnet_logits(hf_dir: Path, ids: list[int], *, act_quant: bool = True,
                               weights: dict[str, np.ndarray] | None = None,
                               embed: np.ndarray | None = None) -> np.ndarray:
    """transformers' BitNetForCausalLM (fp32) with BitNet b1.58's linear layers, built
    from transformers' own pieces (integrations/bitnet.py):

    - a checkpoint in the packed release format loads as transformers' BitLinear;
    - float master weights: every decoder linear becomes AutoBitLinear in online
      mode (absmean ternary weights, int8 per-token absmax activations), or with
      act_quant=False a plain Linear holding WeightQuant's ternary values;
    - ``weights`` (HF name -> float32 values) replaces tensors first; the decoder
      linears then take those values as they are (AutoBitLinear offline, scale 1);
    - ``embed`` replaces the token embedding only (e.g. by a GGUF's Q8_0 table).

    torch.compile is disabled: on this torch the compiled ActQuant of a module's
    first call can differ from its later calls by an activation step (seen as
    1e-3 relative logit changes between two identical forward passes)."""
    import torch
    import torch._dynamo
    from transformers import BitNetForCausalLM
    from transformers.integrations.bitnet import AutoBitLinear, WeightQuant

    model = BitNetForCausalLM.from_pretrained(str(hf_dir), torch_dtype=torch.float32).eval()
    packed = (json.loads((Path(hf_dir) / "config.json").read_text()).get("quantization_config") or {})
    with torch.no_grad():
        params = dict(model.named_parameters())
        if embed is not None:
            params["model.embed_tokens.weight"].copy_(torch.from_numpy(np.ascontiguousarray(embed, np.float32)))
        for name, value in (weights or {}).items():
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
        if not packed:
            for name, mod in list(model.named_modules()):
                if not isinstance(mod, torch.nn.Linear) or name == "lm_head":
                    continue
                if not act_quant:
                    if weights is None:
                        mod.weight.copy_(WeightQuant.apply(mod.weight))
                    continue
                new = AutoBitLinear(mod.in_features, mod.out_features, bias=False, online_quant=weights is None)
                new.weight = mod.weight
                model.set_submodule(name, new)
        with torch._dynamo.config.patch(disable=True):
            out = model(torch.tensor([ids]))
    return out.logits[0].double().numpy()
