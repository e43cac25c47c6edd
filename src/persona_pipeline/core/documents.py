"""Mapping between ``Persona`` and its MongoDB document.

The document adds three derived fields the read side needs: ``sort_key`` (a
unique, sortable cursor: creation time then id), ``keys`` (folded values for
case-insensitive filters) and ``search_terms``.
"""

import hashlib
from typing import Any

from persona_pipeline.contracts import Persona
from persona_pipeline.core.text import fold, terms_of_all

DERIVED_FIELDS = (
    "_id",
    "sort_key",
    "keys",
    "search_terms",
    "minhash",
    "brief_key",
)


def sort_key(persona: Persona) -> str:
    # Fixed-width UTC timestamp, so string order is time order; the id breaks ties.
    return f"{persona.created_at.strftime('%Y%m%dT%H%M%S.%f')}|{persona.id}"


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
    doc["keys"] = {
        "country": country_keys,
        "city": fold(persona.location.city),
        "occupation": fold(persona.occupation),
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
