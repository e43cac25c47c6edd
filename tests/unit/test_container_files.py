"""Structural checks of the container files, runnable without a Docker engine.

* ``Dockerfile`` is read by a small line-based parser (continuations, comments,
  stages, exec-form JSON), and its healthcheck probe is run against a local HTTP
  server.
* ``.dockerignore`` is checked with a simplified version of Docker's matching.
* ``docker-compose.yml`` is loaded with PyYAML when it is importable (these tests
  are skipped otherwise); its interpolations (``${VAR:-default}``,
  ``${VAR:?error}``) are resolved by a small resolver so the api/worker
  environment can be validated by the real ``Settings``.
* ``deploy/compose/create-topics.sh`` is run with a stub ``kafka-topics.sh`` to
  see exactly which topics ``kafka-init`` creates.
"""

import fnmatch
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from persona_pipeline.contracts.topics import Topics
from persona_pipeline.core.api_keys import generate_key, make_entry
from persona_pipeline.core.settings import Environment, GeneratorChoice, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"

SETTINGS_ENV_NAMES = frozenset(name.upper() for name in Settings.model_fields)
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
NON_ROOT_USERS = {"1000", "1000:1000", "app", "app:app"}
LONG_RUNNING = ("kafka", "mongodb", "api", "worker")
APP_SERVICES = ("api", "worker")


# --------------------------------------------------------------------------- #
# Dockerfile parsing
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined; comments and blank lines dropped.

    As in Docker, comment lines inside a continued instruction are removed.
    """
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, "Dockerfile ends inside a line continuation"
    return instructions


def _expand_args(value: str, args: Mapping[str, str]) -> str:
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), value
    )


def split_stages(instructions: list[Instruction]) -> list[Stage]:
    """Build stages, resolving ``FROM ${ARG}`` with the defaults of global ARGs."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(_expand_args(words[0], global_args), name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword == "ARG":
            key, _, default = instruction.args.partition("=")
            global_args[key.strip()] = default.strip().strip("\"'")
    return stages


def env_pairs(instruction: Instruction) -> dict[str, str]:
    """Key/value pairs of an ``ENV`` or ``ARG`` (``K=V K2="v 2"`` or legacy ``K V``)."""
    tokens = shlex.split(instruction.args)
    if instruction.keyword == "ENV" and tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    pairs = {}
    for token in tokens:
        key, _, value = token.partition("=")
        pairs[key] = value
    return pairs


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.args)
    assert isinstance(value, list), f"line {instruction.line}: not a JSON array"
    assert value, f"line {instruction.line}: empty exec form"
    assert all(isinstance(v, str) for v in value), f"line {instruction.line}: non-string item"
    return value


def copy_sources(instruction: Instruction) -> list[str]:
    """Build-context sources of a ``COPY`` (none for ``COPY --from=...``)."""
    words = shlex.split(instruction.args)
    if any(w.startswith("--from") for w in words):
        return []
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stages(instructions: list[Instruction]) -> list[Stage]:
    return split_stages(instructions)


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM a AS b\nRUN one \\\n    # note\n    two\nUSER 1000\n"
    )
    assert parsed == [
        Instruction("FROM", "a AS b", 2),
        Instruction("RUN", "one two", 3),
        Instruction("USER", "1000", 6),
    ]


def test_dockerfile_is_multi_stage_on_a_pinned_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "expected a build stage and a runtime stage"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", stage.base), (
            f"stage {stage.name}: base image {stage.base!r} is not a pinned python 3.11 slim"
        )
    builder = stages[0]
    assert builder.name, "the build stage must be named so the runtime can refer to it"
    runtime_text = " ".join(i.args for i in stages[-1].instructions)
    assert f"from={builder.name}" in runtime_text, "runtime stage does not take the built wheels"


def test_builder_builds_wheels_of_runtime_dependencies_only(
    stages: list[Stage], instructions: list[Instruction]
) -> None:
    runs = [i.args for i in stages[0].all("RUN")]
    project = [r for r in runs if re.search(r"pip wheel --no-deps\b.* \.$", r)]
    dependencies = [r for r in runs if "pip wheel" in r and "--no-deps" not in r]
    assert project, "the build stage does not build the project's wheel"
    assert dependencies, "the build stage does not build the dependencies' wheels"
    assert all("--wheel-dir /wheels" in r for r in project + dependencies)
    every_run = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "optional-dependencies" not in every_run
    for extra in ("[embedded", "[test", "embedded]", "test]"):
        assert extra not in every_run, f"dev-only extra {extra!r} must not be installed"


