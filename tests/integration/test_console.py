"""The web console at ``/ui`` in a real browser (Debian's headless Chromium, driven by
Playwright) against a live API on the real servers, with personas the worker generated.

Each view is checked against what the API answers for the same question, every request
the page makes must stay on 127.0.0.1, no console error (a CSP violation among them) may
appear, and each view leaves a screenshot in ``.artifacts/screenshots``.
"""

import asyncio
import csv
import io
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from persona_api.app import create_app
from persona_infra.api_keys import generate_key, make_entry
from persona_infra.settings import Settings
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.browser import PHONE, Browsing, browsing, launched
from tests.support.serve import serve
from tests.support.through_api import generate

pytestmark = pytest.mark.integration

BRIEFS = {"night-shift nurses in Leeds": 30, "retired teachers in Lisbon": 20}
PAGE_SIZE = 24  # the gallery's, in gallery.js


@pytest.fixture
async def generated(settings: Settings, api: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await generate(settings, api, BRIEFS)


def base_of(api: httpx.AsyncClient) -> str:
    return str(api.base_url).rstrip("/")


async def card_ids(page: Page) -> list[str]:
    ids: list[str] = await page.locator(".card").evaluate_all(
        "cards => cards.map(c => c.dataset.id)"
    )
    return ids


async def expect_cards(page: Page, expected: list[str], timeout: float = 15) -> None:
    """Wait until the page shows exactly these personas, in this order."""
    deadline = time.monotonic() + timeout
    while (shown := await card_ids(page)) != expected:
        assert time.monotonic() < deadline, f"the page shows {shown}, the API {expected}"
        await asyncio.sleep(0.1)


def ids(page: dict[str, Any]) -> list[str]:
    return [persona["id"] for persona in page["items"]]


async def chart(page: Page, name: str) -> dict[str, Any]:
    """The labels and datasets of the Chart.js chart drawn in ``#chart-<name>``."""
    selector = f"#chart-{name} canvas"
    await page.wait_for_function(
        "selector => window.Chart && Chart.getChart(document.querySelector(selector))",
        arg=selector,
        timeout=15_000,
    )
    data: dict[str, Any] = await page.evaluate(
        """selector => {
            const found = Chart.getChart(document.querySelector(selector));
            return {
                labels: found.data.labels,
                datasets: Object.fromEntries(found.data.datasets.map(d => [d.label, d.data])),
            };
        }""",
        selector,
    )
    return data


async def saved_by_browser(page: Page, button: str) -> str:
    """Press a download button; the file the browser saved."""
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name=button).click()
    saved = Path(await (await downloading.value).path())
    return await asyncio.to_thread(saved.read_text, encoding="utf-8")


def stayed_local(seen: Browsing) -> None:
    assert seen.off_host == []
    assert seen.errors == []


async def test_the_console_page_and_its_assets_are_served_offline_under_a_strict_csp(
    api: httpx.AsyncClient,
) -> None:
    page = await api.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp
    assert "'unsafe-inline'" not in csp
    assert "http" not in csp
    assets = re.findall(r'(?:src|href)="(ui/assets/[^"]+)"', page.text)
    assert "ui/assets/vendor/chart.umd.min.js" in assets
    assert page.headers["cache-control"] == "no-cache"
    for asset in assets:
        served = await api.get(f"/{asset}")
        assert served.status_code == 200, asset
        assert served.headers["content-type"].split(";")[0] in {"text/javascript", "text/css"}
        # Revalidated, so an upgrade never runs with old scripts; unchanged, it is a 304.
        assert served.headers["cache-control"] == "no-cache"
        again = await api.get(f"/{asset}", headers={"If-None-Match": served.headers["etag"]})
        assert again.status_code == 304
    assert (await api.get("/")).json()["links"]["console"] == "/ui"


