"""API key entries: hashing, parsing and validation in the settings, verification of a
presented key against them, and `persona keys` making them."""

import asyncio
import hmac
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from persona_api import key_ring as verification
from persona_api.app import check_security, key_ring
from persona_api.key_ring import InsecureConfigurationError, KeyRing
from persona_infra import api_keys as security
from persona_infra.api_keys import (
    KeyEntry,
    KeyFormatError,
    Role,
    hash_key,
    make_entry,
    parse_entries,
)
from persona_infra.settings import Settings
from persona_pipeline.cli.main import app as cli
from tests.support.keys import KEY, ring


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ENVIRONMENT",
        "CURSOR_SECRET",
        "API_KEYS",
        "ADMIN_API_KEYS",
        "READ_API_KEYS",
        "READS_REQUIRE_KEY",
        "CORS_ORIGINS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_each_hash_has_its_own_salt_and_only_the_key_verifies() -> None:
    first, second = make_entry("ci", KEY), make_entry("ci", KEY)
    assert first != second  # same key, different salt, different hash
    [a], [b] = parse_entries(first), parse_entries(second)
    assert a.salt != b.salt
    assert a.digest != b.digest
    assert KEY not in first
    keys = KeyRing([a])
    assert keys.match(KEY) == a
    assert keys.match(KEY + "x") is None
    assert keys.match(KEY.upper()) is None


def test_a_given_salt_reproduces_the_hash() -> None:
    salt = bytes(range(16))
    assert hash_key(KEY, salt) == hash_key(KEY, salt)
    assert hash_key(KEY, salt).startswith("scrypt$AAECAwQFBgcICQoLDA0ODw$")


def test_matching_compares_every_entry_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ring(a=(Role.WRITER, KEY), b=(Role.ADMIN, KEY + "-b"), c=(Role.READER, KEY + "-c"))
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(x: bytes, y: bytes) -> bool:
        compared.append((x, y))
        return real(x, y)

    monkeypatch.setattr(verification.hmac, "compare_digest", spy)
    found = keys.match(KEY)  # the first entry: the loop must not stop there
    assert found is not None
    assert found.name == "a"
    assert len(compared) == 3
    assert all(len(x) == len(y) == security.HASH_BYTES for x, y in compared)
    compared.clear()
    assert keys.match("not-a-configured-key") is None
    assert len(compared) == 3


async def test_verify_caches_results_and_rejects_implausible_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ring(writer=(Role.WRITER, KEY), admin=(Role.ADMIN, KEY + "-admin"))
    derivations = 0
    real_derive = security.derive

    def counting(key: str, salt: bytes) -> bytes:
        nonlocal derivations
        derivations += 1
        return real_derive(key, salt)

    monkeypatch.setattr(verification, "derive", counting)
    principal = await keys.verify(KEY)
    assert principal is not None
    assert (principal.name, principal.role) == ("writer", Role.WRITER)
    assert derivations == 2
    assert await keys.verify(KEY) == principal
    assert await keys.verify("wrong-key-of-enough-length") is None
    assert await keys.verify("wrong-key-of-enough-length") is None
    assert derivations == 4  # one scrypt per entry, per distinct key, per process
    for implausible in ["", "short", "x" * 257, "has spaces in the key!!", "non-ascii-käy-123456"]:
        assert await keys.verify(implausible) is None
    assert derivations == 4
    assert not keys.open
    assert KeyRing([]).open


async def test_failure_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification, "MAX_CACHED_FAILURES", 3)
    keys = ring(writer=(Role.WRITER, KEY))
    monkeypatch.setattr(verification, "derive", lambda key, salt: b"\0" * 32)
    await asyncio.gather(*(keys.verify(f"wrong-key-number-{i:04}") for i in range(10)))
    assert len(keys._failed) == 3


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (KEY, "is not `name:scrypt$salt$hash`"),  # a plaintext key pasted by mistake
        ("ci:" + KEY, "is not `name:scrypt$salt$hash`"),
        ("ci:scrypt$abc", "is not `name:scrypt$salt$hash`"),
        ("bad name:scrypt$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43, "the name must be"),
        ("ci:md5$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43, "unknown scheme"),
        ("ci:scrypt$not+base64!$" + "A" * 43, "must be base64url"),
        ("ci:scrypt$AAAA$" + "A" * 43, "a salt of at least 16 bytes"),
        ("ci:scrypt$AAAAAAAAAAAAAAAAAAAAAA$AAAA", "32-byte hash"),
    ],
)
def test_malformed_entries_are_a_clear_settings_error(entries: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, api_keys=entries)  # type: ignore[arg-type]
    [error] = caught.value.errors()
    assert error["loc"] == ("api_keys",)
    assert message in error["msg"]
    assert KEY not in error["msg"]  # the message never repeats what was configured


