"""Opaque, tamper-evident keyset cursors.

A cursor is the last item's ``sort_key`` plus a fingerprint of the query it
belongs to, signed with HMAC-SHA256. Clients cannot forge a position or reuse a
cursor with different filters; either gets a clear 400 instead of odd results.
"""

import base64
import binascii
import hashlib
import hmac
import json

MAX_CURSOR_CHARS = 512


class InvalidCursorError(ValueError):
    """The cursor was not issued by this API for this query."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, position: str, query_fingerprint: str) -> str:
        payload = json.dumps(
            {"p": position, "q": query_fingerprint}, separators=(",", ":")
        ).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, cursor: str, query_fingerprint: str) -> str:
        """The position inside ``cursor``; raises ``InvalidCursorError`` on any doubt."""
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise InvalidCursorError("malformed cursor")
        body, signature = cursor.split(".")
        try:
            payload, given = _unb64(body), _unb64(signature)
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
