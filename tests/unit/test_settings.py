"""Settings: zero-config defaults for the embedded stack, and clear refusals of bad config."""

import json

import pytest
from pydantic import ValidationError

from persona_infra.settings import GeneratorChoice, ResponseFormat, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "GENERATOR", "ENVIRONMENT", "CURSOR_SECRET", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("OPENAI_BASE_URL", "OPENAI_RESPONSE_FORMAT", "OPENAI_EXTRA_HEADERS", "PLANNER"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ENDPOINT", "DEPLOYMENT", "API_VERSION", "API_KEY"):
        monkeypatch.delenv(f"AZURE_OPENAI_{name}", raising=False)


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


# --- compatible servers: response format, Azure OpenAI, extra headers ----------------------

AZURE = {
    "AZURE_OPENAI_ENDPOINT": "https://my-resource.openai.azure.com",
    "AZURE_OPENAI_DEPLOYMENT": "personas-4o-mini",
}
GATEWAY_TOKEN = "gw-token-do-not-show-0123456789"


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_the_response_format_defaults_to_strict_structured_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).openai_response_format is ResponseFormat.JSON_SCHEMA
    settings = _set(monkeypatch, {"OPENAI_RESPONSE_FORMAT": "json_object"})
    assert settings.openai_response_format is ResponseFormat.JSON_OBJECT


def test_an_azure_key_configures_the_openai_generator_with_the_deployment_as_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _set(monkeypatch, {**AZURE, "AZURE_OPENAI_API_KEY": "azure-secret-key"})

    assert settings.active_generator is GeneratorChoice.OPENAI
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "azure-secret-key"
    assert settings.active_model == settings.llm_model == "personas-4o-mini"
    assert settings.azure_openai_api_version == "2024-10-21"
    assert "azure-secret-key" not in repr(settings)


def test_azure_falls_back_to_the_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _set(monkeypatch, {**AZURE, "OPENAI_API_KEY": "sk-shared", "PLANNER": "llm"})

    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-shared"
    assert settings.active_generator is GeneratorChoice.OPENAI


def test_without_azure_the_model_is_openai_model(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _set(monkeypatch, {"OPENAI_API_KEY": "sk-x", "OPENAI_MODEL": "gpt-4.1-mini"})
    assert settings.llm_model == settings.active_model == "gpt-4.1-mini"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AZURE_OPENAI_ENDPOINT": AZURE["AZURE_OPENAI_ENDPOINT"], "OPENAI_API_KEY": "sk-x"},
            "AZURE_OPENAI_ENDPOINT needs AZURE_OPENAI_DEPLOYMENT",
        ),
        (
            {**AZURE, "OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"},
            "or OPENAI_BASE_URL .*not both",
        ),
        (AZURE, "AZURE_OPENAI_ENDPOINT needs AZURE_OPENAI_API_KEY"),
        ({"AZURE_OPENAI_DEPLOYMENT": "personas"}, "work only with AZURE_OPENAI_ENDPOINT"),
        ({"AZURE_OPENAI_API_KEY": "k", "GENERATOR": "openai"}, "work only with AZURE_OPENAI_"),
        (
            {**AZURE, "OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "http://example.com"},
            "must be an https:// URL",
        ),
        ({**AZURE, "OPENAI_API_KEY": "k", "AZURE_OPENAI_DEPLOYMENT": "a/../b"}, "pattern"),
        ({**AZURE, "OPENAI_API_KEY": "k", "AZURE_OPENAI_API_VERSION": "latest"}, "pattern"),
        ({"OPENAI_RESPONSE_FORMAT": "json"}, "json_schema"),
    ],
    ids=[
        "no-deployment",
        "with-base-url",
        "no-key",
        "deployment-alone",
        "key-alone",
        "plain-http",
        "bad-deployment",
        "bad-version",
        "bad-format",
    ],
)
def test_half_a_compatible_server_configuration_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _set(monkeypatch, env)


def test_azure_over_plain_http_is_allowed_to_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**AZURE, "OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:8443"}
    assert _set(monkeypatch, env).azure_openai_endpoint is not None


def test_extra_headers_are_read_as_json_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"X-Gateway-Token": GATEWAY_TOKEN, "X-Team": "personas"}
    settings = _set(monkeypatch, {"OPENAI_EXTRA_HEADERS": json.dumps(headers)})

    sent = {k: v.get_secret_value() for k, v in settings.openai_extra_headers.items()}
    assert sent == headers
    for shown in (repr(settings), str(settings), str(settings.model_dump())):
        assert GATEWAY_TOKEN not in shown
    assert GATEWAY_TOKEN not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X Bad": "v"}, "is not a header name"),
        ({"": "v"}, "is not a header name"),
        ({"X-Token": GATEWAY_TOKEN + "\r\nX-Injected: 1"}, "contains CR, LF or NUL"),
        ({"X-Token": "a\nb"}, "contains CR, LF or NUL"),
        ({"Authorization": "Bearer " + GATEWAY_TOKEN}, "would replace the API key"),
        ({"API-KEY": GATEWAY_TOKEN}, "would replace the API key"),
        ({"X-A": "1", "x-a": "2"}, "given twice"),
        ({f"X-H{i}": "v" for i in range(21)}, "at most 20"),
        (["X-Token"], "valid dictionary"),
    ],
    ids=["space", "empty", "crlf", "lf", "authorization", "api-key", "twice", "21", "not-object"],
)
def test_bad_extra_headers_are_refused_without_showing_values(
    monkeypatch: pytest.MonkeyPatch, headers: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        _set(monkeypatch, {"OPENAI_EXTRA_HEADERS": json.dumps(headers)})
    assert GATEWAY_TOKEN not in str(caught.value)
