"""A small client of the persona API for the command line: a request's status and
cancelling it, and the reads (pages, one persona, statistics, an export's stream).

Errors are ``ApiError`` with a message that says what to do next (start the API, send
a key with the right role, fix a parameter), never a traceback.
"""

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from persona_contracts import RequestStatus

API_KEY_HEADER = "X-API-Key"
EXPORT_TIMEOUT_S = 60.0
"""Longest pause between two chunks of an export (the first may wait for a slow filter)."""


class ApiError(RuntimeError):
    """The API refused the call or could not be reached; the message says what to do."""


@dataclass(frozen=True, slots=True)
class PersonaApi:
    base_url: str
    api_key: str | None = None
    timeout_s: float = 10.0

    async def status(self, request_id: uuid.UUID) -> RequestStatus:
        return RequestStatus.model_validate(await self.get(f"/v1/requests/{request_id}"))

    async def cancel(self, request_id: uuid.UUID) -> RequestStatus:
        """Stop the request: shards and personas not started yet are not generated."""
        path = f"/v1/requests/{request_id}/cancel"
        return RequestStatus.model_validate(await self._call("POST", path, {}))

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The JSON body of a read."""
        return await self._call("GET", path, params or {})

    @asynccontextmanager
    async def stream(self, path: str, params: Mapping[str, str]) -> AsyncIterator[httpx.Response]:
        """A read whose body is consumed as it arrives (an export)."""
        timeout = httpx.Timeout(self.timeout_s, read=EXPORT_TIMEOUT_S)
        async with self._client(timeout) as http:
            try:
                async with http.stream("GET", path, params=params) as response:
                    if response.is_error:
                        await response.aread()
                        _raise_for(response)
                    yield response
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from None

    async def _call(self, method: str, path: str, params: Mapping[str, str]) -> Any:
        try:
            async with self._client(httpx.Timeout(self.timeout_s)) as http:
                response = await http.request(method, path, params=params)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        _raise_for(response)
        return response.json()

    def _client(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        headers = {API_KEY_HEADER: self.api_key} if self.api_key else {}
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=headers)

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError(
            f"the API at {self.base_url} did not answer ({type(exc).__name__}): start it "
            "(`persona dev` runs one) or pass --api-url"
        )


def _raise_for(response: httpx.Response) -> None:
    """An ``ApiError`` for an error answer, worded by what the caller can do about it."""
    if not response.is_error:
        return
    detail = _detail(response)
    if response.status_code == 401:
        raise ApiError(f"the API needs a key ({detail}): set PERSONA_API_KEY")
    if response.status_code == 403:
        raise ApiError(f"the API refused the key ({detail}): set PERSONA_API_KEY to one with it")
    if response.status_code == 429:
        wait = response.headers.get("retry-after", "a few")
        raise ApiError(f"too many calls: retry in {wait} s")
    raise ApiError(f"the API answered {response.status_code}: {detail}")


def _detail(response: httpx.Response) -> str:
    """The problem's ``detail`` (and its field errors), or the start of the body."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(problem, dict):
        return response.text[:500]
    errors = problem.get("errors") or []
    fields = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}"
        for e in errors
        if isinstance(e, dict)
    )
    return " ".join(part for part in (str(problem.get("detail", "")), fields) if part)[:500]
