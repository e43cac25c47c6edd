"""The read commands (``persona list``, ``search``, ``show``, ``stats``, ``status``,
``export``) as a user runs them: the installed ``persona`` command against a live API on
the real servers. ``--json`` must print what the API answers; tables must show it."""

import asyncio
import csv
import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from persona_api.app import create_app
from persona_api.export_formats import COLUMNS
from persona_contracts import Persona, PersonaRequested
from persona_infra.api_keys import generate_key, make_entry
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.integration.test_export import population, store
from tests.support.kafka import created_events
from tests.support.processes import PERSONA, worker_env
from tests.support.serve import serve

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


async def persona(settings: Settings, api_url: str, *args: str, **env: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        PERSONA,
        *args,
        "--api-url",
        api_url,
        env={**worker_env(settings), "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return Ran(process.returncode or 0, out.decode(), err.decode())


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
async def stored(settings: Settings) -> list[Persona]:
    personas = population(uuid.uuid4())[:60]
    await store(settings, personas)
    return personas


async def test_list_and_search_print_the_api_pages_and_follow_the_cursor(
    settings: Settings, api: httpx.AsyncClient, stored: list[Persona]
) -> None:
    url = str(api.base_url)
    listed = await persona(settings, url, "list", "--country", "DE", "--limit", "5", "--json")
    assert listed.code == 0, listed.err
    expected = (await api.get("/v1/persona", params={"country": "DE", "limit": "5"})).json()
    assert listed.json() == expected

    table = await persona(settings, url, "list", "--country", "DE", "--limit", "5")
    assert table.code == 0, table.err
    assert all(item["id"] in table.out for item in expected["items"])
    assert "Berlin, Germany" in table.out
    cursor = table.out.split("--cursor ")[1].split()[0]
    following = await persona(
        settings, url, "list", "--country", "DE", "--limit", "5", "--cursor", cursor, "--json"
    )
    second = (
        await api.get(
            "/v1/persona", params={"country": "DE", "limit": "5", "cursor": expected["next_cursor"]}
        )
    ).json()
    assert following.json()["items"] == second["items"]

    searched = await persona(settings, url, "search", "topic 3", "--min-age", "20", "--json")
    assert searched.code == 0, searched.err
    assert (
        searched.json()
        == (await api.get("/v1/persona/search", params={"q": "topic 3", "min_age": "20"})).json()
    )


async def test_show_and_stats_print_one_persona_and_the_population(
    settings: Settings, api: httpx.AsyncClient, stored: list[Persona]
) -> None:
    url, one = str(api.base_url), stored[7]
    shown = await persona(settings, url, "show", str(one.id))
    assert shown.code == 0, shown.err
    assert one.name in shown.out
    assert "Line two of persona 7." in shown.out
    as_json = await persona(settings, url, "show", str(one.id), "--json")
    assert as_json.json() == (await api.get(f"/v1/persona/{one.id}")).json()

    stats = await persona(settings, url, "stats")
    assert stats.code == 0, stats.err
    assert "60 personas" in stats.out
    assert "Germany" in stats.out
    stats_json = await persona(settings, url, "stats", "--json")
    assert stats_json.json() == (await api.get("/v1/persona/stats")).json()


async def test_a_request_s_status_and_its_export_through_the_pipeline(
    settings: Settings, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    request = PersonaRequested(brief="night-shift nurses in Leeds", count=12, seed=3)
    async with serve(create_worker(settings).app):
        await publish_requests(settings, [request])
        await created_events(settings, request.request_id, 12, distinct=True)
        await asyncio.sleep(0.3)  # the request settles after its last event
    url = str(api.base_url)
    status = await persona(settings, url, "status", str(request.request_id))
    assert status.code == 0, status.err
    assert "completed" in status.out
    assert "12 of 12" in status.out

    target = tmp_path / "leeds.csv"
    exported = await persona(
        settings,
        url,
        "export",
        "--request-id",
        str(request.request_id),
        "--format",
        "csv",
        "-o",
        str(target),
    )
    assert exported.code == 0, exported.err
    assert "exporting csv" in exported.err
    assert f"wrote 12 personas to {target}" in exported.err
    rows = list(csv.DictReader(io.StringIO(target.read_text(), newline="")))
    assert len(rows) == 12
    assert tuple(rows[0]) == COLUMNS
    assert {int(row["ordinal"]) for row in rows} == set(range(12))
    assert files_in(tmp_path) == ["leeds.csv"]


async def test_errors_say_what_to_do_and_exit_1(
    settings: Settings, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    url = str(api.base_url)
    missing = await persona(settings, url, "show", str(uuid.uuid4()))
    assert (missing.code, "404" in missing.err) == (1, True)
    bad = await persona(settings, url, "list", "--gender", "robot")
    assert bad.code == 1
    assert "gender" in bad.err
    down = await persona(settings, "http://127.0.0.1:9", "stats")
    assert down.code == 1
    assert "did not answer" in down.err
    assert "--api-url" in down.err
    target = tmp_path / "never.parquet"
    refused = await persona(settings, url, "export", "--format", "xlsx", "-o", str(target))
    assert refused.code == 1
    assert "format" in refused.err
    assert files_in(tmp_path) == []


async def test_a_key_comes_from_the_environment(settings: Settings, stored: list[Persona]) -> None:
    reader = generate_key()
    secured = derive(settings, reads_require_key=True, read_api_keys=make_entry("cli", reader))
    async with serve(create_app(secured)) as url:
        without = await persona(secured, url, "stats")
        assert without.code == 1
        assert "PERSONA_API_KEY" in without.err
        keyed = await persona(secured, url, "stats", "--json", PERSONA_API_KEY=reader)
    assert keyed.code == 0, keyed.err
    assert keyed.json()["total"] == 60  # type: ignore[index]