async def test_the_gallery_pages_filters_searches_and_opens_a_persona_by_keyboard(
    api: httpx.AsyncClient, generated: list[dict[str, Any]]
) -> None:
    first = (await api.get("/v1/persona", params={"limit": PAGE_SIZE})).json()
    second = (
        await api.get("/v1/persona", params={"limit": PAGE_SIZE, "cursor": first["next_cursor"]})
    ).json()
    portugal = (await api.get("/v1/persona", params={"limit": PAGE_SIZE, "country": "PT"})).json()
    nurses = (await api.get("/v1/persona/search", params={"q": "nurse", "limit": PAGE_SIZE})).json()
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        await page.goto(f"{base_of(api)}/ui")
        await expect_cards(page, ids(first))
        await seen.screenshot("console-gallery", full_page=True)

        await page.get_by_role("link", name="Next →").click()
        await expect_cards(page, ids(second))
        await page.get_by_role("link", name="← Previous").click()
        await expect_cards(page, ids(first))

        await page.goto(f"{base_of(api)}/ui#/personas")
        await page.get_by_text("Filters").click()
        await page.get_by_label("Country", exact=True).fill("PT")
        await page.get_by_role("button", name="Apply").click()
        await expect_cards(page, ids(portugal))
        assert len(portugal["items"]) == BRIEFS["retired teachers in Lisbon"]
        # Screen readers hear what was found, from a live region that stays in the page.
        assert await page.locator("#announcer").text_content() == "Showing 1–20 (the last page)"
        places = await page.locator(".card .meta").all_inner_texts()
        assert all(place.endswith("Portugal") for place in places)
        await seen.screenshot("console-gallery-filtered", full_page=True)
        exported = await saved_by_browser(page, "CSV")
        assert sorted(row["id"] for row in csv.DictReader(io.StringIO(exported))) == sorted(
            ids(portugal)
        )

        await page.goto(f"{base_of(api)}/ui#/personas")
        await page.get_by_label("Search").fill("nurse")
        await page.get_by_label("Search").press("Enter")
        await expect_cards(page, ids(nurses))
        assert len(nurses["items"]) > 0

        await page.goto(f"{base_of(api)}/ui#/personas")
        await page.get_by_text("Filters").click()
        await page.get_by_label("Created before (UTC)").fill("2020-01-01T00:00")
        await page.get_by_role("button", name="Apply").click()
        await page.locator("#page-summary", has_text="No persona matches").wait_for()
        assert "created_before=2020-01-01T00%3A00Z" in page.url
        # The filter shown is the filter applied: applying again keeps it.
        assert await page.get_by_label("Created before (UTC)").input_value() == "2020-01-01T00:00"
        await page.get_by_label("Search").fill("nurse")
        await page.get_by_role("button", name="Apply").click()
        await page.locator("h1", has_text="nurse").wait_for()
        await page.locator("#page-summary", has_text="No persona matches").wait_for()
        assert "created_before=2020-01-01T00%3A00Z" in page.url

        await page.goto(f"{base_of(api)}/ui#/personas?q=nurse")
        await expect_cards(page, ids(nurses))
        await page.locator(".card h2 a").first.focus()
        await page.keyboard.press("Enter")
        shown = nurses["items"][0]
        await page.locator("h1", has_text=shown["name"]).wait_for()
        assert await page.locator(".bio").inner_text() == shown["bio"]
        assert page.url.endswith(f"#/persona/{shown['id']}")
        await seen.screenshot("console-persona", full_page=True)
    stayed_local(seen)


async def test_the_population_charts_draw_the_numbers_of_the_stats_endpoint(
    api: httpx.AsyncClient, generated: list[dict[str, Any]]
) -> None:
    stats = (await api.get("/v1/persona/stats")).json()
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        await page.goto(f"{base_of(api)}/ui#/population")
        countries = await chart(page, "countries")
        pyramid = await chart(page, "pyramid")
        occupations = await chart(page, "occupations")
        per_day = await chart(page, "per-day")
        models = await chart(page, "models")
        total = await page.locator("[data-tile=total] dd").inner_text()
        await page.wait_for_timeout(400)  # the bars' animation
        await seen.screenshot("console-population", full_page=True)
    stayed_local(seen)

    assert countries["labels"] == list(stats["by_country"])
    assert countries["datasets"]["Personas"] == list(stats["by_country"].values())
    buckets = pyramid["labels"]
    assert sorted(buckets) == sorted(stats["by_age_and_gender"])
    for gender, bars in pyramid["datasets"].items():
        sign = -1 if gender == "male" else 1  # men are drawn to the left
        expected = [sign * stats["by_age_and_gender"][b].get(gender, 0) for b in buckets]
        assert bars == expected, gender
    assert occupations["labels"] == [o["occupation"] for o in stats["top_occupations"]]
    assert occupations["datasets"]["Personas"] == [o["count"] for o in stats["top_occupations"]]
    assert sum(per_day["datasets"]["Personas"]) == stats["total"] == sum(BRIEFS.values())
    assert per_day["labels"][-1] == datetime.now(UTC).strftime("%m-%d")
    assert models["labels"] == [f"{m['generator']}/{m['model']}" for m in stats["by_model"]]
    assert models["datasets"]["Prompt tokens"] == [m["prompt_tokens"] for m in stats["by_model"]]
    assert total == str(stats["total"])


