"""The web console at ``/ui``: one page and its assets, served by the API itself.

The page is static; everything it shows it reads from the public API with the caller's
key, so it needs no route or permission of its own and stays public like ``/docs``. Its
assets are the console's own scripts and styles plus Chart.js, which ``make install``
(``scripts/console-assets.sh``) installs from the npm registry by its lockfile into
``vendor/``: nothing is loaded from a CDN, so the console works offline. The page's CSP
allows scripts, styles and connections to the API's own origin only, and no inline script
or style at all.
"""

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from loguru import logger
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

PAGE = "/ui"
ASSETS = "/ui/assets"
CHART_SCRIPT = "vendor/chart.umd.min.js"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Revalidated on every load (a 304 while unchanged), so after an upgrade the page never
# runs with the previous version's scripts.
REVALIDATE = "no-cache"


class _RevalidatedFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", REVALIDATE)
        return response


def static_dir() -> Path:
    return Path(str(files("persona_api") / "static" / "console"))


def install_console(app: FastAPI) -> dict[str, str]:
    """Serve the page and its assets on ``app``; returns the page's path and its CSP."""
    folder = static_dir()
    if not (folder / CHART_SCRIPT).is_file():
        logger.warning(
            "the console's chart library is not installed ({} missing): its charts show "
            "tables only. Run `make install` (it runs scripts/console-assets.sh, which needs "
            "npm)",
            CHART_SCRIPT,
        )
    page = (folder / "index.html").read_text(encoding="utf-8")
    app.mount(ASSETS, _RevalidatedFiles(directory=folder), name="console-assets")

    async def serve_page(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": REVALIDATE})

    app.add_route(PAGE, serve_page, include_in_schema=False)
    return {PAGE: CSP}
