"""docker-compose.yml, checked with the real tools and without a Docker engine.

* ``docker-compose config`` resolves the file the way ``docker compose up`` does
  (interpolation, anchors, merge keys) and fails on missing required variables;
  the tests read its JSON model.
* ``check-jsonschema`` validates the file against the Compose specification.
* The api/worker environment, once interpolated, is fed to the real ``Settings``.
* ``deploy/compose/create-topics.sh`` (kafka-init) runs with a stub
  ``kafka-topics.sh`` to see exactly which topics it creates.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from persona_contracts.topics import Topics
from persona_infra.api_keys import generate_key, make_entry
from persona_infra.settings import Environment, GeneratorChoice, Settings
from tests.deploy.common import ROOT, duration_seconds, tool

COMPOSE_FILE = ROOT / "docker-compose.yml"

SETTINGS_ENV_NAMES = frozenset(name.upper() for name in Settings.model_fields)
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")

# The variables `docker compose up` refuses to start without, with sample values.
REQUIRED_ENV = {
    "CURSOR_SECRET": "a-random-test-value-of-some-length",
    "API_KEYS": make_entry("compose", generate_key()),
    "GRAFANA_ADMIN_PASSWORD": "a-test-grafana-password",
}
SERVICES = {
    "kafka",
    "kafka-init",
    "mongodb",
    "api",
    "worker",
    "kafka-exporter",
    "prometheus",
    "grafana",
}
ONE_SHOT = {"kafka-init"}
APP_SERVICES = ("api", "worker")
# Host ports: only these services publish, each on loopback.
PUBLISHED = {"api": {8080: 8080}, "prometheus": {9090: 9090}, "grafana": {3000: 3000}}
DEPENDS_ON_CONDITIONS = {"service_healthy", "service_completed_successfully", "service_started"}
# Monitoring waits only for its targets to start: it must run when the app is unhealthy.
MONITORING = {"prometheus"}


# --------------------------------------------------------------------------- #
# Running the tools
# --------------------------------------------------------------------------- #


def compose(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``docker-compose -f docker-compose.yml ARGS`` with only ``env`` set.

    The caller's environment and any ``.env`` beside the file are kept out, so
    the result does not depend on the machine.
    """
    clean = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
    return subprocess.run(
        [tool("docker-compose"), "-f", str(COMPOSE_FILE), "--env-file", os.devnull, *args],
        env={**clean, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def compose_model(env: Mapping[str, str], *args: str) -> dict[str, Any]:
    result = compose("config", "--format", "json", *args, env=env)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    model = json.loads(result.stdout)
    assert isinstance(model, dict)
    return model


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The model `docker compose up` runs with the required variables set."""
    return compose_model(REQUIRED_ENV)


@pytest.fixture(scope="module")
def services(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resolved["services"]


@pytest.fixture(scope="module")
def raw_services() -> dict[str, dict[str, Any]]:
    """The services with anchors merged but ``${...}`` left as written."""
    return compose_model({}, "--no-interpolate")["services"]


def service_env(service: Mapping[str, Any], *, raw: bool = False) -> dict[str, str]:
    """A service's environment as the container gets it.

    ``config`` escapes ``$`` as ``$$`` in resolved values (so its output is a valid
    compose file again); the container sees a single ``$``, as in the salted hashes
    of API_KEYS. ``raw``: leave the values of a ``--no-interpolate`` model alone.
    """
    env = service.get("environment") or {}
    values = {k: "" if v is None else str(v) for k, v in env.items()}
    return values if raw else {k: v.replace("$$", "$") for k, v in values.items()}


def repo_path(source: str) -> Path:
    """A bind mount's source (compose makes it absolute) relative to the repository."""
    return Path(source).resolve().relative_to(ROOT)


def bind_mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of every bind mount of a service."""
    return {
        v["target"]: repo_path(v["source"])
        for v in service.get("volumes", [])
        if v["type"] == "bind"
    }


# --------------------------------------------------------------------------- #
# The tools accept the file
# --------------------------------------------------------------------------- #


def test_compose_config_accepts_the_file() -> None:
    result = compose("config", "-q", env=REQUIRED_ENV)
    assert result.returncode == 0, f"docker-compose config rejects the file:\n{result.stderr}"


def test_required_variables_are_the_documented_ones() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {m["name"] for m in REFERENCE.finditer(text) if m["op"] in (":?", "?")}
    assert required == set(REQUIRED_ENV), (
        "the variables compose requires (${VAR:?...}) changed: update REQUIRED_ENV here and "
        "the docs"
    )


@pytest.mark.parametrize("name", sorted(REQUIRED_ENV))
def test_compose_config_fails_naming_a_missing_required_variable(name: str) -> None:
    env = {k: v for k, v in REQUIRED_ENV.items() if k != name}
    result = compose("config", "-q", env=env)
    assert result.returncode != 0, f"docker-compose config passes without {name}"
    assert name in result.stderr, f"the error does not name {name}:\n{result.stderr}"


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"not valid per the compose spec:\n{result.stdout}"


# --------------------------------------------------------------------------- #
# The stack
# --------------------------------------------------------------------------- #


def test_compose_defines_the_stack(services: dict[str, dict[str, Any]]) -> None:
    missing = sorted(SERVICES - set(services))
    assert not missing, f"services missing from docker-compose.yml: {missing}"


def test_long_running_services_restart_and_have_healthchecks(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is one-shot: restart: 'no'"
            continue
        assert service.get("restart") in ("unless-stopped", "always"), f"{name}: no restart"
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name}'s healthcheck is disabled"
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test"


def test_every_dependency_waits_for_a_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition")
            assert condition in DEPENDS_ON_CONDITIONS, (
                f"{name} depends on {dependency} with condition {condition!r}: wait for "
                "service_healthy or service_completed_successfully"
            )
            target = services[dependency]
            if condition == "service_started":
                assert name in MONITORING, f"{name} starts before {dependency} is ready"
            elif condition == "service_healthy":
                assert (target.get("healthcheck") or {}).get("test"), (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"
                )
            else:
                assert dependency in ONE_SHOT, f"{dependency} is not a one-shot service"


def test_app_services_wait_for_topics_and_mongodb(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["kafka-init"]["condition"] == "service_completed_successfully", name
        assert depends_on["mongodb"]["condition"] == "service_healthy", name
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_app_services_share_the_image_and_the_worker_scales(
    services: dict[str, dict[str, Any]],
) -> None:
    api, worker = services["api"], services["worker"]
    assert api["image"] == worker["image"], "api and worker must run the same image"
    assert api.get("build") == worker.get("build"), "api and worker must build the same image"
    assert repo_path(api["build"]["context"]) == Path(), "build context is the repository"
    assert api["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
    assert api["command"] == ["api"]
    assert worker["command"] == ["worker"]
    assert not worker.get("ports"), "a published port would prevent --scale worker=N"
    assert "container_name" not in worker, "a container_name would prevent --scale worker=N"


def test_only_api_prometheus_and_grafana_publish_ports_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        ports = service.get("ports") or []
        published = {int(p["published"]): p["target"] for p in ports}
        assert published == PUBLISHED.get(name, {}), f"{name} publishes {published}"
        for port in ports:
            assert port.get("host_ip") == "127.0.0.1", (
                f"{name} publishes {port['published']} on every interface: bind it to 127.0.0.1"
            )


def test_worker_stop_grace_period_exceeds_its_drain_time(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    drain = float(
        service_env(worker).get(
            "SHUTDOWN_GRACE_S", Settings.model_fields["shutdown_grace_s"].default
        )
    )
    assert "stop_grace_period" in worker, "worker: no stop_grace_period (compose default: 10s)"
    grace = duration_seconds(worker["stop_grace_period"])
    assert grace > drain, (
        f"worker stop_grace_period {grace}s must exceed SHUTDOWN_GRACE_S {drain}s, or SIGKILL "
        "cuts the drain short"
    )


# A tiny HTTP server to run the compose healthchecks against.


class _StatusServer(HTTPServer):
    statuses: dict[str, int]


class _StatusHandler(BaseHTTPRequestHandler):
    server: _StatusServer

    def do_GET(self) -> None:
        self.send_response(self.server.statuses.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[int, dict[str, int]]]:
    server = _StatusServer(("127.0.0.1", 0), _StatusHandler)
    server.statuses = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), server.statuses
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("name", "port"), [("api", 8080), ("worker", 8081)])
def test_app_healthcheck_probes_its_own_ready_endpoint(
    services: dict[str, dict[str, Any]],
    http_server: tuple[int, dict[str, int]],
    name: str,
    port: int,
) -> None:
    test = services[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], f"{name}: python probe expected (no curl)"
    code = test[3]
    assert f"127.0.0.1:{port}/ready" in code, f"{name}'s healthcheck must ask its own /ready"
    local_port, statuses = http_server
    code = code.replace(f"127.0.0.1:{port}", f"127.0.0.1:{local_port}")

    def probe() -> int:
        return subprocess.run([sys.executable, "-c", code], timeout=30, check=False).returncode

    statuses["/ready"] = 200
    assert probe() == 0, f"{name}'s healthcheck fails although /ready answers 200"
    statuses["/ready"] = 503
    assert probe() != 0, f"{name}'s healthcheck passes although /ready answers 503"


def test_kafka_is_a_single_node_kraft_broker(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"]), kafka["image"]
    assert services["kafka-init"]["image"] == kafka["image"]
    env = service_env(kafka)
    node_id = env["KAFKA_NODE_ID"]
    assert node_id
    assert env["CLUSTER_ID"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    listeners = env["KAFKA_LISTENERS"].split(",")
    assert "PLAINTEXT://:9092" in listeners
    assert "CONTROLLER://:9093" in listeners
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093", "one voter: itself"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "kafka-init owns the topics"
    volume_targets = [v["target"] for v in kafka.get("volumes", []) if v["type"] == "volume"]
    assert env["KAFKA_LOG_DIRS"] in volume_targets, "Kafka's data must live on a volume"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_mongodb_is_pinned_persistent_and_pinged(services: dict[str, dict[str, Any]]) -> None:
    mongodb = services["mongodb"]
    assert re.fullmatch(r"mongo:\d+\.\d+(\.\d+)?", mongodb["image"]), mongodb["image"]
    volume_targets = [v["target"] for v in mongodb.get("volumes", []) if v["type"] == "volume"]
    assert "/data/db" in volume_targets, "MongoDB's data must live on a named volume"
    test = " ".join(mongodb["healthcheck"]["test"])
    assert "mongosh" in test
    assert "ping" in test


def test_monitoring_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka-exporter", "prometheus", "grafana"):
        image = services[name]["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: pin {image} to a release"


def test_prometheus_mounts_the_repository_config_and_rules(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = bind_mounts(services["prometheus"])
    config = mounts.get("/etc/prometheus/prometheus.yml")
    rules = mounts.get("/etc/prometheus/rules")
    assert config == Path("deploy/prometheus/prometheus.yml"), mounts
    assert rules == Path("deploy/prometheus/rules"), mounts
    assert (ROOT / config).is_file(), f"{config} does not exist"
    assert sorted((ROOT / rules).glob("*.yml")), f"{rules} holds no rules files"
    # The config loads the mounted rules and scrapes services that exist.
    loaded = yaml.safe_load((ROOT / config).read_text(encoding="utf-8"))
    rule_globs = loaded.get("rule_files") or []
    assert any(g.startswith("/etc/prometheus/rules/") for g in rule_globs), rule_globs
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_grafana_mounts_the_repository_provisioning_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = bind_mounts(services["grafana"])
    provisioning = mounts.get("/etc/grafana/provisioning")
    dashboards = mounts.get("/var/lib/grafana/dashboards")
    assert provisioning == Path("deploy/grafana/provisioning"), mounts
    assert dashboards == Path("deploy/grafana/dashboards"), mounts
    assert (ROOT / provisioning).is_dir(), f"{provisioning} does not exist"
    assert sorted((ROOT / dashboards).glob("*.json")), f"{dashboards} holds no dashboards"
    # The dashboard provider reads the directory the dashboards are mounted at.
    paths = [
        provider.get("options", {}).get("path")
        for provider_file in sorted((ROOT / provisioning / "dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(provider_file.read_text(encoding="utf-8"))["providers"]
    ]
    assert "/var/lib/grafana/dashboards" in paths, f"dashboard providers read {paths}"


# --------------------------------------------------------------------------- #
# Secrets
# --------------------------------------------------------------------------- #


def test_compose_text_has_no_version_key_and_no_literal_keys() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"^version\s*:", text, re.MULTILINE), "the compose spec has no version"
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", text), "an OpenAI key is hard-coded"


def test_compose_hard_codes_no_secrets(raw_services: dict[str, dict[str, Any]]) -> None:
    for name, service in raw_services.items():
        for key, value in service_env(service, raw=True).items():
            if SECRET_NAME.search(key):
                reference = REFERENCE.fullmatch(value)
                assert value == "" or reference, (
                    f"{name}: {key} must come from the host environment (${{VAR...}}), "
                    "not from the file"
                )
                if reference and reference["op"] in (":-", "-"):
                    assert not reference["arg"], f"{name}: {key} has a default value"
            if key.endswith("_URI") and "@" in value:
                assert "${" in value, f"{name}: {key} embeds credentials"
    for name in APP_SERVICES:
        secret = service_env(raw_services[name], raw=True)["CURSOR_SECRET"]
        assert secret.startswith("${CURSOR_SECRET:?"), f"{name}: CURSOR_SECRET must be required"


# --------------------------------------------------------------------------- #
# The app's environment is valid production configuration
# --------------------------------------------------------------------------- #


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage: what the containers start with."""
    return dict(DockerfileParser(path=str(ROOT / "Dockerfile"), cache_content=True).envs)


@pytest.fixture
def clean_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the caller's environment or a stray ``.env`` leaks in."""
    for name in os.environ:
        if name.upper() in SETTINGS_ENV_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_settings_env")
@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_is_valid_production_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    compose_env = service_env(services[name])
    unknown = sorted(set(compose_env) - SETTINGS_ENV_NAMES)
    assert not unknown, f"{name}: environment names no setting (typo?): {unknown}"

    merged = {**image_env(), **compose_env}
    settings = Settings(**{k.lower(): v for k, v in merged.items() if k in SETTINGS_ENV_NAMES})

    assert settings.environment is Environment.PRODUCTION
    assert settings.api_host == "0.0.0.0"
    assert settings.worker_host == "0.0.0.0"
    assert settings.json_logs
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_create_topics is False, "kafka-init owns the topics"
    assert settings.mongodb_uri.get_secret_value() == "mongodb://mongodb:27017"
    assert settings.cursor_secret.get_secret_value() == REQUIRED_ENV["CURSOR_SECRET"]
    assert settings.topics == Topics()
    if name == "api":
        assert settings.api_keys is not None, "the production API refuses to start without keys"
        assert settings.api_keys.get_secret_value() == REQUIRED_ENV["API_KEYS"]
    if name == "worker":
        # Without OPENAI_API_KEY on the host, the worker falls back to offline.
        assert settings.active_generator is GeneratorChoice.OFFLINE


# --------------------------------------------------------------------------- #
# kafka-init creates exactly the app's topics
# --------------------------------------------------------------------------- #


def kafka_init_script(service: Mapping[str, Any]) -> Path:
    """The repository file of the script that kafka-init's entrypoint runs."""
    script = service["entrypoint"][-1]
    mounts = bind_mounts(service)
    assert script in mounts, f"{script} is not mounted into kafka-init"
    return ROOT / mounts[script]


def run_topic_script(script: Path, env: Mapping[str, str], tmp_path: Path) -> list[list[str]]:
    """Run the script with a stub kafka-topics.sh; return the argv of each call."""
    log = tmp_path / "calls.jsonl"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n",
        encoding="utf-8",
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        ["sh", str(script)],
        env={"PATH": os.environ.get("PATH", ""), **env, "KAFKA_TOPICS": str(stub)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}{result.stderr}"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def created_topics(calls: list[list[str]]) -> dict[str, tuple[str, str]]:
    """Topic -> (partitions, replication factor) of every ``--create`` call."""
    topics = {}
    for argv in calls:
        if "--create" in argv:
            assert "--if-not-exists" in argv, "topic creation must be idempotent"
            option = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i][:2] == "--"}
            topics[option["--topic"]] = (option["--partitions"], option["--replication-factor"])
    return topics


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(("prefix", "partitions"), [("", None), ("staging.", "6")])
def test_kafka_init_creates_exactly_the_topics_the_app_uses(
    tmp_path: Path, prefix: str, partitions: str | None
) -> None:
    host_env = {**REQUIRED_ENV, "KAFKA_TOPIC_PREFIX": prefix}
    if partitions is not None:
        host_env["KAFKA_PARTITIONS"] = partitions
    services = compose_model(host_env)["services"]
    kafka_init = services["kafka-init"]
    assert kafka_init["entrypoint"][0] in ("/bin/sh", "/bin/bash", "sh", "bash")
    env = service_env(kafka_init)
    assert env["KAFKA_BOOTSTRAP"] == "kafka:9092"

    expected_partitions = partitions or str(Settings.model_fields["kafka_partitions"].default)
    shard_partitions = str(Settings.model_fields["kafka_shard_partitions"].default)
    for name in APP_SERVICES:
        app_env = service_env(services[name])
        assert app_env["KAFKA_TOPIC_PREFIX"] == prefix, name
        assert app_env["KAFKA_PARTITIONS"] == expected_partitions, name
        assert app_env["KAFKA_SHARD_PARTITIONS"] == shard_partitions, name
        assert env["TOPIC_REPLICATION_FACTOR"] == app_env["KAFKA_REPLICATION_FACTOR"], name

    calls = run_topic_script(kafka_init_script(kafka_init), env, tmp_path)

    topics = Topics(prefix=prefix)
    assert created_topics(calls) == {
        topics.requests: (expected_partitions, "1"),
        topics.shards: (shard_partitions, "1"),
        topics.created: (expected_partitions, "1"),
        topics.failed: (expected_partitions, "1"),
        topics.dead_letter: ("1", "1"),
    }
    assert set(created_topics(calls)) == set(topics.all())
    for argv in calls:
        assert argv[argv.index("--bootstrap-server") + 1] == "kafka:9092"
