"""A model's chat template as training and inference both use it: loading the tokenizer, and
rendering a conversation into prompt and target pieces (what the loss is computed on).

The template must render conversations so that each prefix is a prefix of the longer rendering
(true of ChatML, Llama 3, Mistral and Qwen templates); ``render_segments`` returns None otherwise.
"""

from __future__ import annotations

from functools import lru_cache

IGNORE_INDEX = -100


@lru_cache(maxsize=4)
def load_tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def render_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]] | None:
    """Split the rendered conversation into (text, is_target) pieces; None when the template is not prefix-stable."""
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant" or i == 0:
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            return None
        segments.append((prompt[len(done):], False))
        segments.append((full[len(prompt):], True))
        done = full
    if not segments:
        return None
    whole = tokenizer.apply_chat_template(messages, tokenize=False)
    if not whole.startswith(done):
        return None
    if len(whole) > len(done):
        segments.append((whole[len(done):], False))
    return segments
