#!/usr/bin/env python3
"""Write tiny, randomly initialised Hugging Face checkpoints for tests.

    python tools/make_tiny_models.py OUT_DIR [--smollm2-tokenizer [GGUF]]

OUT_DIR/llama        LlamaForCausalLM (transformers), untied head, F32, byte-level BPE
OUT_DIR/llama-tied   the same with tie_word_embeddings and Llama 3.1 ("llama3") RoPE scaling
OUT_DIR/minicpm      MiniCPM-1B/2B-like (MiniCPMForCausalLM), tied, BF16, SentencePiece;
                     intermediate_size 144 so ffn_down rows are not a multiple of 32
OUT_DIR/minicpm4     MiniCPM4-like: LongRoPE, sparse_config, untied head, F16 in two shards
OUT_DIR/bitcpm4      BitCPM4-like: the MiniCPM4 model with ternary decoder linears, one absmean
                     scale per group of 32 inputs (fake-quantized BF16, as BitCPM4 is released)
OUT_DIR/bitnet       BitNetForCausalLM (transformers), squared-ReLU FFN, untied head, F32
                     full-precision master weights (ternarized at conversion)
OUT_DIR/bitnet-packed  the same model family in the packed release format of
                     microsoft/bitnet-b1.58-2B-4T: uint8 ternary codes + weight_scale, BF16, tied

Shapes: hidden 64 (minicpm4: 128; bitnet: 256, so rows split into llama.cpp's 256-element
ternary blocks), 2 layers, 4 heads, 2 KV heads, vocab 512.
Tokenizers are trained on the wikitext-2 validation text from the shared data
directory: a 512-token byte-level BPE (SmolLM2's special tokens and chat format)
and a 506-piece SentencePiece BPE model with byte fallback plus MiniCPM's ChatML
tokens in added_tokens.json. With --smollm2-tokenizer the llama checkpoints use
the real SmolLM2 tokenizer instead, rebuilt by transformers from the SmolLM2
GGUF (vocab 49152; much larger files).

Everything is seeded: the same command writes the same bytes.
MiniCPM has no class in the transformers releases we use, so those checkpoints
are written directly with numpy/safetensors under MiniCPM's HF tensor names.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2-valid.txt"

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
          "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")
BPE_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]   # ids 0, 1, 2 as in SmolLM2
SPM_PIECES = 506
SPM_ADDED = ["<|im_end|>", "<|im_start|>", "<|tool_call|>", "<|execute_start|>"]  # ids 506..509, as MiniCPM
VOCAB = 512


def corpus_lines(path: Path = WIKITEXT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("=")]


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---- tokenizers ---------------------------------------------------------------------------
def write_bpe_tokenizer(out: Path, lines: list[str]) -> int:
    """Byte-level BPE like SmolLM2's (no BOS added, ChatML). Returns the vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=BPE_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>",
        "add_prefix_space": False, "clean_up_tokenization_spaces": False, "model_max_length": 2048,
    })
    (out / "chat_template.jinja").write_text(CHATML, encoding="utf-8")
    return tok.get_vocab_size()


def find_smollm2_gguf(explicit: str | os.PathLike | None = None) -> Path:
    """The default SmolLM2 GGUF: explicit path, else the hub's default, else $MINICPM_EDGE_TEST_GGUF."""
    if explicit:
        return Path(explicit)
    try:
        from minicpm_edge.hub import default_model_path
        return Path(default_model_path())
    except ImportError:
        pass
    env = os.environ.get("MINICPM_EDGE_TEST_GGUF")
    if env:
        return Path(env)
    raise FileNotFoundError("no SmolLM2 GGUF: pass a path, install the default model, or set MINICPM_EDGE_TEST_GGUF")


