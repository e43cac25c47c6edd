"""Run an ASGI app (the API or the worker) with uvicorn inside the test's event loop."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn

from persona_pipeline.devstack.servers import free_port


@contextlib.asynccontextmanager
async def serve(
    app: object, ready_path: str = "/ready", timeout: float = 30.0
) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(f"{base_url}{ready_path}", task, timeout)
        yield base_url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


async def _wait_ready(url: str, task: "asyncio.Task[None]", timeout: float) -> None:
    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(timeout):
            while True:
                if task.done():
                    task.result()
                    raise RuntimeError(f"server exited before {url} was ready")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).is_success:
                        return
                await asyncio.sleep(0.05)
