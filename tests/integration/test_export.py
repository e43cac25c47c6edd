"""Exports through the real API and database: every format holds exactly the personas the
filters match, newest first, with the values they were stored with; the bad paths are
refused before anything streams."""

import csv
import io
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from persona_api.app import create_app
from persona_api.export_formats import COLUMNS
from persona_contracts import Location, Persona
from persona_contracts.persona import PlanCell
from persona_infra.api_keys import generate_key, make_entry
from persona_infra.documents import to_document
from persona_infra.mongo import Collections, connect
from persona_infra.settings import Settings
from persona_worker.persona_writes import PersonaWriter
from persona_worker.stats_writes import StatsCounter
from tests.conftest import derive
from tests.support.factories import make_persona
from tests.support.serve import serve

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 1, tzinfo=UTC)
BERLIN = Location(city="Berlin", country="Germany", country_code="DE", region="Berlin")
LISBON = Location(city="Lisbon", country="Portugal", country_code="PT")
CELL = PlanCell(
    location="Berlin",
    age_band="25-34",
    gender="male",
    occupation="Nurse",
    traits={"commute": "bike"},
)


def population(request_id: uuid.UUID) -> list[Persona]:
    """1,100 personas a minute apart: 500 in Berlin (with a plan cell), 600 in Lisbon, so
    a German export crosses the export's pages of 500."""
    return [
        make_persona(
            ordinal=i,
            request_id=request_id,
            location=BERLIN if i % 11 < 5 else LISBON,
            plan_cell=CELL if i % 11 < 5 else None,
            interests=["cycling", f"topic {i % 7}"],
            bio=f'Line one, "quoted".\nLine two of persona {i}.',
            created_at=START + timedelta(minutes=i),
            cost_usd=0.000125 * i,
        )
        for i in range(1100)
    ]


async def store(settings: Settings, personas: list[Persona]) -> None:
    client = connect(settings)
    collections = Collections.of(client[settings.mongodb_database])
    await PersonaWriter(collections).insert_many([to_document(p) for p in personas])
    await StatsCounter(collections).apply(personas)
    await client.close()


@pytest.fixture
async def stored(settings: Settings) -> list[Persona]:
    personas = population(uuid.uuid4())
    await store(settings, personas)
    return personas


def newest_first(personas: list[Persona]) -> list[Persona]:
    return sorted(personas, key=lambda p: (p.created_at, str(p.id)), reverse=True)


def german(personas: list[Persona]) -> list[Persona]:
    return newest_first([p for p in personas if p.location.country_code == "DE"])


async def export(api: httpx.AsyncClient, **params: str) -> httpx.Response:
    response = await api.get("/v1/persona/export", params=params)
    assert response.status_code == 200, response.text
    return response


def from_csv(row: dict[str, str]) -> Persona:
    """A CSV row back into a persona: dotted columns nest, JSON cells parse, empty is absent."""
    values: dict[str, Any] = {}
    for column, cell in row.items():
        *parents, leaf = column.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(cell) if cell[:1] in ("[", "{") else (cell or None)
    if values["plan_cell"]["location"] is None:
        values["plan_cell"] = None
    return Persona.model_validate(values)


async def test_jsonl_holds_the_filtered_personas_newest_first_as_the_api_shows_them(
    api: httpx.AsyncClient, stored: list[Persona]
) -> None:
    response = await export(api, format="jsonl", country="DE")
    lines = response.text.splitlines()
    assert [Persona.model_validate_json(line) for line in lines] == german(stored)
    first = (await api.get(f"/v1/persona/{german(stored)[0].id}")).json()
    assert json.loads(lines[0]) == first
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"].endswith('.jsonl"')


