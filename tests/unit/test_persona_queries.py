"""The API's persona reads as pure logic: filters become MongoDB queries of typed values on
indexed fields, and page cursors are signed and bound to their query."""

import uuid

import pytest

from persona_api.cursor import CursorCodec, InvalidCursorError, fingerprint
from persona_api.persona_queries import PersonaFilter
from persona_infra.text import fold, terms


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
