#!/usr/bin/env python3
"""Write a llama- or bitnet-architecture GGUF with random weights at a realistic shape,
for speed measurements (speed does not depend on the weight values).

    python tools/make_random_model.py OUT.gguf [--type q4_0|q8_0|f16|w{b}g{G}[s]|t2|tl3|tq1_0|tq2_0]
        [--arch llama|bitnet] [--hidden 2048] [--ffn 8192] [--layers 16] [--heads 32] [--kv-heads 8]
        [--vocab 49152] [--output-tensor-type TYPE] [--tied] [--tokenizer-from MODEL.gguf] [--seed 0]

    # the BitNet-2B shape of the anchor measurements, ours and llama.cpp's ternary types
    # of the same weights (same seed):
    python tools/make_random_model.py bitnet2b-t2.gguf --arch bitnet --type t2 --hidden 2560 \
        --ffn 6912 --layers 30 --heads 20 --kv-heads 5 --tied --output-tensor-type q4_0

The defaults are the "1B shape" of the project's anchor measurements (1.17 B
parameters, untied output). Block bytes are drawn directly instead of quantizing
floats, so the 1B file takes seconds: Q4_0 / Q8_0 blocks get an f16 scale from
a sane range and uniform random quants (int8 in [-127, 127] as ggml's quantizer
writes them), F16 tensors random halves of a bounded magnitude. The low-bit types
w{b}g{G} / w{b}g{G}s (docs/FORMAT.md; e.g. w2g64) get random code bytes (every bit
string is valid codes) with f16 group scales and, asymmetric, offsets that centre
the levels on zero; their token embedding and output head are Q8_0, as the
converter's policy has it. The ternary types (t2, tl3, and llama.cpp's TQ1_0 / TQ2_0
encoded by the gguf package) hold random values t * s, t uniform in {-1, 0, 1},
drawn from the same random stream, so the three files of one seed have the same
weights (TQ's binary16 block scale rounds s). --arch bitnet adds BitNet's sub-norms (llama.cpp's bitnet graph: SiLU
gate, NEOX RoPE), which llama.cpp runs too for the TQ types. Scales are set so
that each weight has a standard deviation near 1/sqrt(fan_in), which keeps
activations O(1) through the layers, so no kernel sees infinities or NaNs.

The vocabulary is a made-up byte-level BPE (gpt2 model, "gpt-2" pre-tokenizer):
three ChatML control tokens, the 256 byte symbols, then merges of printable
ASCII pairs and triples up to the requested size. With --tokenizer-from the
tokenizer.* metadata of another GGUF of the same vocabulary size is copied
instead (e.g. the default SmolLM2 model, vocab 49152).
Everything is seeded: the same command writes the same bytes.
"""
from __future__ import annotations

import argparse
import sys
from itertools import chain, product
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, GGUFWriter  # noqa: E402

from gguf import quants  # noqa: E402

from minicpm_edge.convert import ternary  # noqa: E402
from minicpm_edge.convert.errors import ConvertError  # noqa: E402
from minicpm_edge.convert.lowbit import FORMS, LowBitType  # noqa: E402
from minicpm_edge.convert.plan import add_type_metadata, lowbit_group  # noqa: E402
from minicpm_edge.convert.quantize import (OUT_TYPES, OutType, choose_type, parse_out_type,  # noqa: E402
                                          with_head_type)
from minicpm_edge.convert.writer import Planned, PlannedTensor, write_gguf  # noqa: E402

Q = GGMLQuantizationType
TYPES = ("q4_0", "q8_0", "f16", "t2", "tl3", "tq1_0", "tq2_0")   # plus every low-bit type w{b}g{G}[s]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]   # ids 0, 1, 2 as in SmolLM2


# ---- random tensor bytes -------------------------------------------------------------------
def _random_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    words = rng.bit_generator.random_raw((n + 7) // 8)
    return words.view(np.uint8)[:n]


def _block_scales(rng: np.random.Generator, n_blocks: int, quant_std: float, target_std: float) -> np.ndarray:
    """f16 scales d with d * quant_std ~ target_std, spread over [0.5, 1.5) x that."""
    d = (target_std / quant_std) * (0.5 + rng.random(n_blocks, dtype=np.float32))
    return d.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)


