"""Settings: zero-config defaults for the embedded stack, and clear refusals of bad config."""

import pytest
from pydantic import ValidationError

from persona_pipeline.core.settings import GeneratorChoice, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "GENERATOR", "ENVIRONMENT", "CURSOR_SECRET", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_target_the_embedded_stack() -> None:
    settings = Settings(_env_file=None)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.mongodb_uri.get_secret_value() == "mongodb://127.0.0.1:27017"
    assert settings.api_port == 8080
    assert settings.active_generator is GeneratorChoice.OFFLINE
    assert not settings.json_logs


def test_an_api_key_selects_openai_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    settings = Settings(_env_file=None)
    assert settings.active_generator is GeneratorChoice.OPENAI
    assert "sk-secret-value" not in repr(settings)
    assert "sk-secret-value" not in str(settings.model_dump())


def test_secrets_can_come_from_files(tmp_path: pytest.TempPathFactory) -> None:
    secrets = tmp_path / "secrets"  # type: ignore[operator]
    secrets.mkdir()
    (secrets / "openai_api_key").write_text("sk-from-file")
    settings = Settings(_env_file=None, _secrets_dir=secrets)
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-from-file"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GENERATOR": "openai"}, "OPENAI_API_KEY"),
        ({"ENVIRONMENT": "production"}, "CURSOR_SECRET"),
        ({"ENVIRONMENT": "production", "CURSOR_SECRET": ""}, "at least 32 characters"),
        ({"ENVIRONMENT": "production", "CURSOR_SECRET": "short-secret"}, "at least 32"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "PLAINTEXT"),
        ({"API_PORT": "70000"}, "less than or equal"),
        ({"GENERATION_CONCURRENCY": "0"}, "greater than or equal"),
        ({"KAFKA_TOPIC_PREFIX": "bad prefix!"}, "pattern"),
    ],
)
def test_bad_configuration_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)


def test_production_logs_json() -> None:
    settings = Settings(_env_file=None, environment="production", cursor_secret="x" * 32)
    assert settings.json_logs
