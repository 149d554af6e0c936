"""Chat templates rendered as transformers' apply_chat_template renders them (the oracle):
templates exercising the features real Hub templates use, and the default model's own."""
from __future__ import annotations

import gguf
import pytest

from minicpm_edge.chat_template import (CHATML_TEMPLATE, ChatTemplateError, chat_template_from_metadata,
                                        render_chat)

BOS, EOS = "<s>", "</s>"

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And \"3+3\" — in <b>bold</b>?\n\nThanks 🎉"}],
]

# Llama-2 style: bos/eos tokens, a system prompt folded into the first turn, role checks with
# raise_exception, whitespace control.
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

# Block statements on their own lines (trim_blocks / lstrip_blocks matter), tools as JSON,
# namespace, loop controls, the date global, extra keyword arguments.
RICH = """{%- set ns = namespace(turns=0) -%}
{% if tools %}
  Tools: {{ tools | tojson }}
  Pretty: {{ tools[0] | tojson(indent=2) }}
{% endif %}
Date: {{ strftime_now("%Y-%m") }}
{% for m in messages %}
    {% if m.role == 'system' %}{% continue %}{% endif %}
    {% set ns.turns = ns.turns + 1 %}
    <{{ m.role }}>{{ m.content }}</{{ m.role }}>
    {% if ns.turns >= 3 %}{% break %}{% endif %}
{% endfor %}
turns={{ ns.turns }} think={{ enable_thinking | default(true) }}
{% if add_generation_prompt %}<assistant>{% endif %}
"""

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Wetter in München",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def hf_tokenizer():
    """A transformers tokenizer that only serves as apply_chat_template's host."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0, BOS: 1, EOS: 2}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, unk_token="<unk>")


def _reference(hf_tokenizer, template, messages, add_generation_prompt, **kwargs):
    return hf_tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                            add_generation_prompt=add_generation_prompt, **kwargs)


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, LLAMA2, RICH], ids=["chatml", "llama2", "rich"])
@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=["one-turn", "four-turn"])
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_matches_transformers(hf_tokenizer, template, conversation, add_generation_prompt):
    ours = render_chat(template, conversation, add_generation_prompt=add_generation_prompt,
                       bos_token=BOS, eos_token=EOS)
    assert ours == _reference(hf_tokenizer, template, conversation, add_generation_prompt)


def test_tools_and_extra_arguments_match_transformers(hf_tokenizer):
    conversation = CONVERSATIONS[1]
    ours = render_chat(RICH, conversation, tools=TOOLS, enable_thinking=False, bos_token=BOS, eos_token=EOS)
    ref = _reference(hf_tokenizer, RICH, conversation, True, tools=TOOLS, enable_thinking=False)
    assert ours == ref
    assert "München" in ours      # tojson keeps non-ASCII text as is


def test_none_valued_keys_are_dropped_like_transformers(hf_tokenizer):
    template = ("{% for m in messages %}{{ m.role }}:{% if m.content is defined %}{{ m.content }}"
                "{% else %}(no content){% endif %}|{% endfor %}")
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]
    assert render_chat(template, conversation) == _reference(hf_tokenizer, template, conversation, True)


def test_raise_exception_and_bad_templates_are_clear_errors():
    with pytest.raises(ChatTemplateError, match="must alternate"):
        render_chat(LLAMA2, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    with pytest.raises(ChatTemplateError, match="compile"):
        render_chat("{% for m in messages %}", [{"role": "user", "content": "a"}])
    with pytest.raises(TypeError):
        render_chat(CHATML_TEMPLATE, "hello")
    with pytest.raises(TypeError):
        render_chat(CHATML_TEMPLATE, ["hello"])


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{% set ns = namespace() %}{% set ns._x = 1 %}",
    "{{ cycler.__init__.__globals__.os.popen('echo pwned').read() }}",
    "{% set x = messages.append(1) %}",
])
def test_sandbox_blocks_escapes(template):
    with pytest.raises(ChatTemplateError):
        render_chat(template, [{"role": "user", "content": "a"}])


def test_template_from_metadata():
    assert chat_template_from_metadata({}) == CHATML_TEMPLATE
    assert chat_template_from_metadata({"tokenizer.chat_template": "X"}) == "X"
    assert chat_template_from_metadata({"tokenizer.chat_template.tool_use": "T"}, name="tool_use") == "T"
    with pytest.raises(KeyError):
        chat_template_from_metadata({}, name="tool_use")
    # No template at all (None) renders ChatML.
    messages = CONVERSATIONS[0]
    assert render_chat(None, messages) == render_chat(CHATML_TEMPLATE, messages)


@pytest.mark.slow
def test_default_model_template_matches_transformers(default_model):
    from transformers import AutoTokenizer

    reader = gguf.GGUFReader(str(default_model))
    md = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}
    template = chat_template_from_metadata(md)
    assert template == md["tokenizer.chat_template"]
    hf = AutoTokenizer.from_pretrained(str(default_model.parent), gguf_file=default_model.name)
    tokens = md["tokenizer.ggml.tokens"]
    bos, eos = tokens[md["tokenizer.ggml.bos_token_id"]], tokens[md["tokenizer.ggml.eos_token_id"]]
    for conversation in CONVERSATIONS:
        for add_generation_prompt in (True, False):
            ours = render_chat(template, conversation, add_generation_prompt=add_generation_prompt,
                               bos_token=bos, eos_token=eos)
            ref = hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=add_generation_prompt)
            assert ours == ref