def write_smollm2_tokenizer(out: Path, gguf_path: Path) -> int:
    """SmolLM2's real tokenizer, reconstructed by transformers from the GGUF metadata."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tok.save_pretrained(str(out))
    return len(tok)


def write_spm_tokenizer(out: Path, lines: list[str]) -> None:
    """SentencePiece BPE with byte fallback plus MiniCPM-style ChatML tokens."""
    import sentencepiece as spm

    spm.set_random_generator_seed(1234)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=SPM_PIECES,
        byte_fallback=True, character_coverage=0.995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, shuffle_input_sentence=False, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True, minloglevel=2)
    (out / "tokenizer.model").write_bytes(model.getvalue())
    added = {text: SPM_PIECES + i for i, text in enumerate(SPM_ADDED)}
    _write_json(out / "added_tokens.json", added)
    decoder = {str(i): {"content": t, "special": True, "normalized": False, "lstrip": False,
                        "rstrip": False, "single_word": False}
               for t, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2), *added.items()]}
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "LlamaTokenizer", "legacy": True,
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False, "added_tokens_decoder": decoder, "chat_template": CHATML,
    })


# ---- llama (transformers) -----------------------------------------------------------------
def structure_norms(model) -> None:
    """HF initialises norms to exactly 1; give them structure (from torch's seeded stream)."""
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))


