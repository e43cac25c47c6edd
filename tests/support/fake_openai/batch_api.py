"""The HTTP side of the Files and Batch APIs: parse each call, run it on the store, answer.

Paths are taken with or without the ``/v1`` prefix, as the chat paths are.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .batches import ApiError, BatchStore
from .chat import api_key, error_response

Handler = Callable[[Request, str], Awaitable[Response]]
"""(request, the id captured from the path or "") → response."""


class FilesAndBatches:
    """``/v1/files`` and ``/v1/batches`` over a ``BatchStore`` guarded by ``lock``."""

    def __init__(self, store: BatchStore, lock: threading.RLock) -> None:
        self.store = store
        self._lock = lock
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/files"), self._upload),
            ("GET", re.compile(r"/files/([^/]+)"), self._file),
            ("GET", re.compile(r"/files/([^/]+)/content"), self._content),
            ("DELETE", re.compile(r"/files/([^/]+)"), self._delete),
            ("POST", re.compile(r"/batches"), self._create),
            ("GET", re.compile(r"/batches"), self._list),
            ("GET", re.compile(r"/batches/([^/]+)"), self._batch),
            ("POST", re.compile(r"/batches/([^/]+)/cancel"), self._cancel),
        ]

    async def route(self, request: Request) -> Response | None:
        """The answer if ``request`` is a Files or Batch API call, else ``None``."""
        path = request.url.path.rstrip("/").removeprefix("/v1")
        for method, pattern, handler in self._routes:
            if request.method == method and (match := pattern.fullmatch(path)):
                try:
                    return await handler(request, match.group(1) if match.groups() else "")
                except ApiError as error:
                    return error_response(
                        error.status_code,
                        error.message,
                        "invalid_request_error",
                        error.code,
                        param=error.param,
                    )
        return None

    # -- files ---------------------------------------------------------------

    async def _upload(self, request: Request, _: str) -> Response:
        fields = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose != "batch":
            message = f"Invalid value for purpose: {purpose!r}. This server accepts only 'batch'."
            raise ApiError(400, message, "purpose")
        if "file" not in fields:
            raise ApiError(400, "Missing required parameter: 'file'.", "file")
        filename, data = fields["file"]
        with self._lock:
            stored = self.store.add_file(data, filename or "upload.jsonl", purpose)
            return JSONResponse(stored.describe())

    async def _file(self, _: Request, file_id: str) -> Response:
        with self._lock:
            return JSONResponse(self.store.file(file_id).describe())

    async def _content(self, _: Request, file_id: str) -> Response:
        with self._lock:
            data = self.store.file(file_id).data
        return Response(data, media_type="application/octet-stream")

    async def _delete(self, _: Request, file_id: str) -> Response:
        with self._lock:
            return JSONResponse(self.store.delete_file(file_id))

    # -- batches -------------------------------------------------------------

    async def _create(self, request: Request, _: str) -> Response:
        params = await _json_object(request)
        with self._lock:
            created = self.store.create(params, api_key(request.headers), time.monotonic())
        return JSONResponse(created)

    async def _list(self, request: Request, _: str) -> Response:
        limit = _limit(request.query_params.get("limit", "20"))
        after = request.query_params.get("after")
        with self._lock:
            return JSONResponse(self.store.listing(limit, after, time.monotonic()))

    async def _batch(self, _: Request, batch_id: str) -> Response:
        with self._lock:
            return JSONResponse(self.store.get(batch_id, time.monotonic()))

    async def _cancel(self, _: Request, batch_id: str) -> Response:
        with self._lock:
            return JSONResponse(self.store.cancel(batch_id, time.monotonic()))


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ApiError(400, f"Invalid limit {text!r}: expected an integer from 1 to 100.", "limit")
    return int(text)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_FIELD = re.compile(rb'(?i)content-disposition:[^\r\n]*?\bname="([^"]*)"')
_FILENAME = re.compile(rb'(?i)content-disposition:[^\r\n]*?\bfilename="([^"]*)"')


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a ``multipart/form-data`` body: name → (filename, bytes).

    Written out because Starlette's form parser needs ``python-multipart``, which
    the project does not depend on; the SDK's uploads are simple enough.
    """
    match = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise ApiError(400, "Expected a multipart/form-data body.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break  # the closing boundary
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if (name := _FIELD.search(head)) is not None:
            filename = _FILENAME.search(head)
            decoded = filename.group(1).decode() if filename else None
            fields[name.group(1).decode()] = (decoded, data.removesuffix(b"\r\n"))
    return fields
