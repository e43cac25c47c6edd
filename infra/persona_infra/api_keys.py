"""API key entries: the salted hashes configuration holds, and the roles they give.

Configuration never holds a key, only an entry ``name:scrypt$salt$hash`` made by
``persona keys hash``. ``salt`` is 16 random bytes per key and ``hash`` is
scrypt(key, salt, N=2**14, r=8, p=1, 32 bytes), both base64url without padding.

Roles are cumulative: ``READ_API_KEYS`` may read, ``API_KEYS`` may also write
(``POST /v1/persona``), ``ADMIN_API_KEYS`` may also use admin routes. Each entry's
role is the setting it is listed in.

The settings validate entries with this module and ``persona keys hash`` makes them;
the API verifies presented keys against them (``persona_api.key_ring``).
"""

import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum

from persona_infra import b64
from persona_infra.text import split_list

SCHEME = "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_KEY_CHARS = 16
MAX_KEY_CHARS = 256
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENTRY_FORMAT = "name:scrypt$salt$hash"
# Printable ASCII without spaces: what an HTTP header carries unchanged.
KEY_CHARS = re.compile(r"[\x21-\x7e]+")


class Role(IntEnum):
    READER = 1
    WRITER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def setting(self) -> str:
        """The environment variable whose entries have this role."""
        return ROLE_SETTINGS[self]


ROLE_SETTINGS = {
    Role.READER: "READ_API_KEYS",
    Role.WRITER: "API_KEYS",
    Role.ADMIN: "ADMIN_API_KEYS",
}


class KeyFormatError(ValueError):
    """A malformed key entry, or a key the CLI refuses to hash; never contains key material."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    name: str
    role: Role
    salt: bytes
    digest: bytes = b""

    def __repr__(self) -> str:  # never print the salt or the hash
        return f"KeyEntry(name={self.name!r}, role={self.role.label})"


def _unb64(text: str) -> bytes:
    """Strict: the alphabet is checked first (``base64`` silently skips stray characters)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return b64.decode(text)


def derive(key: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        key.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES
    )


def generate_key() -> str:
    """A new random key: 256 bits, URL- and header-safe."""
    return secrets.token_urlsafe(32)


def well_formed(key: str) -> bool:
    return MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS and KEY_CHARS.fullmatch(key) is not None


def check_key(key: str) -> None:
    if not well_formed(key):
        raise KeyFormatError(
            f"a key must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} printable ASCII characters "
            "without spaces; use --generate for a random one"
        )


def hash_key(key: str, salt: bytes | None = None) -> str:
    """``scrypt$salt$hash`` for ``key``, with a fresh random salt unless one is given."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return f"{SCHEME}${b64.encode(salt)}${b64.encode(derive(key, salt))}"


def make_entry(name: str, key: str) -> str:
    """The configuration entry ``name:scrypt$salt$hash`` for a key (what ``persona keys hash``
    prints)."""
    if not NAME.fullmatch(name):
        raise KeyFormatError(
            "a key name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit"
        )
    check_key(key)
    return f"{name}:{hash_key(key)}"


def parse_entries(text: str, role: Role = Role.WRITER) -> list[KeyEntry]:
    """Parse comma- or newline-separated entries; errors name the entry, never its content."""
    entries: list[KeyEntry] = []
    for position, part in enumerate(split_list(text), start=1):
        entry = _parse_entry(part, position, role)
        if any(e.name == entry.name for e in entries):
            raise KeyFormatError(f"entry {position}: the name {entry.name!r} is used twice")
        entries.append(entry)
    return entries


def _parse_entry(part: str, position: int, role: Role) -> KeyEntry:
    name, colon, rest = part.partition(":")
    fields = rest.split("$")
    if not colon or len(fields) != 3:
        # Do not echo it: a malformed entry may be a plaintext key pasted by mistake.
        raise KeyFormatError(
            f"entry {position} is not `{ENTRY_FORMAT}`; make entries with `persona keys hash` "
            "and never put a plaintext key in configuration"
        )
    if not NAME.fullmatch(name):
        raise KeyFormatError(
            f"entry {position}: the name must be 1 to 64 letters, digits, '.', '_' or '-'"
        )
    scheme, salt_text, digest_text = fields
    if scheme != SCHEME:
        raise KeyFormatError(f"entry {position} ({name}): unknown scheme; expected `{SCHEME}`")
    try:
        salt, digest = _unb64(salt_text), _unb64(digest_text)
    except (ValueError, binascii.Error):
        raise KeyFormatError(
            f"entry {position} ({name}): salt and hash must be base64url"
        ) from None
    if len(salt) < SALT_BYTES or len(digest) != HASH_BYTES:
        raise KeyFormatError(
            f"entry {position} ({name}): expected a salt of at least {SALT_BYTES} bytes and a "
            f"{HASH_BYTES}-byte hash"
        )
    return KeyEntry(name=name, role=role, salt=salt, digest=digest)