async def test_a_request_started_from_the_page_shows_its_progress_live_and_its_personas(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    """No worker runs while the request is started: the page shows it pending, then, with
    no reload, follows it to completed once a worker starts, and sets the plan it
    previewed against what was stored."""
    brief, count = "bakers in Lyon who cycle to work", 12
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        await page.goto(f"{base_of(api)}/ui#/new")
        await page.get_by_label("Brief", exact=True).fill(brief)
        await page.get_by_label("Personas").fill(str(count))
        await page.get_by_role("button", name="Preview the plan").click()
        preview = page.locator("#plan-preview")
        await preview.wait_for()
        locations = await preview.locator("table").first.locator("tbody tr").all_inner_texts()
        assert any("Lyon, France" in row for row in locations)
        await seen.screenshot("console-new-request", full_page=True)

        previewed = next(r for r in seen.requests if r.url.endswith("/v1/plans"))
        plan = await (await previewed.response()).json()  # type: ignore[union-attr]
        await page.get_by_role("button", name="Start generating").click()
        await page.wait_for_url(re.compile(r"#/requests/[0-9a-f-]{36}$"))
        request_id = page.url.rsplit("/", 1)[1]
        await page.locator("#request-state", has_text="pending").wait_for()
        assert await page.locator("#request-counts").inner_text() == f"0 of {count} stored"
        await seen.screenshot("console-request-pending")

        async with serve(create_worker(settings).app):
            await page.locator("#request-state", has_text="completed").wait_for(timeout=60_000)
            await page.locator("#chart-plan-location canvas").wait_for()
        location = await chart(page, "plan-location")
        assert await page.locator("#request-counts").inner_text() == f"{count} of {count} stored"
        await expect_cards(
            page, ids((await api.get(f"/v1/persona?request_id={request_id}")).json())
        )
        await page.wait_for_timeout(400)
        await seen.screenshot("console-request", full_page=True)
    stayed_local(seen)

    posted = [r for r in seen.requests if r.method == "POST" and r.url.endswith("/v1/persona")]
    assert len(posted) == 1
    assert posted[0].headers.get("idempotency-key")
    assert posted[0].post_data_json["audience"] == plan["plan"]  # drawn from the plan previewed
    population = (await api.get(f"/v1/requests/{request_id}/population")).json()
    planned = next(d for d in population["plan"] if d["dimension"] == "location")
    assert location["labels"] == [o["label"] for o in planned["options"]]
    assert location["datasets"]["Planned"] == [o["planned"] for o in planned["options"]]
    assert location["datasets"]["Stored"] == [o["stored"] for o in planned["options"]]
    assert sum(location["datasets"]["Stored"]) == count


async def test_reads_that_need_a_key_ask_for_one_and_keep_it_out_of_every_url(
    settings: Settings, generated: list[dict[str, Any]]
) -> None:
    reader = generate_key()
    secured = derive(settings, reads_require_key=True, read_api_keys=make_entry("console", reader))
    async with (
        serve(create_app(secured)) as url,
        launched() as browser,
        browsing(browser) as seen,
    ):
        page = seen.page
        await page.goto(f"{url}/ui")
        await page.get_by_role("button", name="Enter an API key").click()
        await page.get_by_label("Key", exact=True).fill(reader)
        await page.get_by_role("button", name="Use this key").click()
        await page.locator(".card").first.wait_for()
        assert await page.locator(".card").count() == PAGE_SIZE
        await page.reload()  # kept for the tab's session
        await page.locator(".card").first.wait_for()
        stored = await page.evaluate("Object.entries(sessionStorage)")
        exported = await saved_by_browser(page, "JSON Lines")  # through fetch, with the key
        await seen.screenshot("console-key")
    assert [name for name, value in stored if reader in value] == ["persona-console.api-key"]
    assert len(exported.splitlines()) == sum(BRIEFS.values())
    assert all(reader not in request.url for request in seen.requests)
    api_calls = [r for r in seen.requests if "/v1/" in r.url]
    assert api_calls
    assert all(r.headers.get("x-api-key") == reader for r in api_calls[1:])
    assert seen.off_host == []
    # The first call went out without a key and was refused: that 401 is the only error.
    assert len(seen.errors) == 1
    assert "401" in seen.errors[0]


async def test_every_view_fits_a_phone_screen(
    api: httpx.AsyncClient, generated: list[dict[str, Any]]
) -> None:
    request = generated[0]
    persona = (await api.get("/v1/persona", params={"limit": 1})).json()["items"][0]
    views = {
        "personas": ("personas", ".card"),
        "persona": (f"persona/{persona['id']}", ".bio"),
        "population": ("population", "#chart-countries canvas"),
        "new": ("new", "form"),
        "request": (f"requests/{request['request_id']}", "#chart-plan-location canvas"),
    }
    overflow = {}
    async with launched() as browser, browsing(browser, PHONE) as seen:
        page = seen.page
        for name, (view, ready) in views.items():
            await page.goto(f"{base_of(api)}/ui#/{view}")
            await page.locator(ready).first.wait_for()
            await page.wait_for_timeout(400)
            overflow[name] = await page.evaluate(
                "document.documentElement.scrollWidth - innerWidth"
            )
            await seen.screenshot(f"console-phone-{name}", full_page=True)
    assert overflow == dict.fromkeys(views, 0)
    stayed_local(seen)


async def test_a_request_is_cancelled_by_keyboard_from_its_page(api: httpx.AsyncClient) -> None:
    """No worker runs, so the request waits; the Cancel button keeps the focus while the
    page polls, and Enter on it ends the request cancelled."""
    accepted = (
        await api.post("/v1/persona", json={"brief": "dockers in Hamburg", "count": 5})
    ).json()
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        await page.goto(f"{base_of(api)}/ui#/requests/{accepted['request_id']}")
        cancel = page.get_by_role("button", name="Cancel the request")
        await cancel.focus()
        await page.wait_for_timeout(2500)  # two polls
        focused = await page.evaluate("document.activeElement.id")
        await page.keyboard.press("Enter")
        await page.locator("#request-state", has_text="cancelled").wait_for()
        await cancel.wait_for(state="hidden")  # nothing left to cancel
        await seen.screenshot("console-request-cancelled")
    assert focused == "cancel-request"
    assert (await api.get(f"/v1/requests/{accepted['request_id']}")).json()["status"] == "cancelled"
    stayed_local(seen)


async def test_a_brief_that_cannot_be_planned_shows_the_api_reason(api: httpx.AsyncClient) -> None:
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        await page.goto(f"{base_of(api)}/ui#/new")
        await page.get_by_label("Brief", exact=True).fill("teenagers in Berlin")
        await page.get_by_label("Min age").fill("40")
        await page.get_by_role("button", name="Preview the plan").click()
        alert = page.get_by_role("alert")
        await alert.wait_for()
        shown = await alert.inner_text()
    refused = await api.post(
        "/v1/plans", json={"brief": "teenagers in Berlin", "constraints": {"min_age": 40}}
    )
    assert refused.status_code == 422
    reasons = [error["msg"] for error in refused.json()["errors"]]
    assert all(reason in shown for reason in reasons)
    assert seen.off_host == []
    assert len(seen.errors) == 1  # the 422 itself


async def test_an_unknown_persona_or_request_says_so(api: httpx.AsyncClient) -> None:
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        for view in ("persona", "requests"):
            await page.goto(f"{base_of(api)}/ui#/{view}/{uuid.uuid4()}")
            await page.get_by_role("alert").filter(has_text="No ").wait_for()
    assert seen.off_host == []
    assert all("404" in error for error in seen.errors)


async def test_without_the_chart_library_the_population_is_shown_as_tables(
    api: httpx.AsyncClient, generated: list[dict[str, Any]]
) -> None:
    """An API installed without npm (no Chart.js in its assets) still shows every number."""
    stats = (await api.get("/v1/persona/stats")).json()
    async with launched() as browser, browsing(browser) as seen:
        page = seen.page
        await page.route("**/vendor/chart.umd.min.js", lambda route: route.abort())
        await page.goto(f"{base_of(api)}/ui#/population")
        countries = page.locator("#chart-countries details[open] tbody tr")
        await countries.first.wait_for()
        rows = [row.split("\t") for row in await countries.all_inner_texts()]
        canvases = await page.locator("canvas").count()
    assert canvases == 0
    assert {country: int(n) for country, n in rows} == stats["by_country"]
    assert seen.off_host == []
    assert len(seen.errors) == 1  # the script that did not load
