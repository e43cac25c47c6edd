"""Key rings for tests: named keys with their roles, hashed as configuration holds them."""

from persona_api.key_ring import KeyRing
from persona_infra.api_keys import Role, make_entry, parse_entries

KEY = "correct-horse-battery-staple"
"""A valid key for tests that need one."""


def ring(**keys: tuple[Role, str]) -> KeyRing:
    return KeyRing(
        entry
        for name, (role, key) in keys.items()
        for entry in parse_entries(make_entry(name, key), role)
    )