def test_runtime_installs_offline_from_wheels_without_compilers(runtime: Stage) -> None:
    runs = [i.args for i in runtime.all("RUN")]
    installs = [r for r in runs if "pip install" in r]
    assert installs, "runtime stage installs nothing"
    for flag in ("--no-cache-dir", "--no-index", "--find-links /wheels"):
        assert all(flag in r for r in installs), f"pip install in the runtime lacks {flag}"
    joined = " ".join(runs)
    assert "pip wheel" not in joined
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang|make)\b", joined)


def test_runtime_runs_as_the_unprivileged_app_user(runtime: Stage) -> None:
    user = runtime.last("USER")
    assert user is not None, "runtime stage has no USER: it would run as root"
    assert user.args in NON_ROOT_USERS
    runs = " ".join(i.args for i in runtime.all("RUN"))
    assert re.search(r"groupadd\b.*--gid 1000 app\b", runs)
    assert re.search(r"useradd\b[^&;]*--uid 1000\b[^&;]* app\b", runs)
    # USER comes after every RUN: only the build steps run as root, never the container.
    assert runtime.instructions.index(user) > max(
        runtime.instructions.index(i) for i in runtime.all("RUN")
    )


def test_runtime_environment_is_production_and_names_real_settings(runtime: Stage) -> None:
    env: dict[str, str] = {}
    for instruction in runtime.all("ENV"):
        env.update(env_pairs(instruction))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["ENVIRONMENT"] == Environment.PRODUCTION.value
    assert env["API_HOST"] == "0.0.0.0"
    assert env["LOG_FORMAT"] == "json"
    app_keys = {k for k in env if not k.startswith(("PYTHON", "PIP_"))}
    unknown = app_keys - SETTINGS_ENV_NAMES
    assert not unknown, f"ENV names no setting (typo?): {sorted(unknown)}"


def test_no_secrets_add_or_dotenv_in_the_image(instructions: list[Instruction]) -> None:
    assert not [i for i in instructions if i.keyword == "ADD"], "use COPY, not ADD"
    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for key, value in env_pairs(instruction).items():
                assert not (SECRET_NAME.search(key) and value), (
                    f"line {instruction.line}: {key} looks secret but has a value"
                )
        if instruction.keyword == "COPY":
            for source in copy_sources(instruction):
                first = Path(source).parts[0] if Path(source).parts else source
                assert not Path(source).name.startswith(".env"), f"line {instruction.line}"
                assert first not in {".", "tests", ".git", ".venv", ".data", ".env"}, (
                    f"line {instruction.line}: COPY {source} brings unwanted files in"
                )


