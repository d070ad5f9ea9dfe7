"""Chat-templated prompts read back as turns, for people and for training data.

A run's samples keep the exact model input, which for a chat task is the template's text
(`<|im_start|>user\\n…<|im_end|>`). The review app and the preference export show the turns instead; text
that no known template produced is returned unchanged.
"""

from __future__ import annotations

import re

# One pattern per template family: (role, content) of each complete turn; an open assistant turn at the end
# (the generation prompt) has no content and is dropped.
_TEMPLATES = [
    re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>\n?", re.S),  # ChatML (SmolLM2, Qwen)
    re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.S),  # Llama 3
    re.compile(r"<start_of_turn>(\w+)\n(.*?)<end_of_turn>\n?", re.S),  # Gemma
]
_MARKERS = ("<|im_start|>", "<|start_header_id|>", "<start_of_turn>")
# What may remain around the turns: a begin-of-text token and the open assistant turn (the generation prompt).
_LEFTOVER = re.compile(r"<\|begin_of_text\|>|<bos>|<s>|(<\|im_start\|>|<\|start_header_id\|>|<start_of_turn>)"
                       r"(assistant|model)(<\|end_header_id\|>)?")


def chat_turns(text: str) -> list[tuple[str, str]] | None:
    """The turns of a chat-templated prompt, or None when the text is not one (then show it as it is)."""
    if not any(m in text for m in _MARKERS):
        return None
    for pattern in _TEMPLATES:
        turns = [(m.group(1), m.group(2).strip()) for m in pattern.finditer(text)]
        if not turns:
            continue
        if not _LEFTOVER.sub("", pattern.sub("", text)).strip():
            return turns
    return None


def turns_text(text: str) -> str:
    """A prompt for a person: each turn under its role (`user:`), or the text unchanged."""
    turns = chat_turns(text)
    if turns is None:
        return text
    return "\n\n".join(f"{role}:\n{content}" for role, content in turns)


def plain_prompt(text: str) -> str:
    """A prompt for training data: the turns' contents as the engine writes a prompt without a chat template
    (system, a blank line, the user's text), so a trainer applies its own template; other text unchanged."""
    turns = chat_turns(text)
    if turns is None:
        return text
    return "\n\n".join(content for role, content in turns if role not in ("assistant", "model"))
