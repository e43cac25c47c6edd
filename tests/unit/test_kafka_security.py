"""Kafka TLS/SASL settings become the client security the broker and admin client use."""

import ssl
from pathlib import Path

import certifi
import pytest
import trustme
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from persona_infra.kafka import client_options, security
from persona_infra.settings import Settings


def settings(**env: object) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert security(settings()) is None
    assert parse_security(security(settings())) == {}


def test_tls_with_a_ca_bundle_verifies_the_broker() -> None:
    options = parse_security(
        security(settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=certifi.where()))
    )
    assert options["security_protocol"] == "SSL"
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_over_tls_carries_mechanism_and_credentials(mechanism: str) -> None:
    options = parse_security(
        security(
            settings(
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_mechanism=mechanism,
                kafka_sasl_username="svc-persona",
                kafka_sasl_password="s3cret-pass",
            )
        )
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "svc-persona",
        "s3cret-pass",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_without_tls_has_no_ssl_context() -> None:
    options = parse_security(
        security(
            settings(
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_username="u",
                kafka_sasl_password="p",
            )
        )
    )
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["ssl_context"] is None


@pytest.fixture
def client_certificate(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA file, and a client certificate and key it signed (PEM files)."""
    authority = trustme.CA()
    issued = authority.issue_cert("persona-worker@example.com")
    files = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    authority.cert_pem.write_to_path(str(files[0]))
    issued.cert_chain_pems[0].write_to_path(str(files[1]))
    issued.private_key_pem.write_to_path(str(files[2]))
    return files


def test_mutual_tls_loads_the_client_certificate(client_certificate: tuple[Path, ...]) -> None:
    ca, cert, key = client_certificate
    options = parse_security(
        security(
            settings(
                kafka_security_protocol="SSL",
                kafka_ssl_ca_file=ca,
                kafka_ssl_cert_file=cert,
                kafka_ssl_key_file=key,
            )
        )
    )
    assert options["ssl_context"].cert_store_stats()["x509_ca"] == 1  # only the given CA


def test_a_key_that_does_not_match_the_certificate_fails_at_start(
    client_certificate: tuple[Path, ...], tmp_path: Path
) -> None:
    ca, cert, _ = client_certificate
    other_key = tmp_path / "other.key"
    trustme.CA().issue_cert("someone-else").private_key_pem.write_to_path(str(other_key))
    configured = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=ca,
        kafka_ssl_cert_file=cert,
        kafka_ssl_key_file=other_key,
    )
    with pytest.raises(ssl.SSLError):
        security(configured)


def test_a_certificate_without_its_key_is_refused(client_certificate: tuple[Path, ...]) -> None:
    with pytest.raises(ValidationError, match="KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE"):
        settings(kafka_security_protocol="SSL", kafka_ssl_cert_file=client_certificate[1])


def test_sasl_without_credentials_is_refused_with_what_to_set() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")


def test_a_missing_ca_file_is_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_ssl_ca_file"):
        settings(kafka_security_protocol="SSL", kafka_ssl_ca_file="/nonexistent/ca.pem")


def test_the_password_never_shows_in_the_settings_repr() -> None:
    configured = settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="hunter2"
    )
    assert "hunter2" not in repr(configured)


def test_plain_clients_get_the_same_security_as_the_broker() -> None:
    """The topic admin client and `persona request --wait`'s consumer connect like the
    broker does (TLS, SASL), not in plaintext."""
    configured = settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="p"
    )
    options = client_options(configured)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_username"] == "u"
    assert options["bootstrap_servers"] == configured.kafka_bootstrap_servers
    assert client_options(settings()).get("security_protocol") is None
