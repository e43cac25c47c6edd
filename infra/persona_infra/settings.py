"""The one settings object of every process, read from the environment.

Every field maps to an upper-case environment variable of the same name (see the
README's configuration table). Secrets may also come from files in
``SECRETS_DIR`` (default ``/run/secrets``), one file per variable, which is how
Docker and Kubernetes mount them. The defaults run against the embedded stack
started by ``persona dev`` with no configuration at all.
"""

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AnyHttpUrl, Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from persona_contracts.events import MAX_PERSONAS_PER_REQUEST
from persona_contracts.topics import Topics
from persona_infra.setting_types import (
    ApiKeyEntries,
    AzureApiVersion,
    AzureDeployment,
    AzureEndpoint,
    CorsOrigins,
    ExtraHeaders,
    PriceSetting,
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class GeneratorChoice(StrEnum):
    AUTO = "auto"
    OPENAI = "openai"
    OFFLINE = "offline"


class PlannerChoice(StrEnum):
    RULES = "rules"
    LLM = "llm"


class ResponseFormat(StrEnum):
    """How LLM calls ask for JSON shaped like the answer's model."""

    JSON_SCHEMA = "json_schema"
    """Strict Structured Outputs: the server holds the answer to the schema sent."""
    JSON_OBJECT = "json_object"
    """JSON mode, for servers without strict structured outputs: the schema goes into the
    system message, and validation (with the error fed back) holds the answer to it."""


Port = Annotated[int, Field(ge=1, le=65535)]
OFFLINE_MODEL = "offline-v1"


DEV_CURSOR_SECRET = "dev-only-cursor-secret-change-me"
MIN_CURSOR_SECRET_CHARS = 32


EMBEDDED_CACHE = "4G"
"""The embedded database's cache unless ``DEV_MONGODB_CACHE`` says otherwise."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        hide_input_in_errors=True,  # a secret pasted into the wrong variable stays secret
    )

    environment: Environment = Environment.DEVELOPMENT
    service_name: str = "persona-pipeline"

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]*$", max_length=100)] = ""
    kafka_partitions: Annotated[int, Field(ge=1, le=1024)] = 4
    # The shards of large requests: as many partitions as workers may share one request.
    kafka_shard_partitions: Annotated[int, Field(ge=1, le=1024)] = 12
    kafka_replication_factor: Annotated[int, Field(ge=1, le=16)] = 1
    kafka_create_topics: bool = True
    kafka_session_timeout_ms: Annotated[int, Field(ge=1000, le=300_000)] = 10_000
    kafka_heartbeat_interval_ms: Annotated[int, Field(ge=100, le=100_000)] = 3_000
    kafka_max_poll_interval_ms: Annotated[int, Field(ge=10_000)] = 600_000
    kafka_request_timeout_ms: Annotated[int, Field(ge=1000)] = 30_000
    # The longest a publish (POST /v1/persona, persona request) may wait for the broker.
    kafka_publish_timeout_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    # Request events above this size are refused at the producer and the API.
    max_event_bytes: Annotated[int, Field(ge=16 * 1024, le=900 * 1024)] = 256 * 1024
    # Managed Kafka (MSK, Confluent Cloud, Aiven, Heroku) needs TLS and/or SASL.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: Annotated[str, Field(max_length=256)] | None = None
    kafka_sasl_password: SecretStr | None = None
    # CA bundle for the broker's certificate; the system's trust store when unset.
    kafka_ssl_ca_file: FilePath | None = None
    # Client certificate and key (PEM) where the brokers require mutual TLS.
    kafka_ssl_cert_file: FilePath | None = None
    kafka_ssl_key_file: FilePath | None = None

    # MongoDB
    mongodb_uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017")
    mongodb_database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")] = "personas"
    mongodb_timeout_ms: Annotated[int, Field(ge=100, le=120_000)] = 5_000
    # Below the 300 s after which some servers silently close idle sockets.
    mongodb_max_idle_ms: Annotated[int, Field(ge=1000)] = 120_000

    # Generation
    generator: GeneratorChoice = GeneratorChoice.AUTO
    generation_concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    # On: GENERATION_CONCURRENCY is the ceiling and the worker finds the number of LLM calls
    # in flight the provider sustains (429s and rising latency lower it). Off: always that many.
    generation_adaptive_concurrency: bool = True
    max_requests_in_flight: Annotated[int, Field(ge=1, le=4096)] = 64
    # A request of more personas is planned once and split into shards of this many, which
    # every worker of the group takes (persona.shards).
    request_shard_size: Annotated[int, Field(ge=1, le=MAX_PERSONAS_PER_REQUEST)] = 25
    generation_max_retries: Annotated[int, Field(ge=0, le=20)] = 5
    generation_max_invalid_retries: Annotated[int, Field(ge=0, le=10)] = 2
    generation_backoff_base_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    generation_backoff_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    shutdown_grace_s: Annotated[float, Field(ge=0, le=3600)] = 25.0
    # The reconciler re-drives requests that made no progress (one worker at a time, by lease).
    reconcile_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    reconcile_stale_after_s: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    reconcile_max_redrives: Annotated[int, Field(ge=1, le=100)] = 5
    # /ready turns false when the committed offset has not moved for this long with a backlog.
    ready_stall_s: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    near_duplicate_threshold: Annotated[float, Field(gt=0, le=1)] = 0.9
    near_duplicate_max_regenerations: Annotated[int, Field(ge=0, le=10)] = 2
    openai_api_key: SecretStr | None = None
    openai_base_url: AnyHttpUrl | None = None
    openai_model: Annotated[str, Field(min_length=1, max_length=100)] = "gpt-4o-mini"
    openai_timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    price_table: dict[str, PriceSetting] = Field(default_factory=dict, max_length=200)
    openai_rpm: Annotated[int, Field(ge=0)] = 500
    openai_tpm: Annotated[int, Field(ge=0)] = 200_000
    openai_temperature: Annotated[float, Field(ge=0, le=2)] = 0.9
    # Compatible servers: JSON mode with the schema in the prompt for servers without strict
    # structured outputs; Azure OpenAI by endpoint and deployment (the deployment is the model
    # name sent); headers a gateway wants on every call (values may be secrets: never shown).
    openai_response_format: ResponseFormat = ResponseFormat.JSON_SCHEMA
    openai_extra_headers: ExtraHeaders = Field(default_factory=dict)
    azure_openai_endpoint: AzureEndpoint | None = None
    azure_openai_deployment: AzureDeployment | None = None
    azure_openai_api_version: AzureApiVersion = "2024-10-21"
    azure_openai_api_key: SecretStr | None = None
    # Batch API (mode "batch"): requests of at least this many personas go through it when
    # they do not name a mode (unset: only requests asking for it); the worker polls each
    # batch this often and sends a follow-up batch for what a round did not deliver, up to
    # this many rounds in all.
    openai_batch_threshold: Annotated[int, Field(ge=1, le=MAX_PERSONAS_PER_REQUEST)] | None = None
    openai_batch_poll_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    openai_batch_max_rounds: Annotated[int, Field(ge=1, le=10)] = 3
    # Audience planning: the rule planner (offline, free) or one LLM call per request.
    planner: PlannerChoice = PlannerChoice.RULES
    planner_model: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    # Worker's own HTTP port: /health, /ready, /metrics
    worker_host: str = "127.0.0.1"
    worker_port: Port = 8081

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: Port = 8080
    # Where the CLI finds the API (default: this machine's API_PORT), and the key it sends.
    persona_api_url: AnyHttpUrl | None = None
    persona_api_key: SecretStr | None = None
    cursor_secret: SecretStr = SecretStr(DEV_CURSOR_SECRET)

    # API security (read by the API only; the worker ignores these)
    # Entries `name:scrypt$salt$hash` made by `persona keys hash`; the setting is the role.
    api_keys: ApiKeyEntries = None  # writers: POST /v1/persona (and reads)
    admin_api_keys: ApiKeyEntries = None  # admins: admin routes, writes and reads
    read_api_keys: ApiKeyEntries = None  # readers: reads when READS_REQUIRE_KEY
    reads_require_key: bool = False
    write_rate_per_minute: Annotated[float, Field(ge=0, le=1_000_000)] = 30.0
    write_burst: Annotated[int, Field(ge=1, le=10_000)] = 10
    export_rate_per_minute: Annotated[float, Field(ge=0, le=1_000_000)] = 6.0
    export_burst: Annotated[int, Field(ge=1, le=10_000)] = 3
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    cors_origins: CorsOrigins = ()
    # HTTP server limits (the API and the worker's port): a request head (request line and
    # headers) over these bytes or headers gets a 431; one not received within the header
    # timeout, or a body pausing longer than the body timeout between chunks, a 408.
    http_max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    http_max_headers: Annotated[int, Field(ge=10, le=1000)] = 100
    http_header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    http_body_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0

    # Logging
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"
    log_file: Path | None = None

    # Tracing (OpenTelemetry). The exporter reads the standard OTEL_EXPORTER_OTLP_*
    # variables itself (endpoint, headers, protocol http/protobuf).
    otel_enabled: bool = False
    otel_service_name: str | None = None

    # Embedded development stack (``persona dev`` and the test fixtures)
    dev_data_dir: Path = Path(".data")
    dev_kafka_port: Port = 9092
    dev_mongodb_port: Port = 27017
    # The embedded database stops answering once its cache is full (seen at about
    # 30,000 personas with its own default of 1G); the cache grows only as it is used.
    dev_mongodb_cache: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}[MG]$")] = EMBEDDED_CACHE

    @model_validator(mode="after")
    def _generator_is_usable(self) -> Self:
        if self.generator is GeneratorChoice.OPENAI and self.llm_api_key is None:
            raise ValueError(
                "GENERATOR=openai needs OPENAI_API_KEY; set it or use GENERATOR=offline"
            )
        if self.planner is PlannerChoice.LLM and self.llm_api_key is None:
            raise ValueError("PLANNER=llm needs OPENAI_API_KEY; set it or use PLANNER=rules")
        return self

    @model_validator(mode="after")
    def _azure_is_complete(self) -> Self:
        """Half an Azure configuration would silently call OpenAI, or nothing at all."""
        if self.azure_openai_endpoint is None:
            stray = [
                name
                for name, value in (
                    ("AZURE_OPENAI_DEPLOYMENT", self.azure_openai_deployment),
                    ("AZURE_OPENAI_API_KEY", self.azure_openai_api_key),
                )
                if value is not None
            ]
            if stray:
                raise ValueError(f"{' and '.join(stray)} work only with AZURE_OPENAI_ENDPOINT")
            return self
        if self.azure_openai_deployment is None:
            raise ValueError(
                "AZURE_OPENAI_ENDPOINT needs AZURE_OPENAI_DEPLOYMENT, the name of the model's "
                "deployment on the Azure OpenAI resource"
            )
        if self.openai_base_url is not None:
            raise ValueError(
                "set AZURE_OPENAI_ENDPOINT (Azure OpenAI) or OPENAI_BASE_URL (other "
                "OpenAI-compatible servers), not both"
            )
        if self.llm_api_key is None:
            raise ValueError("AZURE_OPENAI_ENDPOINT needs AZURE_OPENAI_API_KEY (or OPENAI_API_KEY)")
        return self

    @model_validator(mode="after")
    def _production_is_not_left_on_dev_secrets(self) -> Self:
        secret = self.cursor_secret.get_secret_value()
        if self.environment is Environment.PRODUCTION and (
            secret == DEV_CURSOR_SECRET or len(secret) < MIN_CURSOR_SECRET_CHARS
        ):
            raise ValueError(
                f"ENVIRONMENT=production needs CURSOR_SECRET set to a random value of at least "
                f"{MIN_CURSOR_SECRET_CHARS} characters, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return self

    @model_validator(mode="after")
    def _client_certificate_is_complete(self) -> Self:
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError("set KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE together")
        return self

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def api_url(self) -> str:
        """The API the CLI talks to."""
        if self.persona_api_url is not None:
            return str(self.persona_api_url).rstrip("/")
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.kafka_topic_prefix)

    @property
    def active_generator(self) -> GeneratorChoice:
        """The generator that will actually run: ``auto`` resolves on the API key."""
        if self.generator is not GeneratorChoice.AUTO:
            return self.generator
        return GeneratorChoice.OPENAI if self.llm_api_key else GeneratorChoice.OFFLINE

    @property
    def active_model(self) -> str:
        """The model name personas will carry, for ``/`` and the start-up log."""
        if self.active_generator is GeneratorChoice.OPENAI:
            return self.llm_model
        return OFFLINE_MODEL

    @property
    def llm_api_key(self) -> SecretStr | None:
        """The key LLM calls send: ``AZURE_OPENAI_API_KEY`` on Azure when set, else
        ``OPENAI_API_KEY``."""
        return self.azure_openai_api_key or self.openai_api_key

    @property
    def llm_model(self) -> str:
        """The model name LLM calls send: the deployment on Azure, else ``OPENAI_MODEL``."""
        return self.azure_openai_deployment or self.openai_model

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.environment is Environment.PRODUCTION
        return self.log_format == "json"


def load_settings() -> Settings:
    """Read settings from the environment, ``.env`` and the secrets directory."""
    secrets_dir = Path(os.environ.get("SECRETS_DIR", "/run/secrets"))
    return Settings(_secrets_dir=secrets_dir if secrets_dir.is_dir() else None)