def test_entries_are_comma_or_newline_separated_and_names_unique() -> None:
    one, two = make_entry("one", KEY), make_entry("two", KEY + "-2")
    assert [e.name for e in parse_entries(f" {one} ,\n{two}\n")] == ["one", "two"]
    with pytest.raises(KeyFormatError, match="'one' is used twice"):
        parse_entries(f"{one},{one}")
    settings = Settings(_env_file=None, api_keys=one, admin_api_keys=one)  # type: ignore[arg-type]
    with pytest.raises(InsecureConfigurationError, match="must be unique"):
        key_ring(settings)


def test_keys_come_from_the_environment_or_a_secrets_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    writer, admin = make_entry("writer", KEY), make_entry("admin", KEY + "-admin")
    monkeypatch.setenv("API_KEYS", writer)
    (tmp_path / "admin_api_keys").write_text(admin + "\n")
    settings = Settings(_env_file=None, _secrets_dir=tmp_path)
    keys = key_ring(settings)
    assert [(e.name, e.role) for e in keys.entries] == [
        ("writer", Role.WRITER),
        ("admin", Role.ADMIN),
    ]
    assert writer not in repr(settings)  # entries are masked like other secrets
    assert Settings(_env_file=None, api_keys="  ").api_keys is None  # type: ignore[arg-type]


def test_production_needs_keys_in_the_api_only() -> None:
    # The worker shares Settings: a production configuration without keys stays valid...
    production = Settings(_env_file=None, environment="production", cursor_secret="x" * 32)  # type: ignore[arg-type]
    # ...and the API refuses it, naming the setting.
    with pytest.raises(InsecureConfigurationError, match="API_KEYS"):
        check_security(production, key_ring(production))
    gated = Settings(_env_file=None, reads_require_key=True)
    with pytest.raises(InsecureConfigurationError, match="READS_REQUIRE_KEY"):
        check_security(gated, key_ring(gated))
    keyed = Settings(
        _env_file=None,
        environment="production",  # type: ignore[arg-type]
        cursor_secret="x" * 32,  # type: ignore[arg-type]
        api_keys=make_entry("ci", KEY),  # type: ignore[arg-type]
    )
    check_security(keyed, key_ring(keyed))
    check_security(Settings(_env_file=None), key_ring(Settings(_env_file=None)))  # dev: open


def test_entry_repr_hides_the_hash() -> None:
    [entry] = parse_entries(make_entry("ci", KEY))
    assert repr(entry) == "KeyEntry(name='ci', role=writer)"
    assert isinstance(entry, KeyEntry)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        (
            "https://App.example.com, http://localhost:3000",
            ("https://app.example.com", "http://localhost:3000"),
        ),
        ("*", ("*",)),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
    ],
)
def test_cors_origins_are_parsed(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", value)
    assert Settings(_env_file=None).cors_origins == expected


@pytest.mark.parametrize("value", ["https://app.example.com/", "app.example.com", "*,https://a.b"])
def test_bad_cors_origins_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(_env_file=None)


def test_cli_hashes_a_key_from_stdin() -> None:
    result = CliRunner().invoke(cli, ["keys", "hash", "--name", "ci"], input=KEY + "\n")
    assert result.exit_code == 0, result.output
    entry = result.stdout.strip()
    assert entry.startswith("ci:scrypt$")
    assert KEY not in result.output
    assert KeyRing(parse_entries(entry)).match(KEY) is not None


def test_cli_generates_a_key_and_prints_it_once() -> None:
    result = CliRunner().invoke(cli, ["keys", "hash", "--name", "admin", "--generate"])
    assert result.exit_code == 0, result.output
    key = result.stderr.strip().splitlines()[-1]
    assert key not in result.stdout
    [entry] = parse_entries(result.stdout.strip(), Role.ADMIN)
    assert KeyRing([entry]).match(key) == entry


@pytest.mark.parametrize(("name", "key"), [("ci", "short"), ("bad name", KEY), ("ci", "")])
def test_cli_refuses_weak_keys_and_bad_names(name: str, key: str) -> None:
    result = CliRunner().invoke(cli, ["keys", "hash", "--name", name], input=key + "\n")
    assert result.exit_code == 2
    assert "Cannot hash this key" in result.stderr
    assert result.stdout == ""
