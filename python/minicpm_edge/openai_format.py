"""Result dicts shaped like OpenAI's completions API, as llama-cpp-python
returns them, so code written against one works with the other."""
from __future__ import annotations

import time
import uuid
from pathlib import Path


def _base(kind: str, model_path: str) -> dict:
    prefix = "cmpl" if kind.startswith("text") else "chatcmpl"
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
            "model": Path(model_path).name}


def _usage(info: dict) -> dict:
    p, c = info.get("prompt_tokens", 0), info.get("completion_tokens", 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion_response(model_path: str, text: str, info: dict) -> dict:
    r = _base("text_completion", model_path)
    r["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": info["finish_reason"]}]
    r["usage"] = _usage(info)
    return r


def completion_chunk(model_path: str, text: str, finish_reason: str | None) -> dict:
    r = _base("text_completion", model_path)
    r["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
    return r


def chat_response(model_path: str, text: str, info: dict) -> dict:
    r = _base("chat.completion", model_path)
    r["choices"] = [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": info["finish_reason"]}]
    r["usage"] = _usage(info)
    return r


def chat_chunk(model_path: str, delta: dict, finish_reason: str | None) -> dict:
    r = _base("chat.completion.chunk", model_path)
    r["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    return r
