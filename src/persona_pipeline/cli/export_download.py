"""``persona export``: the export streamed into a file, with a progress bar.

The bytes go to ``<output>.part`` and the file takes its name only once the API sent
the whole export, so an interrupted download never leaves a file that looks complete.
Rows are counted as they arrive (JSON Lines: one per line; CSV: one per ``\\r\\n``
record end, the header aside); Parquet shows bytes. The bar has a total when it is
known cheaply: a request's stored count, or the statistics' total with no filter.
"""

import sys
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from persona_producers.api_client import ApiError, PersonaApi

ROW_ENDS = {"jsonl": b"\n", "csv": b"\r\n"}
HEADER_ROWS = {"jsonl": 0, "csv": 1}


class RowCounter:
    """Counts record ends across chunks (one may be split between two)."""

    def __init__(self, end: bytes, header_rows: int) -> None:
        self._end = end
        self._tail = b""
        self.rows = -header_rows

    def feed(self, chunk: bytes) -> int:
        joined = self._tail + chunk
        self.rows += joined.count(self._end) - self._tail.count(self._end)
        self._tail = joined[-(len(self._end) - 1) :] if len(self._end) > 1 else b""
        return max(self.rows, 0)


async def expected_rows(client: PersonaApi, params: dict[str, str]) -> int | None:
    """How many personas the export will hold, when one small read tells."""
    filters = set(params) - {"format", "limit"}
    if filters == {"request_id"}:
        found = (await client.get(f"/v1/requests/{params['request_id']}")).get("stored")
    elif not filters:
        found = (await client.get("/v1/persona/stats")).get("total")
    else:
        return None
    limit = int(params["limit"]) if "limit" in params else None
    return min(found, limit) if isinstance(found, int) and limit else found


async def download(
    client: PersonaApi, params: dict[str, str], output: Path | None, console: Console
) -> int | None:
    """Write the export to ``output`` (stdout when ``None``); the rows written, if counted."""
    fmt = params["format"]
    total = await expected_rows(client, params)
    part = output.with_name(output.name + ".part") if output else None
    end = ROW_ENDS.get(fmt)
    counter = RowCounter(end, HEADER_ROWS[fmt]) if end else None
    columns = (
        SpinnerColumn(),
        TextColumn("exporting {task.description}"),
        BarColumn(),
        MofNCompleteColumn() if counter else DownloadColumn(),
        TimeElapsedColumn(),
    )
    sink = part.open("wb") if part else sys.stdout.buffer
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(fmt, total=total if counter else None)
            async with client.stream("/v1/persona/export", params) as response:
                received = 0
                try:
                    async for chunk in response.aiter_bytes():
                        sink.write(chunk)
                        received += len(chunk)
                        done = counter.feed(chunk) if counter else received
                        progress.update(task, completed=done)
                except httpx.HTTPError as exc:
                    raise ApiError(
                        f"the export broke off after {received:,} bytes "
                        f"({type(exc).__name__}); nothing was kept: run it again"
                    ) from None
        if part and output:
            sink.close()
            part.replace(output)
    finally:
        if part:
            sink.close()
            part.unlink(missing_ok=True)
    return max(counter.rows, 0) if counter else None