def random_quant(rng: np.random.Generator, shape: tuple[int, ...], qtype: GGMLQuantizationType) -> np.ndarray:
    """Valid block bytes for Q4_0 (f16 d, 32 nibbles; value (q - 8) d) or
    Q8_0 (f16 d, 32 int8; value q d) -- ggml-common.h block_q4_0 / block_q8_0."""
    block, type_size = GGML_QUANT_SIZES[qtype]
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    if cols % block:
        raise ValueError(f"row length {cols} is not a multiple of the {qtype.name} block size {block}")
    n_blocks = rows * cols // block
    data = _random_bytes(rng, n_blocks * type_size).reshape(n_blocks, type_size)
    target = 1.0 / np.sqrt(cols)
    if qtype == Q.Q4_0:
        data[:, :2] = _block_scales(rng, n_blocks, 4.61, target)   # sd of uniform 0..15 is 4.61
    elif qtype == Q.Q8_0:
        data[:, :2] = _block_scales(rng, n_blocks, 73.6, target)   # sd of uniform -127..127 is 73.6
        quants = data[:, 2:]
        quants[quants == 0x80] = 0x81                              # -128 -> -127
    else:
        raise ValueError(f"no random block writer for {qtype.name}")
    return data.reshape(-1)


def random_f16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random halves with |x| in [2^(e-1), 2^(e+1)), 2^e ~ 1/sqrt(fan_in), random sign:
    sign, one exponent bit and the mantissa come straight from random bits."""
    n = int(np.prod(shape))
    e = int(np.floor(np.log2(1.0 / np.sqrt(shape[-1])))) + 15 - 1   # biased exponent of the lower octave
    bits = _random_bytes(rng, 2 * n).view(np.uint16)
    out = (bits & np.uint16(0x83FF)) | ((np.uint16(e) + ((bits >> np.uint16(10)) & np.uint16(1))) << np.uint16(10))
    return out.astype(np.uint16).view(np.float16).reshape(shape)


def random_lowbit(rng: np.random.Generator, rows: int, cols: int, t: LowBitType) -> tuple[np.ndarray, ...]:
    """Codes, scales[, offsets] of a low-bit matrix (docs/FORMAT.md): uniform random
    code bytes (any bit string is a valid row of codes), f16 group scales d with the
    weight sd near 1/sqrt(fan_in) and, asymmetric, m = -d (2^b-1)/2 so that the
    levels d q + m are centred on zero as the symmetric ones are."""
    codes = _random_bytes(rng, rows * cols * t.bits // 8).view(np.int8).reshape(rows, cols * t.bits // 8)
    n_groups = rows * cols // t.group
    quant_sd = float(np.sqrt(((t.max_code + 1) ** 2 - 1) / 12.0))   # sd of uniform 0..2^b-1
    d = _block_scales(rng, n_groups, quant_sd, 1.0 / np.sqrt(cols)).view(np.float16).reshape(rows, -1)
    if t.symmetric:
        return codes, d
    m = (-d.astype(np.float32) * np.float32(t.max_code / 2)).astype(np.float16)
    return codes, d, m


def random_ternary(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, np.float32]:
    """t in {-1, 0, 1} (uniform) and a scale giving weights of sd ~ 1/sqrt(fan_in)."""
    t = (rng.integers(0, 3, (rows, cols), dtype=np.int8) - 1).astype(np.int8)
    return t, np.float32(1.0 / np.sqrt(cols) / np.sqrt(2.0 / 3.0))


def ternary_tensor(rng: np.random.Generator, rows: int, cols: int, choice):
    """The data of a random ternary matrix: t2's or tl3's (data, scale), or the blocks of
    llama.cpp's TQ1_0 / TQ2_0 (which round the scale to binary16)."""
    t, s = random_ternary(rng, rows, cols)
    if isinstance(choice, ternary.TernaryType):
        data = ternary.pack(t) if choice.layout == ternary.LAYOUT_T2 else ternary.pack_tl3(t)
        return data.view(np.int8), np.array([s], np.float32)
    return quants.quantize(t.astype(np.float32) * s, choice)


def random_norm(rng: np.random.Generator, n: int) -> np.ndarray:
    return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)


