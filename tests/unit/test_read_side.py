"""Pure logic of the read side: cursors, text folding, document mapping, filters, stats."""

import uuid

import pytest

from persona_api.cursor import CursorCodec, InvalidCursorError, fingerprint
from persona_api.persona_queries import PersonaFilter
from persona_contracts import Location
from persona_infra.documents import from_document, sort_key, to_document
from persona_infra.stats_document import age_bucket
from persona_infra.text import fold, terms
from persona_worker.request_writes import final_state
from tests.support.factories import make_persona


def test_cursor_round_trips_and_rejects_tampering() -> None:
    codec = CursorCodec(b"secret")
    cursor = codec.encode("20260101T000000.000000|abc", "q1")
    assert codec.decode(cursor, "q1") == "20260101T000000.000000|abc"
    with pytest.raises(InvalidCursorError, match="different query"):
        codec.decode(cursor, "q2")
    with pytest.raises(InvalidCursorError, match="signature"):
        CursorCodec(b"other").decode(cursor, "q1")
    for bad in ["", "x", "a.b.c", "!!!.???", cursor.replace(".", ".A"), "a" * 600 + ".b"]:
        with pytest.raises(InvalidCursorError):
            codec.decode(bad, "q1")


def test_fingerprint_distinguishes_filters() -> None:
    assert fingerprint(PersonaFilter(country="de")) == fingerprint(PersonaFilter(country="de"))
    assert fingerprint(PersonaFilter(country="de")) != fingerprint(PersonaFilter(country="fr"))


def test_fold_and_terms_are_case_and_accent_insensitive() -> None:
    assert fold("  Zoë MÜLLER ") == "zoe muller"
    assert terms("The São Paulo nurse, and the NURSE!") == ["sao", "paulo", "nurse"]
    assert terms("a I") == []


@pytest.mark.parametrize(
    "hostile", ['{"$ne": null}', "$where", ".*", "(a+)+$", "[a-z]{1,1000}", "\\", "'; drop"]
)
def test_user_text_never_becomes_an_operator_or_regex(hostile: str) -> None:
    query = PersonaFilter(country=hostile, terms=tuple(terms(hostile))).to_query()
    assert query["keys.country"] == fold(hostile)  # a plain string equality, whatever it holds
    assert all(word.isalnum() for word in query.get("search_terms", {}).get("$all", []))


def test_filter_query_uses_the_indexed_fields() -> None:
    rid = uuid.uuid4()
    query = PersonaFilter(
        country="DE", occupation="Nurse", min_age=30, max_age=40, request_id=rid, terms=("berlin",)
    ).to_query()
    assert query == {
        "keys.country": "de",
        "keys.occupation": "nurse",
        "age": {"$gte": 30, "$lte": 40},
        "request_id": rid,
        "search_terms": {"$all": ["berlin"]},
    }


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


@pytest.mark.parametrize(("stored", "state"), [(5, "completed"), (3, "partial"), (0, "failed")])
def test_final_state_follows_the_stored_count(stored: int, state: str) -> None:
    assert final_state(5, stored).value == state