def test_entrypoint_and_cmd_are_exec_form(runtime: Stage) -> None:
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert entrypoint is not None
    assert cmd is not None
    assert exec_form(entrypoint) == ["persona"]
    assert exec_form(cmd) == ["api"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert "persona" in scripts, "ENTRYPOINT names a console script the package does not define"


def test_exposes_the_api_port(runtime: Stage) -> None:
    exposed = {p.split("/")[0] for i in runtime.all("EXPOSE") for p in i.args.split()}
    assert str(Settings.model_fields["api_port"].default) in exposed


def _healthcheck_probe(runtime: Stage) -> str:
    healthcheck = runtime.last("HEALTHCHECK")
    assert healthcheck is not None, "runtime stage has no HEALTHCHECK"
    assert healthcheck.args.upper() != "NONE"
    options, _, command = healthcheck.args.partition("CMD ")
    for option in ("--interval=", "--timeout=", "--retries="):
        assert option in options
    argv = exec_form(Instruction("CMD", command, healthcheck.line))
    assert argv[:2] == ["python", "-c"], "probe must use python (the slim image has no curl)"
    return argv[2]


def test_healthcheck_probes_health_with_urllib(runtime: Stage) -> None:
    code = _healthcheck_probe(runtime)
    assert "urllib" in code
    assert "127.0.0.1" in code
    assert "/health" in code
    compile(code, "<healthcheck>", "exec")


# A tiny HTTP server to run the probes against.


class _StatusServer(HTTPServer):
    """Answers each path with the status set in ``statuses`` (404 if unset)."""

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
        yield server.server_address[1], server.statuses
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_probe(code: str, port: int) -> int:
    """Exit code of a healthcheck snippet, pointed at ``port`` instead of 8080."""
    code = code.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    env = {**os.environ, "API_PORT": str(port)}
    return subprocess.run([sys.executable, "-c", code], env=env, timeout=30).returncode


def test_healthcheck_probe_passes_on_200_and_fails_otherwise(
    runtime: Stage, http_server: tuple[int, dict[str, int]]
) -> None:
    code = _healthcheck_probe(runtime)
    port, statuses = http_server
    statuses["/health"] = 200
    assert run_probe(code, port) == 0
    statuses["/health"] = 503
    assert run_probe(code, port) != 0


# --------------------------------------------------------------------------- #
# .dockerignore
# --------------------------------------------------------------------------- #


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Simplified Docker matching: a pattern excluding a directory excludes its contents."""
    parts = path.split("/")
    for raw in patterns:
        pattern = raw.lstrip("/")
        anywhere = pattern.startswith("**/")
        pattern = pattern.removeprefix("**/")
        for end in range(1, len(parts) + 1):
            starts = range(end) if anywhere else range(1)
            if any(fnmatch.fnmatchcase("/".join(parts[s:end]), pattern) for s in starts):
                return True
    return False


def test_dockerignore_has_no_negations() -> None:
    # Negations would make the simplified matcher above unreliable.
    assert not [p for p in dockerignore_patterns() if p.startswith("!")]


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".data/kafka/meta.properties",
        ".env",
        ".env.production",
        "tests/unit/test_container_files.py",
        "bench/run.py",
        "docs/contracts/persona.md",
        "src/persona_pipeline/__pycache__/settings.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        ".pytest_cache/README.md",
        "dist/persona_pipeline-0.1.0-py3-none-any.whl",
        "build/lib/x.py",
    ],
)
def test_dockerignore_excludes(path: str) -> None:
    assert is_ignored(path, dockerignore_patterns())


def test_dockerignore_keeps_everything_the_build_copies(instructions: list[Instruction]) -> None:
    patterns = dockerignore_patterns()
    sources = [s for i in instructions if i.keyword == "COPY" for s in copy_sources(i)]
    assert sources, "the Dockerfile copies nothing from the build context"
    for path in [*sources, "src/persona_pipeline/__init__.py", "src/persona_pipeline/core"]:
        assert not is_ignored(path, patterns), f"{path} is needed by the build but ignored"


# --------------------------------------------------------------------------- #
# docker-compose.yml
# --------------------------------------------------------------------------- #

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(ValueError):
    pass


def interpolate(value: object, env: Mapping[str, str]) -> str:
    """Resolve compose's ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise MissingVariableError(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(replace, str(value))


def test_interpolate() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}/${EMPTY-d}/$$x", env) == "v/d/d//$x"
    assert interpolate("${SET:?e}", env) == "v"
    with pytest.raises(MissingVariableError):
        interpolate("${EMPTY:?e}", env)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_compose_text_has_no_version_key_and_no_literal_secrets() -> None:
    # Runs without PyYAML.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"^version\s*:", text, re.MULTILINE), "the compose spec has no version"
    assert "${CURSOR_SECRET:?" in text
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", text), "an OpenAI key is hard-coded"


def test_compose_defines_the_stack(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "kafka-init", "mongodb", "api", "worker"} <= set(services)


