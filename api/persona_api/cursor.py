"""Opaque, tamper-evident keyset cursors.

A cursor is the last item's ``sort_key`` plus a fingerprint of the query it
belongs to, signed with HMAC-SHA256. Clients cannot forge a position or reuse a
cursor with different filters; either gets a clear 400 instead of odd results.
"""

import binascii
import hashlib
import hmac
import json

from persona_infra import b64

MAX_CURSOR_CHARS = 512


class InvalidCursorError(ValueError):
    """The cursor was not issued by this API for this query."""


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, position: str, query_fingerprint: str) -> str:
        payload = json.dumps(
            {"p": position, "q": query_fingerprint}, separators=(",", ":")
        ).encode()
        return f"{b64.encode(payload)}.{b64.encode(self._sign(payload))}"

    def decode(self, cursor: str, query_fingerprint: str) -> str:
        """The position inside ``cursor``; raises ``InvalidCursorError`` on any doubt."""
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise InvalidCursorError("malformed cursor")
        body, signature = cursor.split(".")
        try:
            payload, given = b64.decode(body), b64.decode(signature)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursorError("malformed cursor") from exc
        if not hmac.compare_digest(given, self._sign(payload)):
            raise InvalidCursorError("cursor signature does not match")
        data = json.loads(payload)
        if data.get("q") != query_fingerprint:
            raise InvalidCursorError("cursor belongs to a different query; restart without it")
        return str(data["p"])


def fingerprint(*parts: object) -> str:
    """A short stable digest of the query's filters."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
