"""Relevance for search: personas whose *fields* match the query rank first.

Every result contains every query word somewhere (the database's ``$all`` on
``search_terms``). Ranking then counts the fields that match at least one
word, name, occupation, city, country and interests (the bio is the catch-all
and counts nothing), and breaks ties newest first. A MongoDB-compatible server
without ``$text`` cannot score, so the newest ``RANKING_WINDOW`` matches are
ranked here; results beyond the window follow, newest first. Pages walk that
order with the same opaque cursors as listing.

The window is 100: ranking costs loading every document of it, and on the embedded
database that is about a fifth of a millisecond each (measured at 100,000 personas: a
window of 200 took 52 ms before any HTTP, 100 about half). Five pages of ranked results
are more than a reader looks through before refining the query.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from persona_infra.text import terms

RANKING_WINDOW = 100
RANKED_FIELDS = {"name": 1, "occupation": 1, "location": 1, "interests": 1, "sort_key": 1}
"""What ``score`` and ``rank_position`` read: the window is fetched with these only."""
RANKED, NEWEST = "r", "n"  # cursor phases: inside the ranked window, then beyond it


def score(doc: Mapping[str, Any], words: Iterable[str]) -> int:
    """How many of the persona's fields contain at least one query word."""
    wanted = set(words)
    location = doc.get("location", {})
    fields = [
        doc.get("name", ""),
        doc.get("occupation", ""),
        location.get("city", ""),
        location.get("country", ""),
        " ".join(doc.get("interests", [])),
    ]
    return sum(1 for text in fields if wanted.intersection(terms(text)))


def rank_position(doc: Mapping[str, Any], words: Sequence[str]) -> str:
    """A string whose descending order is the ranked order: score, then ``sort_key``."""
    return f"{score(doc, words)}|{doc['sort_key']}"


def ranked(docs: list[dict[str, Any]], words: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(position, doc)`` in ranked order (best first)."""
    positioned = [(rank_position(doc, words), doc) for doc in docs]
    return sorted(positioned, key=lambda pair: pair[0], reverse=True)
