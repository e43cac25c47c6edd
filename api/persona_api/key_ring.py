"""Verifying presented API keys against the configured entries: the roles a request acts as.

The entries' format and hashing are ``persona_infra.api_keys`` (the settings validate
them and ``persona keys hash`` makes them); this is the API's side: a key is verified
once per process off the event loop, and a flood of unknown keys cannot hold up a
valid one.
"""

import asyncio
import hashlib
import hmac
import secrets
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from persona_infra.api_keys import KeyEntry, Role, derive, parse_entries, well_formed

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


class InsecureConfigurationError(RuntimeError):
    """The API refuses to start: its security settings are missing or contradictory."""


class VerificationBusyError(RuntimeError):
    """Too many unknown keys of this client (or in all) are being verified; retry shortly."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a key's name and role, or ``None`` when no key was checked."""

    name: str | None
    role: Role


OPEN = Principal(name=None, role=Role.ADMIN)  # no key configured: the dev stack runs open


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
