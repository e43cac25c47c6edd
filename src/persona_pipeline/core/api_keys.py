"""API keys: salted hashes in configuration, constant-time verification, roles.

Configuration never holds a key, only an entry ``name:scrypt$salt$hash`` made by
``persona keys hash``. ``salt`` is 16 random bytes per key and ``hash`` is
scrypt(key, salt, N=2**14, r=8, p=1, 32 bytes), both base64url without padding.

Roles are cumulative: ``READ_API_KEYS`` may read, ``API_KEYS`` may also write
(``POST /v1/persona``), ``ADMIN_API_KEYS`` may also use admin routes. Each entry's
role is the setting it is listed in.

This module needs only the standard library and pydantic (it lives in core, not api), so
that the settings (imported by every process) can validate entries with it;
the FastAPI dependencies built on it live in ``deps.py``.
"""

import asyncio
import binascii
import hashlib
import hmac
import re
import secrets
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode

from persona_pipeline.core import b64

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
# Verification results for recently presented keys, so a key costs one scrypt per
# process rather than one per request; failures are cached too, in a bounded LRU.
MAX_CACHED_FAILURES = 1024
# Concurrent verifications (each an scrypt per entry, 16 MiB and ~50 ms apiece) in worker
# threads: a flood of random keys must not take every thread, core or the memory.
DERIVATION_CONCURRENCY = 2
# Unknown keys of one client (by IP) being verified at once, waiting or deriving: its
# further ones are refused at once (``VerificationBusyError``, a 429), so a client
# flooding random keys holds at most this many places in the FIFO queue of derivations
# and another client's key is verified after at most that many.
VERIFICATIONS_PER_CLIENT = 2
# Unknown keys being verified at once in all: a flood from many addresses is refused too.
MAX_PENDING_VERIFICATIONS = 64


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


class InsecureConfigurationError(RuntimeError):
    """The API refuses to start: its security settings are missing or contradictory."""


class VerificationBusyError(RuntimeError):
    """Too many unknown keys of this client (or in all) are being verified; retry shortly."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    name: str
    role: Role
    salt: bytes
    digest: bytes = b""

    def __repr__(self) -> str:  # never print the salt or the hash
        return f"KeyEntry(name={self.name!r}, role={self.role.label})"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a key's name and role, or ``None`` when no key was checked."""

    name: str | None
    role: Role


OPEN = Principal(name=None, role=Role.ADMIN)  # no key configured: the dev stack runs open


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


class KeyRing:
    """Every configured key entry of the process, and the verification of presented keys."""

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self.entries = tuple(entries)
        names = [e.name for e in self.entries]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise InsecureConfigurationError(
                f"API key names must be unique across {', '.join(r.setting for r in Role)}; "
                f"used more than once: {', '.join(duplicates)}"
            )
        self._pepper = secrets.token_bytes(32)
        self._found: dict[bytes, KeyEntry] = {}  # at most one per entry
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        self._derivations = asyncio.Semaphore(DERIVATION_CONCURRENCY)  # FIFO: fair to clients
        # Verifications in progress, shared by every request presenting the same key.
        self._pending: dict[bytes, asyncio.Task[KeyEntry | None]] = {}
        self._pending_by_client: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, by_role: Mapping[Role, SecretStr | None]) -> "KeyRing":
        entries: list[KeyEntry] = []
        for role, value in by_role.items():
            if value is not None:
                entries += parse_entries(value.get_secret_value(), role)
        return cls(entries)

    @property
    def open(self) -> bool:
        """No key is configured: every route is open (development only)."""
        return not self.entries

    def match(self, presented: str) -> KeyEntry | None:
        """The entry ``presented`` is the key of, comparing derived hashes in constant time.

        Every entry is tried (no early exit), so the time does not tell which one matched."""
        found: KeyEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(derive(presented, entry.salt), entry.digest) and found is None:
                found = entry
        return found

    async def verify(self, presented: str, client: str | None = None) -> Principal | None:
        """The principal of a presented key, or ``None`` if it is no configured key.

        A key not seen before is verified off the event loop. Raises
        ``VerificationBusyError`` when ``client`` (an address) already has
        ``VERIFICATIONS_PER_CLIENT`` unknown keys in verification, or the process
        ``MAX_PENDING_VERIFICATIONS``; without a client only the latter applies."""
        if not well_formed(presented):
            return None
        # The caches are keyed by an HMAC under a per-process random key, not by the key.
        token = hmac.new(self._pepper, presented.encode("utf-8"), hashlib.sha256).digest()
        entry = self._found.get(token)
        if entry is None:
            if token in self._failed:
                self._failed.move_to_end(token)
                return None
            entry = await asyncio.shield(self._verification(token, presented, client))
            if entry is None:
                return None
        return Principal(name=entry.name, role=entry.role)

    def _verification(
        self, token: bytes, presented: str, client: str | None
    ) -> "asyncio.Task[KeyEntry | None]":
        """The verification of ``presented`` in progress, started if there is none: one task
        shared by every request with this key, which a request leaving early does not cancel."""
        if (task := self._pending.get(token)) is not None:
            return task
        if len(self._pending) >= MAX_PENDING_VERIFICATIONS or (
            client is not None and self._pending_by_client[client] >= VERIFICATIONS_PER_CLIENT
        ):
            raise VerificationBusyError
        task = asyncio.create_task(self._verify_new(token, presented))
        self._pending[token] = task
        if client is not None:
            self._pending_by_client[client] += 1
        task.add_done_callback(lambda _: self._settle(token, client))
        return task

    def _settle(self, token: bytes, client: str | None) -> None:
        del self._pending[token]
        if client is not None:
            self._pending_by_client[client] -= 1
            if not self._pending_by_client[client]:
                del self._pending_by_client[client]

    async def _verify_new(self, token: bytes, presented: str) -> KeyEntry | None:
        async with self._derivations:
            entry = await asyncio.to_thread(self.match, presented)
        if entry is None:
            self._failed[token] = None
            if len(self._failed) > MAX_CACHED_FAILURES:
                self._failed.popitem(last=False)
        else:
            self._found[token] = entry
        return entry


# --- Settings field types (used by core/settings.py) ---------------------------------------


def _check_entries(value: SecretStr | None) -> SecretStr | None:
    if value is None or not value.get_secret_value().strip():
        return None
    parse_entries(value.get_secret_value())  # raises KeyFormatError, a ValueError
    return value


ApiKeyEntries = Annotated[SecretStr | None, AfterValidator(_check_entries)]
"""Comma- or newline-separated ``name:scrypt$salt$hash`` entries; empty means none."""

ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")


def split_list(text: str) -> tuple[str, ...]:
    """The non-empty items of a comma- or newline-separated setting, stripped."""
    return tuple(p.strip() for p in re.split(r"[,\n]", text) if p.strip())


def _split_commas(value: object) -> object:
    return split_list(value) if isinstance(value, str) else value


def _check_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    for origin in origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin such as https://app.example.com "
                "(scheme, host and optional port; no path, no trailing slash)"
            )
    if "*" in origins and len(origins) > 1:
        raise ValueError("`*` already allows every origin; use it alone or list origins")
    return tuple(o.lower() for o in origins)


CorsOrigins = Annotated[
    tuple[str, ...], NoDecode, BeforeValidator(_split_commas), AfterValidator(_check_origins)
]
"""Comma-separated browser origins allowed by CORS; empty turns CORS off."""
