"""``/docs`` (Swagger UI) and ``/redoc`` from assets the API serves itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on an offline or locked-down
network they are blank. Here the scripts and styles come from the ``fastapi-offline``
package (installed from PyPI with the API) under ``ASSETS``, the pages are rendered once,
and the pages' CSP allows exactly their own inline scripts (by hash) and nothing off
the API's origin. The pages stay public, like ``/openapi.json``.
"""

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs-assets"
DOCS, REDIRECT, REDOC = "/docs", "/docs/oauth2-redirect", "/redoc"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


@dataclass(frozen=True, slots=True)
class DocsPages:
    """The rendered pages by path, and the CSP they are served with."""

    pages: dict[str, str]

    @property
    def csp(self) -> str:
        hashes = sorted(
            f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
            for page in self.pages.values()
            for script in INLINE_SCRIPT.findall(page)
        )
        return (
            "default-src 'none'; "
            f"script-src 'self' {' '.join(hashes)}; "
            # Both UIs set styles at run time (ReDoc injects its own style sheets).
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; "  # ReDoc searches in a worker it builds from a blob
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )


def render(app: FastAPI) -> DocsPages:
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        oauth2_redirect_url=REDIRECT,
        # No "valid" badge: it is an image from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    redoc = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    return DocsPages(
        {
            DOCS: bytes(swagger.body).decode(),
            REDIRECT: bytes(get_swagger_ui_oauth2_redirect_html().body).decode(),
            REDOC: bytes(redoc.body).decode(),
        }
    )


def install_docs(app: FastAPI) -> DocsPages:
    """Serve the pages and their assets on ``app`` (which must not serve FastAPI's own)."""
    docs = render(app)
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    for path, page in docs.pages.items():

        async def serve_page(request: Request, page: str = page) -> HTMLResponse:
            return HTMLResponse(page)

        app.add_route(path, serve_page, include_in_schema=False)
    return docs
