"""Unpadded base64url (RFC 4648 section 5), as JWTs use it: safe in URLs, headers and env vars.

Shared by pagination cursors and API-key hashes."""

import base64


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """Raises ``binascii.Error`` (a ``ValueError``) for text that is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
