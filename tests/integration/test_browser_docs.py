"""``/docs`` and ``/redoc`` render in a real browser with nothing from the internet: no
request leaves 127.0.0.1 and the pages' CSP blocks nothing they need."""

import httpx
import pytest

from tests.support.browser import browsing, launched

pytestmark = pytest.mark.integration

# ReDoc's sidebar credit always shows Redocly's logo from their CDN (no option turns it
# off); the CSP blocks it before any request is made and the image hides itself.
REDOC_CREDIT = "https://cdn.redoc.ly/redoc/logo-mini.svg"


async def test_swagger_ui_and_redoc_render_offline(api: httpx.AsyncClient) -> None:
    base = str(api.base_url).rstrip("/")
    async with launched() as browser:
        async with browsing(browser) as swagger:
            await swagger.page.goto(f"{base}/docs")
            await swagger.page.wait_for_selector(".opblock-summary", timeout=20_000)
            operations = await swagger.page.locator(".opblock-summary").count()
            await swagger.page.get_by_text("/v1/persona/export").first.wait_for()
            await swagger.screenshot("docs-swagger")
        async with browsing(browser) as redoc:
            await redoc.page.goto(f"{base}/redoc")
            heading = redoc.page.get_by_role("heading", name="Export personas")
            await heading.first.wait_for(timeout=20_000)
            await redoc.screenshot("docs-redoc")
    assert operations >= 10
    for seen in (swagger, redoc):
        assert seen.off_host == []
        assert [error for error in seen.errors if REDOC_CREDIT not in error] == []
