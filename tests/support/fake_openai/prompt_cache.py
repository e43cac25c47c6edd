"""OpenAI-style automatic prompt caching: a prompt sharing a long prefix with a recent one
is billed partly as cached tokens.

It lets tests and benchmarks see whether a client orders its prompt for caching
(the constant part first), which is what decides the cost of a large run.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .persona import message_texts

BLOCK_TOKENS = 128
"""OpenAI caches in steps of 128 tokens."""
CHARS_PER_TOKEN = 4


def prompt_text(body: dict[str, Any]) -> str:
    """The prompt as the cache sees it: each message's role and text, in order."""
    parts: list[str] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            text = "".join(message_texts({"messages": [message]}))
            parts.append(f"{message.get('role')}\n{text}\n")
    return "".join(parts)


class PromptCache:
    """The last ``size`` prompts seen, and how much of a new prompt they cover.

    Not thread-safe on its own: the server calls it under its lock.
    """

    def __init__(self, min_tokens: int, size: int = 256) -> None:
        self.min_tokens = min_tokens
        self._prompts: deque[str] = deque(maxlen=size)
        blocks = max(1, -(-min_tokens // BLOCK_TOKENS))
        # The shortest shared prefix worth any cached tokens: shorter ones are skipped
        # with one slice comparison instead of a prefix search.
        self._min_chars = blocks * BLOCK_TOKENS * CHARS_PER_TOKEN

    def cached_tokens(self, text: str, prompt_tokens: int) -> int:
        """The cached tokens of a prompt ``text`` (of ``prompt_tokens``), then remember it."""
        shared = self._longest_shared_prefix(text)
        self._prompts.append(text)
        tokens = min(shared // CHARS_PER_TOKEN, prompt_tokens)
        tokens -= tokens % BLOCK_TOKENS
        return tokens if tokens >= self.min_tokens else 0

    def _longest_shared_prefix(self, text: str) -> int:
        head = text[: self._min_chars]
        if len(head) < self._min_chars:
            return 0
        best = 0
        for seen in self._prompts:
            if len(seen) > best and seen.startswith(head):
                best = max(best, _common_prefix_length(text, seen))
        return best

    def clear(self) -> None:
        self._prompts.clear()


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix of ``a`` and ``b``, by bisection on slice equality.

    ``os.path.commonprefix`` walks characters in Python; slices compare in C.
    """
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