def test_long_running_services_restart_and_have_healthchecks(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in LONG_RUNNING:
        service = services[name]
        assert service.get("restart") == "unless-stopped", name
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        if name == "worker":
            # No HTTP port yet: the image's /health probe would always fail, so
            # compose disables it (documented in docker-compose.yml).
            assert healthcheck.get("disable") is True
            continue
        assert not healthcheck.get("disable"), name
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
    assert services["kafka-init"].get("restart") == "no"


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
    assert api["image"] == worker["image"] == "persona-pipeline:local"
    assert api["build"]["context"] == "."
    assert api["command"] == ["api"]
    assert worker["command"] == ["worker"]
    assert api["ports"] == ["8080:8080"]
    assert "ports" not in worker, "a published port would prevent --scale worker=N"
    assert "container_name" not in worker
    assert worker["stop_grace_period"] == "30s"


def test_api_healthcheck_probes_ready(
    services: dict[str, dict[str, Any]], http_server: tuple[int, dict[str, int]]
) -> None:
    test = services["api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code = test[3]
    assert "urllib" in code
    assert "/ready" in code
    port, statuses = http_server
    statuses["/ready"] = 200
    assert run_probe(code, port) == 0
    statuses["/ready"] = 503
    assert run_probe(code, port) != 0


def test_kafka_is_a_single_node_kraft_broker(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
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
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith(":9093")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    mounts = [str(v).split(":")[1] for v in kafka.get("volumes", [])]
    assert env["KAFKA_LOG_DIRS"] in mounts, "Kafka's data must live on a volume"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_mongodb_is_pinned_persistent_and_pinged(services: dict[str, dict[str, Any]]) -> None:
    mongodb = services["mongodb"]
    assert re.fullmatch(r"mongo:\d+\.\d+(\.\d+)?", mongodb["image"])
    assert any(str(v).split(":")[1] == "/data/db" for v in mongodb["volumes"])
    test = " ".join(mongodb["healthcheck"]["test"])
    assert "mongosh" in test
    assert "ping" in test


def kafka_init_script(service: Mapping[str, Any]) -> Path:
    """The host file of the script that kafka-init's entrypoint runs."""
    script = service["entrypoint"][-1]
    for volume in service["volumes"]:
        source, target = str(volume).split(":")[:2]
        if target == script:
            return ROOT / source
    raise AssertionError(f"{script} is not mounted into kafka-init")


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
    subprocess.run(
        ["sh", str(script)],
        env={"PATH": os.environ.get("PATH", ""), **env, "KAFKA_TOPICS": str(stub)},
        check=True,
        capture_output=True,
        timeout=30,
    )
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
@pytest.mark.parametrize("prefix", ["", "staging."])
def test_kafka_init_creates_exactly_the_topics_the_app_uses(
    services: dict[str, dict[str, Any]], tmp_path: Path, prefix: str
) -> None:
    kafka_init = services["kafka-init"]
    assert kafka_init["entrypoint"][0] in ("/bin/sh", "/bin/bash", "sh", "bash")
    host_env = {"KAFKA_TOPIC_PREFIX": prefix}
    env = {k: interpolate(v, host_env) for k, v in service_env(kafka_init).items()}
    assert env["KAFKA_BOOTSTRAP"] == "kafka:9092"

    calls = run_topic_script(kafka_init_script(kafka_init), env, tmp_path)

    topics = Topics(prefix=prefix)
    default_partitions = str(Settings.model_fields["kafka_partitions"].default)
    assert set(created_topics(calls)) == set(topics.all())
    assert created_topics(calls) == {
        topics.requests: (default_partitions, "1"),
        topics.created: (default_partitions, "1"),
        topics.failed: (default_partitions, "1"),
        topics.dead_letter: ("1", "1"),
    }
    assert all(argv[argv.index("--bootstrap-server") + 1] == "kafka:9092" for argv in calls)


def test_kafka_init_follows_the_app_topic_settings(services: dict[str, dict[str, Any]]) -> None:
    init_env = service_env(services["kafka-init"])
    assert init_env["TOPIC_PARTITIONS"] == "${KAFKA_PARTITIONS:-4}"
    for name in APP_SERVICES:
        app_env = service_env(services[name])
        assert init_env["TOPIC_PREFIX"] == app_env["KAFKA_TOPIC_PREFIX"], name
        assert init_env["TOPIC_PARTITIONS"] == app_env["KAFKA_PARTITIONS"], name
        assert init_env["TOPIC_REPLICATION_FACTOR"] == app_env["KAFKA_REPLICATION_FACTOR"], name


def test_compose_hard_codes_no_secrets(services: dict[str, dict[str, Any]]) -> None:
    reference = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}")
    for name, service in services.items():
        for key, value in service_env(service).items():
            if SECRET_NAME.search(key):
                assert value == "" or reference.fullmatch(value), (
                    f"{name}: {key} must come from the host environment, not the file"
                )
                if reference.fullmatch(value) and ":-" in value:
                    assert value.endswith(":-}"), f"{name}: {key} has a default value"
            if key.endswith("_URI") and "@" in value:
                assert "${" in value, f"{name}: {key} embeds credentials"
    for name in APP_SERVICES:
        secret = service_env(services[name])["CURSOR_SECRET"]
        assert secret.startswith("${CURSOR_SECRET:?"), name
        with pytest.raises(MissingVariableError):
            interpolate(secret, {})


@pytest.fixture
def clean_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the caller's environment or a stray ``.env`` leaks in."""
    for name in SETTINGS_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_settings_env")
@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_is_valid_production_settings(
    services: dict[str, dict[str, Any]], runtime: Stage, name: str
) -> None:
    compose_env = service_env(services[name])
    unknown = set(compose_env) - SETTINGS_ENV_NAMES
    assert not unknown, f"{name}: environment names no setting (typo?): {sorted(unknown)}"

    image_env: dict[str, str] = {}
    for instruction in runtime.all("ENV"):
        image_env.update(env_pairs(instruction))
    host_env = {
        "CURSOR_SECRET": "a-random-test-value-of-some-length",
        "API_KEYS": make_entry("compose", generate_key()),
    }
    resolved = {k: interpolate(v, host_env) for k, v in compose_env.items()}
    merged = {k.lower(): v for k, v in {**image_env, **resolved}.items() if k in SETTINGS_ENV_NAMES}
    settings = Settings(**merged)

    assert settings.environment is Environment.PRODUCTION
    assert settings.api_host == "0.0.0.0"
    assert settings.json_logs
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_create_topics is False
    assert settings.mongodb_uri.get_secret_value() == "mongodb://mongodb:27017"
    assert settings.cursor_secret.get_secret_value() == host_env["CURSOR_SECRET"]
    assert settings.topics == Topics()
    if name == "api":
        assert settings.api_keys is not None, "production API refuses to start without keys"
    if name == "worker":
        # Without OPENAI_API_KEY on the host, the worker falls back to offline.
        assert settings.active_generator is GeneratorChoice.OFFLINE
