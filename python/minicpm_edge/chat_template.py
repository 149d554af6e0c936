"""Chat templates: the Jinja program in `tokenizer.chat_template` turned into a prompt.

Rendering matches Hugging Face transformers' `apply_chat_template` (utils/chat_template_utils.py):
an immutable sandboxed Jinja environment with trim_blocks and lstrip_blocks, the loopcontrols
extension, a `tojson` filter that does not HTML-escape, and the globals `raise_exception`,
`strftime_now`, `namespace` and `dict`. Templates come from downloaded files, so they run
sandboxed and only ever see plain data.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Mapping, Sequence

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The ChatML layout (used by SmolLM2, Qwen, MiniCPM...) for files that carry no template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplateError(ValueError):
    """The chat template failed to compile or render (including raise_exception() in it)."""


def chat_template_from_metadata(md: Mapping, name: str | None = None) -> str:
    """The template stored in GGUF metadata: `tokenizer.chat_template`, or the named variant
    `tokenizer.chat_template.<name>`; ChatML when the file has none."""
    key = "tokenizer.chat_template" if name is None else f"tokenizer.chat_template.{name}"
    template = md.get(key)
    if template is None:
        if name is not None:
            raise KeyError(f"the file has no chat template named {name!r}")
        return CHATML_TEMPLATE
    if not isinstance(template, str):
        raise ChatTemplateError(f"{key} must be a string, got {type(template).__name__}")
    return template


def render_chat(template: str | None, messages: Sequence[Mapping], add_generation_prompt: bool = True,
                bos_token: str = "", eos_token: str = "", *, tools: Sequence | None = None,
                documents: Sequence | None = None, **kwargs: Any) -> str:
    """The prompt text for `messages` ([{"role": ..., "content": ...}, ...]). `template` None uses
    ChatML. Extra keyword arguments are visible to the template (e.g. enable_thinking=False)."""
    if template is None:
        template = CHATML_TEMPLATE
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts")
    chat = []
    for m in messages:
        m = _plain(m)
        if not isinstance(m, dict):
            raise TypeError(f"each message must be a dict, got {m!r}")
        # As transformers: keys whose value is None are dropped (OpenAI-style content=None), so
        # templates see a missing key rather than the text "None".
        chat.append({k: v for k, v in m.items() if v is not None})
    compiled = _compile(template)
    try:
        return compiled.render(messages=chat, tools=_plain(tools), documents=_plain(documents),
                               add_generation_prompt=bool(add_generation_prompt),
                               bos_token=bos_token, eos_token=eos_token, **_plain(kwargs))
    except ChatTemplateError:
        raise
    except Exception as e:  # jinja2 errors, and Python errors raised from inside the template
        raise ChatTemplateError(f"chat template failed: {type(e).__name__}: {e}") from e


def _plain(value: Any) -> Any:
    """Only JSON-like data reaches the sandbox; other objects become an inert placeholder."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):    # pydantic models
        return _plain(value.model_dump())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return _plain(value.item())                     # numpy scalars
    return f"<{type(value).__name__}>"


@lru_cache(maxsize=16)
def _compile(template: str):
    try:
        return _environment().from_string(template)
    except Exception as e:
        raise ChatTemplateError(f"chat template does not compile: {type(e).__name__}: {e}") from e


class _GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` (transformers' assistant-mask marker) renders its
    body unchanged; templates written for training use it."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    def raise_exception(message):
        raise ChatTemplateError(f"chat template raised: {message}")

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    class SafeNamespace(jinja2.utils.Namespace):
        """namespace() that refuses underscore names, which could reach CPython internals."""

        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for key in attrs:
                SafeNamespace._check(key)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, key, value):
            SafeNamespace._check(key)
            jinja2.utils.Namespace.__setitem__(self, key, value)

        @staticmethod
        def _check(key):
            if isinstance(key, str) and key.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"namespace attribute {key!r} is not allowed")

    class TemplateDict:
        """dict(...) and dict.fromkeys(...) without handing the template the dict type itself."""

        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols, _GenerationTag])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["namespace"] = SafeNamespace
    env.globals["dict"] = TemplateDict()
    return env
