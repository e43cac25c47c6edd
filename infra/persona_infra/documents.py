"""Mapping between ``Persona`` and its MongoDB document.

The document adds three derived fields the read side needs: ``sort_key`` (a
unique, sortable cursor: creation time then id), ``keys`` (folded values for
case-insensitive filters) and ``search_terms``.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

from persona_contracts import Persona
from persona_infra.text import fold, terms_of_all

DERIVED_FIELDS = (
    "_id",
    "sort_key",
    "age_key",
    "keys",
    "search_terms",
    "minhash",
    "brief_key",
    "near_duplicates",
)

TIME_KEY_FORMAT = "%Y%m%dT%H%M%S.%f"
TIME_KEY_CHARS = len("20260101T000000.000000")


def time_key(moment: datetime) -> str:
    """Fixed-width UTC text of a moment, so string order is time order."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    # strftime does not pad a year below 1000: "626..." would sort after "2026...".
    return f"{utc.year:04d}{utc.strftime(TIME_KEY_FORMAT.removeprefix('%Y'))}"


def moment_of(key: str) -> datetime:
    """The UTC moment a ``sort_key`` (or a ``time_bound``) starts with."""
    return datetime.strptime(key[:TIME_KEY_CHARS], TIME_KEY_FORMAT).replace(tzinfo=UTC)


def time_bound(moment: datetime, end: bool = False) -> str:
    """A full-length ``sort_key`` below (or above, with ``end``) every key of ``moment``.

    Full length rather than the bare time prefix: one MongoDB-compatible server
    mis-compares prefix bounds on a descending index (measured), and a whole key
    is unambiguous everywhere."""
    return f"{time_key(moment)}|{(UUID_MAX if end else UUID_MIN)}"


UUID_MIN = "00000000-0000-0000-0000-000000000000"
UUID_MAX = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def sort_key(persona: Persona) -> str:
    # The creation time, then the id to break ties: unique and sortable.
    return f"{time_key(persona.created_at)}|{persona.id}"


def age_key(persona: Persona) -> str:
    """Unique and sortable by age, then creation time: keyset pages when sorting by age."""
    return f"{persona.age:03d}|{sort_key(persona)}"


PUBLIC_PROJECTION = dict.fromkeys((*Persona.model_fields, "sort_key", "age_key"), 1)
"""The persona and its cursor keys, never the worker-side fields (``minhash``, ...).

Named field by field: the embedded database applies an exclusion projection at about
twice the cost of reading whole documents (measured), an inclusion one at none."""


def brief_key(brief: str) -> str:
    """Groups personas of one brief for near-duplicate checks, whatever its spacing or case."""
    return hashlib.sha256(" ".join(fold(brief).split()).encode()).hexdigest()[:24]


def to_document(persona: Persona, **extra: Any) -> dict[str, Any]:
    """The stored form; ``extra`` carries worker-side fields such as ``minhash``."""
    doc = persona.model_dump(mode="python") | extra
    doc["_id"] = persona.id
    doc["sort_key"] = sort_key(persona)
    country_keys = [fold(persona.location.country)]
    if persona.location.country_code:
        country_keys.append(persona.location.country_code.lower())
    doc["age_key"] = age_key(persona)
    doc["keys"] = {
        "country": country_keys,
        "city": fold(persona.location.city),
        "occupation": fold(persona.occupation),
        "tags": sorted({fold(t) for t in persona.tags}),
        "interests": sorted({fold(i) for i in persona.interests}),
    }
    doc["search_terms"] = terms_of_all(
        [
            persona.name,
            persona.occupation,
            persona.location.city,
            persona.location.country,
            *persona.interests,
            persona.bio,
        ]
    )
    return doc


def from_document(doc: dict[str, Any]) -> Persona:
    return Persona.model_validate({k: v for k, v in doc.items() if k not in DERIVED_FIELDS})
