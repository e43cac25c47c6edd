"""``/docs`` and ``/redoc`` work without the internet: every script, style sheet and icon
they load is served by the API itself, and their CSP allows nothing else."""

import base64
import hashlib
import re

import httpx
import pytest

pytestmark = pytest.mark.integration

LOADED = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?["']([^"']+)["']""")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_a_docs_page_loads_only_what_the_api_serves(
    api: httpx.AsyncClient, path: str
) -> None:
    page = await api.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    loaded = [a or b for a, b in LOADED.findall(page.text)]
    assert all(url.startswith("/") for url in loaded), loaded
    for url in loaded:
        asset = await api.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["x-content-type-options"] == "nosniff"
    csp = page.headers["content-security-policy"]
    for script in re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "http" not in csp
    assert "'unsafe-eval'" not in csp


async def test_the_swagger_page_loads_its_bundle_and_the_spec(api: httpx.AsyncClient) -> None:
    page = (await api.get("/docs")).text
    assert "/docs-assets/swagger-ui-bundle.js" in page
    assert "/openapi.json" in page
    bundle = await api.get("/docs-assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert len(bundle.content) > 100_000
    redoc = (await api.get("/redoc")).text
    assert "/docs-assets/redoc.standalone.js" in redoc
    assert "fonts.googleapis" not in redoc
