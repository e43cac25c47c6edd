"""A persona as MongoDB stores it: the mapping both ways, the folded keys and terms the
filters and the search read, the sort keys, and the statistics' age buckets."""

import uuid
from datetime import UTC, datetime

import pytest

from persona_contracts import Location
from persona_infra.documents import (
    from_document,
    moment_of,
    sort_key,
    time_bound,
    time_key,
    to_document,
)
from persona_infra.stats_document import age_bucket
from persona_infra.text import fold, terms
from tests.support.factories import make_persona


def test_fold_and_terms_are_case_and_accent_insensitive() -> None:
    assert fold("  Zoë MÜLLER ") == "zoe muller"
    assert terms("The São Paulo nurse, and the NURSE!") == ["sao", "paulo", "nurse"]
    assert terms("a I") == []


def test_document_mapping_round_trips_and_derives_read_fields() -> None:
    persona = make_persona(
        3, location=Location(city="Zürich", country="Switzerland", country_code="CH")
    )
    doc = to_document(persona)
    assert doc["_id"] == persona.id
    assert doc["keys"]["country"] == ["switzerland", "ch"]
    assert {"zurich", "switzerland", "nurse", "cycling"} <= set(doc["search_terms"])
    assert doc["sort_key"] == sort_key(persona)
    assert from_document(doc) == persona


def test_sort_keys_order_by_time_then_id() -> None:
    rid = uuid.uuid4()
    keys = [sort_key(make_persona(i, rid)) for i in (0, 1, 2, 10)]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(16, "16-24"), (24, "16-24"), (25, "25-34"), (64, "55-64"), (65, "65+"), (100, "65+")],
)
def test_age_buckets(age: int, bucket: str) -> None:
    assert age_bucket(age) == bucket


@pytest.mark.parametrize("year", [1, 626, 999, 1000, 2026, 9999])
def test_time_keys_are_fixed_width_so_text_order_is_time_order(year: int) -> None:
    """A ``created_before`` of year 626 is below every persona, not above (an unpadded
    year once sorted after 2026) and reads back as the moment it was."""
    moment = datetime(year, 8, 16, 10, 46, 22, 5, tzinfo=UTC)
    key = time_key(moment)
    assert len(key) == len(time_key(datetime(2026, 1, 1, tzinfo=UTC)))
    assert (key < time_key(datetime(2026, 1, 1, tzinfo=UTC))) == (year < 2026)
    assert moment_of(time_bound(moment, end=True)) == moment
