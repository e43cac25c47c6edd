"""A small client of the persona API, for what a publisher asks once a request is out:
its status, and cancelling it.

Errors are ``ApiError`` with a message that says what to do next (start the API, send
a key with the writer role, check the request id), never a traceback.
"""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from persona_contracts import RequestStatus

API_KEY_HEADER = "X-API-Key"


class ApiError(RuntimeError):
    """The API refused the call or could not be reached; the message says what to do."""


@dataclass(frozen=True, slots=True)
class PersonaApi:
    base_url: str
    api_key: str | None = None
    timeout_s: float = 10.0

    async def status(self, request_id: uuid.UUID) -> RequestStatus:
        return RequestStatus.model_validate(await self._call("GET", f"/v1/requests/{request_id}"))

    async def cancel(self, request_id: uuid.UUID) -> RequestStatus:
        """Stop the request: shards and personas not started yet are not generated."""
        path = f"/v1/requests/{request_id}/cancel"
        return RequestStatus.model_validate(await self._call("POST", path))

    async def _call(self, method: str, path: str) -> Any:
        headers = {API_KEY_HEADER: self.api_key} if self.api_key else {}
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s) as http:
                response = await http.request(method, path, headers=headers)
        except httpx.TransportError as exc:
            raise ApiError(
                f"the API at {self.base_url} did not answer ({type(exc).__name__}): start it "
                "(`persona dev` runs one) or pass --api-url"
            ) from None
        if response.status_code in (401, 403):
            raise ApiError(
                f"the API refused the key ({response.status_code}): set PERSONA_API_KEY to a key "
                "with the writer role"
            )
        if response.status_code == 404:
            raise ApiError(f"no request {path.split('/')[3]}: check the request id")
        if response.status_code == 429:
            wait = response.headers.get("retry-after", "a few")
            raise ApiError(f"too many calls: retry in {wait} s")
        if response.is_error:
            raise ApiError(f"the API answered {response.status_code}: {response.text[:500]}")
        return response.json()