def write_llama(out: Path, vocab_size: int, tied: bool, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rope = {"rope_type": "default", "rope_theta": 100000.0}
    if tied:  # the tied variant also exercises Llama 3.1 RoPE scaling (rope_freqs.weight)
        rope = {"rope_type": "llama3", "rope_theta": 100000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 256}
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5,
        rope_parameters=rope, tie_word_embeddings=tied, initializer_range=0.08,
        bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    structure_norms(model)
    model.save_pretrained(str(out), safe_serialization=True)


# ---- MiniCPM (numpy + safetensors) --------------------------------------------------------
def minicpm_weights(rng: np.random.Generator, hidden: int, n_layer: int, n_head: int, n_kv: int,
                    ffn: int, vocab: int, tied: bool) -> dict[str, np.ndarray]:
    hd = hidden // n_head

    def lin(rows, cols, std=0.05):
        return (std * rng.standard_normal((rows, cols))).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)

    w = {"model.embed_tokens.weight": lin(vocab, hidden, 0.1)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm()
        w[p + "self_attn.q_proj.weight"] = lin(n_head * hd, hidden)
        w[p + "self_attn.k_proj.weight"] = lin(n_kv * hd, hidden)
        w[p + "self_attn.v_proj.weight"] = lin(n_kv * hd, hidden)
        w[p + "self_attn.o_proj.weight"] = lin(hidden, n_head * hd)
        w[p + "post_attention_layernorm.weight"] = norm()
        w[p + "mlp.gate_proj.weight"] = lin(ffn, hidden)
        w[p + "mlp.up_proj.weight"] = lin(ffn, hidden)
        w[p + "mlp.down_proj.weight"] = lin(hidden, ffn)
    w["model.norm.weight"] = norm()
    if not tied:
        w["lm_head.weight"] = lin(vocab, hidden, 0.1)
    return w


def write_minicpm(out: Path, seed: int) -> None:
    """MiniCPM-1B/2B-like: tied embeddings, muP scalars, BF16 weights in one file."""
    import torch
    from safetensors.torch import save_file

    hidden, n_layer, n_head, n_kv, ffn = 64, 2, 4, 2, 144
    _write_json(out / "config.json", {
        "architectures": ["MiniCPMForCausalLM"], "model_type": "minicpm",
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": hidden,
        "initializer_range": 0.1, "intermediate_size": ffn, "max_position_embeddings": 2048,
        "num_attention_heads": n_head, "num_hidden_layers": n_layer, "num_key_value_heads": n_kv,
        "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
        "vocab_size": VOCAB, "scale_emb": 12, "dim_model_base": 16, "scale_depth": 1.4,
        "tie_word_embeddings": True, "use_cache": True,
    })
    w = minicpm_weights(np.random.default_rng(seed), hidden, n_layer, n_head, n_kv, ffn, VOCAB, tied=True)
    save_file({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in w.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})


def minicpm4_config(hidden: int, n_layer: int, n_head: int, n_kv: int, ffn: int) -> dict:
    n_factors = hidden // n_head // 2
    long_factor = [round(float(x), 5) for x in np.geomspace(1.0, 24.0, n_factors)]
    short_factor = [round(float(x), 5) for x in np.linspace(1.0, 1.5, n_factors)]
    return {
        "architectures": ["MiniCPMForCausalLM"], "model_type": "minicpm",
        "bos_token_id": 1, "eos_token_id": [2, SPM_PIECES], "pad_token_id": 2, "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": 0.1, "intermediate_size": ffn,
        "max_position_embeddings": 16384, "num_attention_heads": n_head, "num_hidden_layers": n_layer,
        "num_key_value_heads": n_kv, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
        "rope_scaling": {"rope_type": "longrope", "long_factor": long_factor, "short_factor": short_factor,
                         "original_max_position_embeddings": 4096},
        "torch_dtype": "float16", "vocab_size": VOCAB, "scale_emb": 12, "dim_model_base": 32,
        "scale_depth": 1.4, "mup_denominator": 32, "tie_word_embeddings": False, "use_cache": True,
        "sparse_config": {"kernel_size": 32, "kernel_stride": 16, "init_blocks": 1, "block_size": 64,
                          "window_size": 2048, "topk": 64, "use_nope": False, "dense_len": 8192},
    }


def write_minicpm4(out: Path, seed: int) -> None:
    """MiniCPM4-like: LongRoPE (long != short, max_pos > original so mscale != 1),
    InfLLM v2 sparse_config, untied head, two eos ids, F16 weights in two shards."""
    from safetensors.numpy import save_file

    hidden, n_layer, n_head, n_kv, ffn = 128, 2, 4, 2, 256
    _write_json(out / "config.json", minicpm4_config(hidden, n_layer, n_head, n_kv, ffn))
    w = minicpm_weights(np.random.default_rng(seed), hidden, n_layer, n_head, n_kv, ffn, VOCAB, tied=False)
    names = list(w)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for fname, part in shards.items():
        save_file({k: w[k].astype(np.float16) for k in part}, str(out / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    total = sum(v.size * 2 for v in w.values())
    _write_json(out / "model.safetensors.index.json",
                {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})


BITCPM_GROUP = 32


def write_bitcpm4(out: Path, seed: int) -> None:
    """BitCPM4-like: the MiniCPM4 model with every decoder linear fake-quantized to
    ternary values t * s, s = mean |W| per group of 32 inputs rounded to BF16 (so the
    BF16 file holds t * s exactly), as the released BitCPM4 checkpoints are stored."""
    import torch
    from safetensors.torch import save_file

    hidden, n_layer, n_head, n_kv, ffn = 128, 2, 4, 2, 256
    config = minicpm4_config(hidden, n_layer, n_head, n_kv, ffn)
    config["torch_dtype"] = "bfloat16"
    _write_json(out / "config.json", config)
    w = minicpm_weights(np.random.default_rng(seed), hidden, n_layer, n_head, n_kv, ffn, VOCAB, tied=False)
    tensors = {}
    for name, v in w.items():
        t = torch.from_numpy(v)
        if name.startswith("model.layers.") and name.endswith("proj.weight"):
            g = t.reshape(t.shape[0], -1, BITCPM_GROUP)
            s = g.abs().mean(dim=-1, keepdim=True).to(torch.bfloat16).float()
            t = ((g / s).round().clamp(-1, 1) * s).reshape(t.shape)
        tensors[name] = t.to(torch.bfloat16).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


# ---- BitNet (transformers) ----------------------------------------------------------------
def bitnet_model(vocab_size: int, tied: bool, seed: int):
    import torch
    from transformers import BitNetConfig, BitNetForCausalLM

    config = BitNetConfig(
        vocab_size=vocab_size, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, tie_word_embeddings=tied,
        initializer_range=0.08, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    model = BitNetForCausalLM(config)
    structure_norms(model)
    return model


def write_bitnet(out: Path, vocab_size: int, seed: int) -> None:
    bitnet_model(vocab_size, tied=False, seed=seed).save_pretrained(str(out), safe_serialization=True)


def write_bitnet_packed(out: Path, vocab_size: int, seed: int) -> None:
    """The release format transformers' BitLinear reads (integrations/bitnet.py): each
    decoder linear ternarized by absmean, packed four codes t + 1 to a byte along the
    output dimension (row k * out/4 + i in bits 2k of byte row i), with weight_scale =
    1 / s (BitLinear divides its output by it); everything else BF16."""
    import torch
    from safetensors.torch import save_file

    model = bitnet_model(vocab_size, tied=True, seed=seed)
    linears = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    tensors = {}
    for name, p in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        w = p.detach().float()
        if name.endswith(".weight") and name.split(".")[-2] in linears:
            iscale = 1.0 / w.abs().mean().clamp(min=1e-5)
            t = (w * iscale).round().clamp(-1, 1).to(torch.int16) + 1
            rows = t.shape[0] // 4
            packed = torch.zeros((rows, t.shape[1]), dtype=torch.int16)
            for k in range(4):
                packed |= t[k * rows:(k + 1) * rows] << (2 * k)
            tensors[name] = packed.to(torch.uint8)
            tensors[name[:-len("weight")] + "weight_scale"] = iscale.reshape(1).to(torch.bfloat16)
        else:
            tensors[name] = w.to(torch.bfloat16).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads(json.dumps(model.config.to_dict()))
    config.update({"architectures": ["BitNetForCausalLM"], "torch_dtype": "bfloat16",
                   "quantization_config": {"quant_method": "bitnet", "linear_class": "bitlinear",
                                           "quantization_mode": "offline"}})
    _write_json(out / "config.json", config)


# ---- driver -------------------------------------------------------------------------------
def make_all(out_dir: str | os.PathLike, smollm2_gguf: str | os.PathLike | None = None,
             use_smollm2: bool = False) -> dict[str, Path]:
    """Write every checkpoint above under ``out_dir``; returns name -> directory."""
    root = Path(out_dir)
    dirs = {name: root / name for name in ("llama", "llama-tied", "minicpm", "minicpm4", "bitcpm4", "bitnet",
                                           "bitnet-packed")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    lines = corpus_lines()
    for name, tied, seed in (("llama", False, 1), ("llama-tied", True, 2)):
        if use_smollm2 or smollm2_gguf:
            vocab = write_smollm2_tokenizer(dirs[name], find_smollm2_gguf(smollm2_gguf))
        else:
            vocab = write_bpe_tokenizer(dirs[name], lines)
        write_llama(dirs[name], vocab, tied, seed)
    for name, writer, seed in (("minicpm", write_minicpm, 3), ("minicpm4", write_minicpm4, 4),
                               ("bitcpm4", write_bitcpm4, 7)):
        write_spm_tokenizer(dirs[name], lines)
        writer(dirs[name], seed)
    for name, writer, seed in (("bitnet", write_bitnet, 5), ("bitnet-packed", write_bitnet_packed, 6)):
        vocab = write_bpe_tokenizer(dirs[name], lines)
        writer(dirs[name], vocab, seed)
    return dirs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--smollm2-tokenizer", nargs="?", const="", default=None, metavar="GGUF",
                    help="use the real SmolLM2 tokenizer for the llama checkpoints (GGUF path optional)")
    args = ap.parse_args(argv)
    use = args.smollm2_tokenizer is not None
    dirs = make_all(args.out_dir, smollm2_gguf=args.smollm2_tokenizer or None, use_smollm2=use)
    for name, d in dirs.items():
        print(f"{name}: {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