# ---- tokenizer -----------------------------------------------------------------------------
def byte_symbols() -> list[str]:
    """GPT-2's byte -> printable character map (bytes_to_unicode in openai/gpt-2 encoder.py)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def synthetic_vocab(n_vocab: int) -> tuple[list[str], list[int], list[str]]:
    """Tokens, token types and merges of a byte-level BPE vocabulary of n_vocab
    tokens: every merge's two parts and its result are tokens, as BPE requires."""
    symbols = byte_symbols()
    if n_vocab < len(SPECIALS) + len(symbols):
        raise ValueError(f"vocab must be at least {len(SPECIALS) + len(symbols)} (specials + 256 bytes)")
    tokens = SPECIALS + symbols
    types = [3] * len(SPECIALS) + [1] * len(symbols)    # CONTROL, NORMAL (gguf TokenType)
    merges: list[str] = []
    alphabet = [symbols[b] for b in range(ord(" "), ord("~") + 1)]  # " " is "Ġ" in byte-level form
    pairs = [a + b for a, b in product(alphabet, alphabet)]
    need = n_vocab - len(tokens)
    for left, right in chain(product(alphabet, alphabet), product(pairs, alphabet)):
        if need == 0:
            break
        tokens.append(left + right)
        types.append(1)
        merges.append(f"{left} {right}")
        need -= 1
    if need:
        raise ValueError(f"vocab {n_vocab} is larger than the synthetic vocabulary can be")
    return tokens, types, merges


def copy_tokenizer(w: GGUFWriter, source: Path, n_vocab: int) -> None:
    from gguf import GGUFReader
    reader = GGUFReader(str(source))
    fields = {k: f for k, f in reader.fields.items() if k.startswith("tokenizer.")}
    if "tokenizer.ggml.tokens" not in fields:
        raise ValueError(f"{source} has no tokenizer.ggml.tokens")
    n = len(fields["tokenizer.ggml.tokens"].contents())
    if n != n_vocab:
        raise ValueError(f"{source} has {n} tokens, the model is asked for vocab {n_vocab}")
    for key, f in fields.items():
        vtype = f.types[0]
        sub = f.types[1] if vtype == GGUFValueType.ARRAY and len(f.types) > 1 else None
        w.add_key_value(key, f.contents(), vtype, sub)


# ---- model ---------------------------------------------------------------------------------
def plan_tensors(a: argparse.Namespace, out: OutType) -> list[Planned]:
    """The model's tensors; the converter's per-tensor policy (choose_type) decides
    which matrices take the low-bit format and which Q8_0."""
    rng = np.random.default_rng(a.seed)
    hd = a.hidden // a.heads
    E, F, V = a.hidden, a.ffn, a.vocab

    head = "token_embd.weight" if a.tied else "output.weight"

    def mat(name: str, rows: int, cols: int) -> Planned:
        choice = choose_type(name, (rows, cols), out, head)
        if isinstance(choice, LowBitType):
            return lowbit_group(name, (rows, cols), choice, lambda: random_lowbit(rng, rows, cols, choice))
        if isinstance(choice, ternary.TernaryType):
            return lowbit_group(name, (rows, cols), choice, lambda: ternary_tensor(rng, rows, cols, choice))
        if choice in (Q.TQ1_0, Q.TQ2_0):
            return PlannedTensor(name, (rows, cols), choice, lambda: ternary_tensor(rng, rows, cols, choice))
        if choice == Q.F16:
            return PlannedTensor(name, (rows, cols), choice, lambda: random_f16(rng, (rows, cols)))
        return PlannedTensor(name, (rows, cols), choice, lambda: random_quant(rng, (rows, cols), choice))

    def norm(name: str, n: int = E) -> PlannedTensor:
        return PlannedTensor(name, (n,), Q.F32, lambda: random_norm(rng, n))

    out_tensors = [mat("token_embd.weight", V, E)]
    for i in range(a.layers):
        p = f"blk.{i}."
        out_tensors += [norm(p + "attn_norm.weight"),
                        mat(p + "attn_q.weight", a.heads * hd, E),
                        mat(p + "attn_k.weight", a.kv_heads * hd, E),
                        mat(p + "attn_v.weight", a.kv_heads * hd, E),
                        mat(p + "attn_output.weight", E, a.heads * hd),
                        norm(p + "ffn_norm.weight"),
                        mat(p + "ffn_gate.weight", F, E),
                        mat(p + "ffn_up.weight", F, E),
                        mat(p + "ffn_down.weight", E, F)]
        if a.arch == "bitnet":
            out_tensors += [norm(p + "attn_sub_norm.weight"), norm(p + "ffn_sub_norm.weight", F)]
    out_tensors.append(norm("output_norm.weight"))
    if not a.tied:
        out_tensors.append(mat("output.weight", V, E))
    return out_tensors


