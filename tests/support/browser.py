"""A real browser for the tests: Debian's headless Chromium driven by Playwright.

Every request the page makes is recorded; one to any host but 127.0.0.1 is refused and
kept in ``Browsing.off_host``, so a test can assert that nothing left the machine.
Screenshots go to ``ARTIFACTS`` (``TEST_ARTIFACTS``, default ``.artifacts/screenshots``),
which CI keeps.
"""

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request, Route, ViewportSize, async_playwright

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ".artifacts/screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1"}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium not found: run `make install-test` (it installs Debian's chromium)")
    return found


DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)


@dataclass
class Browsing:
    page: Page
    off_host: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    async def screenshot(self, name: str, full_page: bool = False) -> Path:
        """Save the page as ``ARTIFACTS/<name>.png`` (Playwright makes the folder)."""
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


@asynccontextmanager
async def launched() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def browsing(browser: Browser, viewport: ViewportSize = DESKTOP) -> AsyncIterator[Browsing]:
    """A fresh context and page that refuse (and record) every request off 127.0.0.1,
    and record every request made and the page's console errors (a CSP violation among
    them)."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    seen = Browsing(page)

    async def only_local(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOCAL_HOSTS or request.url.startswith(
            ("data:", "blob:")
        ):
            await route.continue_()
        else:
            seen.off_host.append(request.url)
            await route.abort()

    await context.route("**/*", only_local)
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    page.on("request", lambda request: seen.requests.append(request))
    try:
        yield seen
    finally:
        await context.close()