async def test_csv_has_the_documented_columns_and_round_trips(
    api: httpx.AsyncClient, stored: list[Persona]
) -> None:
    response = await export(api, format="csv", country="DE")
    reader = csv.DictReader(io.StringIO(response.text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)
    assert [from_csv(row) for row in rows] == german(stored)
    assert rows[0]["location.city"] == "Berlin"
    assert json.loads(rows[0]["plan_cell.traits"]) == {"commute": "bike"}
    assert "\n" in rows[0]["bio"]  # a newline inside a cell stays inside it


async def test_parquet_reads_back_with_the_same_values(
    api: httpx.AsyncClient, stored: list[Persona]
) -> None:
    response = await export(api, format="parquet", request_id=str(stored[0].request_id))
    table = pq.read_table(io.BytesIO(response.content))
    assert pq.ParquetFile(io.BytesIO(response.content)).num_row_groups == 3  # 500, 500, 100
    rows = table.to_pylist()
    for row in rows:
        if row["plan_cell"]:
            row["plan_cell"]["traits"] = dict(row["plan_cell"]["traits"])
    assert [Persona.model_validate(row) for row in rows] == newest_first(stored)


async def test_the_limit_and_the_list_filters_narrow_an_export(
    api: httpx.AsyncClient, stored: list[Persona]
) -> None:
    capped = await export(api, format="jsonl", limit="7", country="DE")
    assert [Persona.model_validate_json(x) for x in capped.text.splitlines()] == german(stored)[:7]
    window = await export(
        api,
        format="csv",
        created_after=(START + timedelta(minutes=100)).isoformat(),
        created_before=(START + timedelta(minutes=199)).isoformat(),
        city="lisbon",
    )
    rows = list(csv.DictReader(io.StringIO(window.text, newline="")))
    expected = [p for p in stored if 100 <= p.ordinal <= 199 and p.location.city == "Lisbon"]
    assert [row["id"] for row in rows] == [str(p.id) for p in newest_first(expected)]
    empty = await export(api, format="csv", country="JP")
    assert empty.text.splitlines() == [",".join(COLUMNS)]


async def test_the_jsonl_export_loads_with_hugging_face_datasets(
    api: httpx.AsyncClient, stored: list[Persona], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The downloaded file is a dataset as it is (the library runs offline here)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    path = tmp_path / "personas.jsonl"
    path.write_bytes((await export(api, format="jsonl", limit="50")).content)
    dataset = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path))
    newest = newest_first(stored)
    assert dataset.num_rows == 50
    assert dataset["id"] == [str(p.id) for p in newest[:50]]
    assert dataset[3]["location"]["city"] == newest[3].location.city
    assert dataset[3]["interests"] == newest[3].interests


@pytest.mark.parametrize(
    "params",
    [{"format": "xlsx"}, {"limit": "0"}, {"limit": "1000001"}, {"countri": "DE"}],
)
async def test_bad_parameters_are_a_422_before_anything_streams(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await api.get("/v1/persona/export", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_exports_are_rate_limited_per_client(settings: Settings) -> None:
    limited = derive(settings, export_rate_per_minute=0.5, export_burst=2)
    async with serve(create_app(limited)) as url, httpx.AsyncClient(base_url=url) as api:
        for _ in range(2):
            assert (await api.get("/v1/persona/export")).status_code == 200
        refused = await api.get("/v1/persona/export")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "exports" in refused.json()["detail"]


async def test_exports_need_a_reader_key_when_reads_do(
    settings: Settings, stored: list[Persona]
) -> None:
    reader = generate_key()
    secured = derive(settings, reads_require_key=True, read_api_keys=make_entry("analyst", reader))
    async with serve(create_app(secured)) as url, httpx.AsyncClient(base_url=url) as api:
        assert (await api.get("/v1/persona/export")).status_code == 401
        wrong = await api.get("/v1/persona/export", headers={"X-API-Key": generate_key()})
        assert wrong.status_code == 401
        allowed = await api.get(
            "/v1/persona/export", params={"limit": "3"}, headers={"X-API-Key": reader}
        )
    assert allowed.status_code == 200
    assert len(allowed.text.splitlines()) == 3


async def test_parquet_without_pyarrow_is_a_501_that_names_the_extra(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    response = await api.get("/v1/persona/export", params={"format": "parquet"})
    assert response.status_code == 501
    assert "persona-pipeline-api[parquet]" in response.json()["detail"]
    assert (await api.get("/v1/persona/export", params={"format": "csv"})).status_code == 200