def check_shape(a: argparse.Namespace) -> None:
    for name in ("hidden", "ffn", "layers", "heads", "kv_heads", "vocab", "ctx"):
        if getattr(a, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if a.hidden % a.heads:
        raise ValueError("--hidden must be a multiple of --heads")
    if a.heads % a.kv_heads:
        raise ValueError("--heads must be a multiple of --kv-heads")
    if (a.hidden // a.heads) % 2:
        raise ValueError("the head size (hidden / heads) must be even for RoPE")
    if a.hidden % 32 or a.ffn % 32:
        raise ValueError("--hidden and --ffn must be multiples of 32 (the Q4_0 / Q8_0 block)")


def make(a: argparse.Namespace) -> Path:
    check_shape(a)
    out = with_head_type(OUT_TYPES[a.type], a.output_tensor_type)
    tensors = plan_tensors(a, out)
    n_params = sum(int(np.prod(t.shape)) for t in tensors)

    def metadata(w: GGUFWriter) -> None:
        w.add_type("model")
        w.add_name(f"random {a.arch} {n_params / 1e9:.2f}B {a.type}")
        w.add_context_length(a.ctx)
        w.add_embedding_length(a.hidden)
        w.add_block_count(a.layers)
        w.add_feed_forward_length(a.ffn)
        w.add_head_count(a.heads)
        w.add_head_count_kv(a.kv_heads)
        w.add_rope_dimension_count(a.hidden // a.heads)
        w.add_rope_freq_base(10000.0)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_vocab_size(a.vocab)
        add_type_metadata(w, out, tensors)
        w.add_quantization_version(2)
        if a.tokenizer_from:
            copy_tokenizer(w, Path(a.tokenizer_from), a.vocab)
        else:
            tokens, types, merges = synthetic_vocab(a.vocab)
            w.add_tokenizer_model("gpt2")
            w.add_tokenizer_pre("gpt-2")
            w.add_token_list(tokens)
            w.add_token_types(types)
            w.add_token_merges(merges)
            w.add_bos_token_id(1)
            w.add_eos_token_id(2)
            w.add_add_bos_token(False)

    return write_gguf(Path(a.output), a.arch, metadata, tensors, progress=not a.quiet)


def matrix_type(text: str) -> str:
    """argparse type of --type: q4_0, q8_0, f16 or a low-bit type."""
    try:
        name = parse_out_type(text).name
    except ConvertError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if name not in TYPES and OUT_TYPES[name].lowbit is None:
        raise argparse.ArgumentTypeError(f"no random writer for {name}; choose {', '.join(TYPES)} or {FORMS}")
    return name


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output", help="GGUF file to write")
    ap.add_argument("--type", default="q4_0", type=matrix_type, metavar="TYPE",
                    help=f"matrix type: {', '.join(TYPES)} or {FORMS} (default q4_0)")
    ap.add_argument("--output-tensor-type", default=None, type=matrix_type, metavar="TYPE",
                    help="type of the LM head (output.weight, or token_embd with --tied); default: "
                         "as --type for the ggml types, q8_0 for the low-bit ones")
    ap.add_argument("--arch", choices=("llama", "bitnet"), default="llama",
                    help="bitnet: BitNet b1.58's sub-norms (default llama)")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--ctx", type=int, default=4096, help="context_length in the metadata (default 4096)")
    ap.add_argument("--tied", action="store_true", help="no output.weight: the head reuses token_embd")
    ap.add_argument("--tokenizer-from", default=None, metavar="GGUF",
                    help="copy tokenizer.* metadata from this GGUF (same vocab size) instead of a synthetic one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        out = make(a)
    except ValueError as e:
        print(f"make_random_model: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
