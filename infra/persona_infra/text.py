"""Text normalisation for filters and search.

Search runs on a precomputed multikey ``search_terms`` field instead of ``$text``
so it behaves identically on MongoDB and on MongoDB-compatible servers without
text indexes; user input is turned into plain terms and never reaches the
database as an operator or a regular expression.
"""

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MIN_TERM_CHARS = 2
MAX_TERM_CHARS = 40
MAX_QUERY_TERMS = 8
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "to",
        "was",
        "were",
        "with",
        "who",
        "he",
        "she",
        "they",
        "her",
        "his",
        "their",
        "them",
        "this",
    ]
)


def fold(value: str) -> str:
    """Case- and accent-insensitive form: ``"Zoë Müller"`` → ``"zoe muller"``."""
    if value.isascii():  # the common case, and ten times faster
        return value.casefold().strip()
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def terms(text: str) -> list[str]:
    """The searchable words of ``text``, folded, without stopwords, in order, unique."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(text)):
        if MIN_TERM_CHARS <= len(word) <= MAX_TERM_CHARS and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def terms_of_all(texts: Iterable[str]) -> list[str]:
    return terms(" ".join(texts))


def split_list(text: str) -> tuple[str, ...]:
    """The non-empty items of a comma- or newline-separated setting, stripped."""
    return tuple(p.strip() for p in re.split(r"[,\n]", text) if p.strip())
