"""The Dockerfile and .dockerignore, checked without a Docker engine.

* ``hadolint`` lints the Dockerfile (no findings allowed).
* ``dockerfile-parse`` reads it (continuations, stages, ``ARG`` defaults in ``FROM``);
  the tests check the build layout, the runtime user, environment and probes.
* The image's HEALTHCHECK command, ``persona healthcheck``, is run against local
  HTTP servers to show it passes and fails when it should.
* ``.dockerignore`` is checked with a simplified version of Docker's matching.
* The console stage's npm files match what ``scripts/console-assets.sh`` installs for a
  checkout, and the API's wheel takes them although git ignores them.
"""

import fnmatch
import json
import os
import re
import shlex
import socket
import subprocess
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from persona_infra.settings import Environment, Settings
from tests.deploy.common import BIN, ROOT, duration_seconds, tool
from tests.support.workspace import workspace_parts

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTINGS_ENV_NAMES = frozenset(name.upper() for name in Settings.model_fields)
STANDARD_ENV_PREFIXES = ("PYTHON", "PIP_")
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
NON_ROOT_USERS = {"1000", "1000:1000"}
# A patch-pinned slim CPython image, optionally with a digest.
PINNED_SLIM_PYTHON = re.compile(r"python:3\.\d+\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?")
# A patch-pinned Node image of any variant, optionally with a digest (it only runs npm ci).
PINNED_NODE = re.compile(r"node:\d+\.\d+\.\d+(-[a-z0-9.]+)*(@sha256:[0-9a-f]{64})?")
CONSOLE_ASSETS_SH = ROOT / "scripts" / "console-assets.sh"
# The npm ci flags that decide what is installed: no dev packages, no install scripts.
NPM_CI_FLAGS = frozenset({"--omit=dev", "--ignore-scripts"})
API_PORT = Settings.model_fields["api_port"].default
WORKER_PORT = Settings.model_fields["worker_port"].default


# --------------------------------------------------------------------------- #
# The Dockerfile as dockerfile-parse reads it, split into stages
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str  # continuations joined, as dockerfile-parse gives it
    line: int  # 1-based
    pairs: dict[str, str]  # the key/value pairs of an ENV or ARG


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

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for instruction in self.all("ENV"):
            merged.update(instruction.pairs)
        return merged


def read_dockerfile() -> tuple[list[Instruction], list[Stage]]:
    parser = DockerfileParser(path=str(DOCKERFILE), cache_content=True)
    instructions: list[Instruction] = []
    for item, context in zip(parser.structure, parser.context_structure, strict=True):
        keyword = item["instruction"]
        if keyword == "COMMENT":
            continue
        pairs = {"ENV": context.line_envs, "ARG": context.line_args}.get(keyword, {})
        instructions.append(Instruction(keyword, item["value"], item["startline"] + 1, pairs))
    # parent_images has the FROM images with global ARG defaults substituted.
    bases = iter(parser.parent_images)
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.value.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(next(bases), name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return instructions, stages


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return read_dockerfile()[0]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return read_dockerfile()[1]


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def console(stages: list[Stage]) -> Stage:
    found = [stage for stage in stages if stage.base.startswith("node:")]
    assert len(found) == 1, "expected one Node stage, which installs the console's npm files"
    return found[0]


@pytest.fixture(scope="module")
def python_stages(stages: list[Stage], console: Stage) -> list[Stage]:
    return [stage for stage in stages if stage is not console]


@pytest.fixture(scope="module")
def builder(python_stages: list[Stage]) -> Stage:
    return python_stages[0]


@dataclass(frozen=True)
class ConsoleAssets:
    """What ``scripts/console-assets.sh`` installs, read from its variables."""

    web: str  # the npm project (package.json, package-lock.json), from the repository root
    vendor: str  # the folder the files go to, from the repository root
    files: dict[str, str]  # source under node_modules -> name in the vendor folder


def console_assets() -> ConsoleAssets:
    text = CONSOLE_ASSETS_SH.read_text(encoding="utf-8")

    def variable(name: str) -> str:
        match = re.search(rf"^{name}=(\S+)$", text, re.MULTILINE)
        assert match, f"{CONSOLE_ASSETS_SH.name} sets no {name}=..."
        return match[1]

    block = re.search(r"^assets=\(\n(.*?)^\)", text, re.MULTILINE | re.DOTALL)
    assert block, f"{CONSOLE_ASSETS_SH.name} has no assets=( ... ) list"
    files = {}
    for line in block[1].splitlines():
        (entry,) = shlex.split(line)
        source, name = entry.split()
        files[source] = name
    assert files, f"{CONSOLE_ASSETS_SH.name} installs no files"
    return ConsoleAssets(variable("web"), variable("vendor"), files)


def exec_form(instruction: Instruction, value: str | None = None) -> list[str]:
    """The JSON-array (exec form) arguments of an instruction."""
    try:
        parsed = json.loads(instruction.value if value is None else value)
    except json.JSONDecodeError:
        parsed = None
    assert isinstance(parsed, list), (
        f"Dockerfile line {instruction.line}: {instruction.keyword} must use the exec form "
        '(a JSON array like ["persona", "api"]) so the process is PID 1 and gets SIGTERM'
    )
    assert parsed, f"Dockerfile line {instruction.line}: empty exec form"
    assert all(isinstance(v, str) for v in parsed), f"line {instruction.line}: non-string item"
    return parsed


def copy_sources(instruction: Instruction) -> list[str]:
    """Build-context sources of a ``COPY``/``ADD`` (none for ``--from=<stage>``)."""
    if instruction.value.lstrip().startswith("["):
        words = exec_form(instruction)
    else:
        words = shlex.split(instruction.value)
    if any(w.startswith("--from") for w in words):
        return []
    return [w for w in words if not w.startswith("--")][:-1]


def context_bind_mounts(instruction: Instruction) -> list[str]:
    """Sources of ``RUN --mount=type=bind`` mounts that read the build context."""
    sources = []
    for word in shlex.split(instruction.value):
        if not word.startswith("--mount="):
            continue
        options = dict(o.partition("=")[::2] for o in word.removeprefix("--mount=").split(","))
        if options.get("type") == "bind" and "from" not in options:
            sources.append(options.get("source", "."))
    return sources


# --------------------------------------------------------------------------- #
# hadolint
# --------------------------------------------------------------------------- #


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, (
        f"hadolint findings in Dockerfile:\n{result.stdout}{result.stderr}"
    )


# --------------------------------------------------------------------------- #
# Build layout
# --------------------------------------------------------------------------- #


def test_dockerfile_is_multi_stage_on_one_pinned_slim_python(
    stages: list[Stage], python_stages: list[Stage]
) -> None:
    assert len(python_stages) >= 2, "expected a build stage and a runtime stage (two FROMs)"
    assert stages[-1] is python_stages[-1], "the runtime (last) stage must be a Python one"
    for stage in python_stages:
        assert PINNED_SLIM_PYTHON.fullmatch(stage.base), (
            f"stage {stage.name}: base image {stage.base!r} is not a patch-pinned python slim "
            "image like python:3.11.14-slim-bookworm (a digest may follow)"
        )
    assert len({stage.base for stage in python_stages}) == 1, (
        f"the stages use different base images {sorted({s.base for s in python_stages})}: the "
        "wheels built in one must match the interpreter of the other"
    )
    builder = python_stages[0]
    assert builder.name, "the build stage must be named so the runtime can refer to it"
    runtime_text = " ".join(i.value for i in stages[-1].instructions)
    assert f"from={builder.name}" in runtime_text, "the runtime stage does not take the wheels"


def test_builder_builds_wheels_of_runtime_dependencies_only(
    builder: Stage, instructions: list[Instruction]
) -> None:
    runs = [i.value for i in builder.all("RUN")]
    project = [r for r in runs if re.search(r"pip wheel --no-deps\b.* \.$", r)]
    dependencies = [r for r in runs if "pip wheel" in r and "--no-deps" not in r]
    assert project, "the build stage does not build the project's wheel (pip wheel --no-deps .)"
    assert dependencies, "the build stage does not build the dependencies' wheels"
    for run in project + dependencies:
        assert "--wheel-dir /wheels" in run, f"pip wheel without --wheel-dir /wheels: {run}"
    every_run = " ".join(i.value for i in instructions if i.keyword == "RUN")
    assert "optional-dependencies" not in every_run, "the image must not take optional extras"
    for extra in ("[embedded", "[test", "embedded]", "test]"):
        assert extra not in every_run, f"dev-only extra {extra!r} must not enter the image"


def test_builder_builds_a_wheel_of_every_part(builder: Stage) -> None:
    runs = [i.value for i in builder.all("RUN")]
    copies = [i.value.split() for i in builder.all("COPY")]
    parts_wheels = [r for r in runs if "pip wheel --no-deps" in r]
    assert parts_wheels, "the build stage builds no wheel of the parts"
    for part in workspace_parts():
        assert f"./{part.folder} " in parts_wheels[0] + " ", (
            f"the image would lack {part.distribution}: add ./{part.folder} to pip wheel --no-deps"
        )
        # Into the part's own folder: the dry-run resolve reads ./<folder>/pyproject.toml.
        assert [f"{part.folder}/pyproject.toml", f"{part.folder}/"] in copies, (
            f"{part.folder}/pyproject.toml is not copied to {part.folder}/ before the "
            "dependencies are resolved, so its dependencies would be missing from the image"
        )


def test_console_stage_runs_npm_ci_from_the_lockfile_on_a_pinned_node(console: Stage) -> None:
    assert PINNED_NODE.fullmatch(console.base), (
        f"the console stage's image {console.base!r} is not patch-pinned like "
        "node:24.11.1-bookworm-slim (a digest may follow)"
    )
    assert console.name, "the console stage must be named so the builder can copy from it"
    web = console_assets().web
    sources = sorted(s for i in console.all("COPY") for s in copy_sources(i))
    assert sources == [f"{web}/package-lock.json", f"{web}/package.json"], (
        f"the console stage copies {sources}: only the npm manifests, so its layer is cached "
        "until the lockfile changes"
    )
    runs = [shlex.split(i.value) for i in console.all("RUN")]
    assert any(run[:2] == ["npm", "ci"] and set(run) >= NPM_CI_FLAGS for run in runs), (
        f"the console stage must run npm ci {' '.join(sorted(NPM_CI_FLAGS))} (the lockfile's "
        "exact packages, without dev packages or install scripts)"
    )
    assert not any("install" in run for run in runs), "npm install may change the lockfile"
    script_ci = re.search(r"^npm ci\b.*$", CONSOLE_ASSETS_SH.read_text(encoding="utf-8"), re.M)
    assert script_ci, f"{CONSOLE_ASSETS_SH.name} runs no npm ci"
    assert set(script_ci[0].split()) >= NPM_CI_FLAGS, (
        f"{CONSOLE_ASSETS_SH.name} installs otherwise than the image: {script_ci[0]}"
    )


def test_builder_copies_what_console_assets_sh_installs(builder: Stage, console: Stage) -> None:
    assets = console_assets()
    workdir = console.last("WORKDIR")
    assert workdir is not None, "the console stage has no WORKDIR"
    node_modules = f"{workdir.value.rstrip('/')}/node_modules/"
    copied: dict[str, str] = {}
    copy_positions = []
    for instruction in builder.all("COPY"):
        words = shlex.split(instruction.value)
        if f"--from={console.name}" not in words:
            continue
        *sources, destination = [w for w in words if not w.startswith("--")]
        assert len(sources) == 1, f"line {instruction.line}: copy one file per COPY, renamed"
        assert sources[0].startswith(node_modules), f"line {instruction.line}: not node_modules"
        copied[sources[0].removeprefix(node_modules)] = destination.removeprefix("./")
        copy_positions.append(builder.instructions.index(instruction))
    expected = {source: f"{assets.vendor}/{name}" for source, name in assets.files.items()}
    assert copied == expected, (
        f"the builder copies {copied} from the console stage; scripts/console-assets.sh "
        f"installs {expected} (source under node_modules -> path from the repository root)"
    )
    # The builder's WORKDIR mirrors the repository: `COPY api ./api`, then the vendor files
    # into it, then the API's wheel.
    wheels = [builder.instructions.index(i) for i in builder.all("RUN") if "--no-deps" in i.value]
    assert wheels, "the builder builds no wheel of the parts"
    assert max(copy_positions) < min(wheels), (
        "the API's wheel is built before the console's files are in"
    )


def test_the_api_wheel_takes_the_console_files_git_ignores() -> None:
    assets = console_assets()
    pyproject = tomllib.loads((ROOT / "api" / "pyproject.toml").read_text(encoding="utf-8"))
    artifacts = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"].get("artifacts", [])
    vendor = Path(assets.vendor).relative_to("api").as_posix()
    for name in assets.files.values():
        assert any(fnmatch.fnmatchcase(f"{vendor}/{name}", a) for a in artifacts), (
            f"api/pyproject.toml: no [tool.hatch.build.targets.wheel] artifacts pattern takes "
            f"{vendor}/{name}; hatchling leaves out what git ignores"
        )


def test_runtime_installs_offline_from_the_wheels_without_compilers(runtime: Stage) -> None:
    runs = [i.value for i in runtime.all("RUN")]
    installs = [r for r in runs if "pip install" in r]
    assert installs, "the runtime stage installs nothing"
    for flag in ("--no-cache-dir", "--no-index", "--find-links /wheels"):
        for install in installs:
            assert flag in install, f"pip install in the runtime stage lacks {flag}: {install}"
    joined = " ".join(runs)
    assert "pip wheel" not in joined, "the runtime stage must not build wheels"
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang|make)\b", joined), (
        "the runtime stage must not install compilers"
    )


def test_runtime_runs_as_the_unprivileged_app_user(runtime: Stage) -> None:
    user = runtime.last("USER")
    assert user is not None, "the runtime stage has no USER: the container would run as root"
    assert user.value in NON_ROOT_USERS, f"USER {user.value}: use the numeric 1000:1000"
    runs = " ".join(i.value for i in runtime.all("RUN"))
    assert re.search(r"groupadd\b.*--gid 1000 app\b", runs), "no group app with GID 1000"
    assert re.search(r"useradd\b[^&;]*--uid 1000\b[^&;]* app\b", runs), "no user app, UID 1000"
    # USER comes after every RUN: only the build steps run as root, never the container.
    last_run = max(runtime.instructions.index(i) for i in runtime.all("RUN"))
    assert runtime.instructions.index(user) > last_run, "a RUN follows the final USER"


def test_runtime_environment_is_production_and_names_real_settings(runtime: Stage) -> None:
    env = runtime.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("ENVIRONMENT") == Environment.PRODUCTION.value
    # Both processes listen on every interface inside the container.
    assert env.get("API_HOST") == "0.0.0.0"
    assert env.get("WORKER_HOST") == "0.0.0.0"
    assert env.get("LOG_FORMAT") == "json"
    app_names = {name for name in env if not name.startswith(STANDARD_ENV_PREFIXES)}
    unknown = sorted(app_names - SETTINGS_ENV_NAMES)
    assert not unknown, f"runtime ENV names no setting (typo?): {unknown}"


def test_no_secrets_add_or_unwanted_files_in_the_image(instructions: list[Instruction]) -> None:
    for instruction in instructions:
        where = f"Dockerfile line {instruction.line}"
        assert instruction.keyword != "ADD", (
            f"{where}: use COPY, not ADD (ADD fetches URLs and unpacks archives)"
        )
        for name in instruction.pairs:
            assert not SECRET_NAME.search(name), (
                f"{where}: {instruction.keyword} {name} looks like a secret; secrets come from "
                "the environment or SECRETS_DIR at run time, never from the image"
            )
        if instruction.keyword == "COPY":
            for source in copy_sources(instruction):
                parts = Path(source).parts
                first = parts[0] if parts else source
                assert not Path(source).name.startswith(".env"), f"{where}: COPY {source}"
                assert first not in {".", "tests", "secrets", ".git", ".venv", ".data", ".env"}, (
                    f"{where}: COPY {source} brings unwanted files into the image"
                )


def test_entrypoint_and_cmd_are_exec_form(runtime: Stage) -> None:
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert entrypoint is not None, "the runtime stage has no ENTRYPOINT"
    assert cmd is not None, "the runtime stage has no CMD"
    assert exec_form(entrypoint) == ["persona"]
    assert exec_form(cmd) == ["api"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "persona" in pyproject["project"]["scripts"], (
        "ENTRYPOINT names a console script the package does not define"
    )


def test_stops_with_sigterm(runtime: Stage) -> None:
    stopsignal = runtime.last("STOPSIGNAL")
    assert stopsignal is not None, "no STOPSIGNAL: the worker drains on SIGTERM"
    assert stopsignal.value == "SIGTERM"


def test_exposes_the_api_and_worker_ports(runtime: Stage) -> None:
    exposed = {p.split("/")[0] for i in runtime.all("EXPOSE") for p in i.value.split()}
    env = runtime.env()
    for name, default in (("API_PORT", API_PORT), ("WORKER_PORT", WORKER_PORT)):
        port = env.get(name, str(default))
        assert port in exposed, f"EXPOSE lacks {name} {port} (exposed: {sorted(exposed)})"
    assert {"8080", "8081"} <= exposed


# --------------------------------------------------------------------------- #
# HEALTHCHECK: `persona healthcheck`, run for real
# --------------------------------------------------------------------------- #


def healthcheck(runtime: Stage) -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options (``--interval`` -> ``30s``) and its exec-form command."""
    instruction = runtime.last("HEALTHCHECK")
    assert instruction is not None, "the runtime stage has no HEALTHCHECK"
    assert instruction.value.strip().upper() != "NONE", "HEALTHCHECK NONE disables the probe"
    match = re.fullmatch(r"(?P<options>(?:--\S+\s+)*)CMD\s+(?P<command>.+)", instruction.value)
    assert match, f"Dockerfile line {instruction.line}: HEALTHCHECK [OPTIONS] CMD [...] expected"
    options = dict(o.removeprefix("--").split("=", 1) for o in match["options"].split())
    return options, exec_form(instruction, match["command"])


def test_healthcheck_runs_persona_healthcheck(runtime: Stage) -> None:
    options, argv = healthcheck(runtime)
    assert argv[:2] == ["persona", "healthcheck"], (
        f"HEALTHCHECK runs {argv}; expected the exec form ['persona', 'healthcheck', ...]"
    )
    for option in ("interval", "timeout", "retries"):
        assert option in options, f"HEALTHCHECK lacks --{option}"
    if "--timeout" in argv:
        probe_timeout = float(argv[argv.index("--timeout") + 1])
        assert probe_timeout < duration_seconds(options["timeout"]), (
            "persona healthcheck's --timeout must stay below the HEALTHCHECK --timeout"
        )


class _StatusServer(HTTPServer):
    status: int


class _StatusHandler(BaseHTTPRequestHandler):
    server: _StatusServer

    def do_GET(self) -> None:
        self.send_response(self.server.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[int], int]]:
    """Start a local server answering /health with a status; returns its port."""
    servers: list[tuple[_StatusServer, threading.Thread]] = []

    def start(status: int) -> int:
        server = _StatusServer(("127.0.0.1", 0), _StatusHandler)
        server.status = status
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return int(server.server_address[1])

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A local port nothing listens on (free when this returns)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_healthcheck(runtime: Stage, tmp_path: Path, api_port: int, worker_port: int) -> int:
    """Exit code of the image's healthcheck command pointed at local ports."""
    _, argv = healthcheck(runtime)
    argv = [str(BIN / "persona"), *argv[1:]]
    if "--timeout" in argv:
        argv[argv.index("--timeout") + 1] = "1"
    else:
        argv += ["--timeout", "1"]
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_ENV_NAMES}
    env.pop("SECRETS_DIR", None)
    env.update({"API_PORT": str(api_port), "WORKER_PORT": str(worker_port)})
    # cwd: no stray .env is read.
    result = subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    return result.returncode


def test_healthcheck_passes_when_the_api_answers(
    runtime: Stage, tmp_path: Path, serve: Callable[[int], int]
) -> None:
    assert run_healthcheck(runtime, tmp_path, serve(200), closed_port()) == 0


def test_healthcheck_passes_when_the_worker_answers(
    runtime: Stage, tmp_path: Path, serve: Callable[[int], int]
) -> None:
    assert run_healthcheck(runtime, tmp_path, closed_port(), serve(200)) == 0


def test_healthcheck_fails_on_an_error_status(
    runtime: Stage, tmp_path: Path, serve: Callable[[int], int]
) -> None:
    assert run_healthcheck(runtime, tmp_path, serve(500), closed_port()) != 0


def test_healthcheck_fails_when_nothing_listens(runtime: Stage, tmp_path: Path) -> None:
    assert run_healthcheck(runtime, tmp_path, closed_port(), closed_port()) != 0


# --------------------------------------------------------------------------- #
# .dockerignore
# --------------------------------------------------------------------------- #


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Simplified Docker matching: a pattern excluding a directory excludes its contents."""
    parts = path.strip("/").split("/")
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
    negations = [p for p in dockerignore_patterns() if p.startswith("!")]
    assert not negations, f".dockerignore negations are not supported here: {negations}"


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".data/kafka/meta.properties",
        ".env",
        ".env.production",
        "src/.env",
        "tests/deploy/test_dockerfile.py",
        "bench/run.py",
        "docs/DEPLOYMENT.md",
        "deploy/compose/create-topics.sh",
        "deploy/k8s/base/kustomization.yaml",
        "infra/persona_infra/__pycache__/settings.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        ".pytest_cache/README.md",
        "dist/persona_pipeline-0.1.0-py3-none-any.whl",
        "build/lib/x.py",
    ],
)
def test_dockerignore_excludes(path: str) -> None:
    assert is_ignored(path, dockerignore_patterns()), f".dockerignore lets {path} into the context"


def test_dockerignore_keeps_node_modules_out_and_the_npm_manifests_in() -> None:
    patterns = dockerignore_patterns()
    assets = console_assets()
    local = [
        f"{assets.web}/node_modules/chart.js/package.json",
        "node_modules/x/index.js",
        *(f"{assets.vendor}/{name}" for name in assets.files.values()),
    ]
    for path in local:
        assert is_ignored(path, patterns), (
            f".dockerignore lets {path} into the context: the console stage's npm ci alone "
            "decides the image's npm files"
        )
    for path in (f"{assets.web}/package.json", f"{assets.web}/package-lock.json"):
        assert not is_ignored(path, patterns), f".dockerignore keeps out {path}, which npm ci reads"
        assert (ROOT / path).is_file(), f"{path} is missing"


def test_dockerignore_keeps_everything_the_build_reads(instructions: list[Instruction]) -> None:
    patterns = dockerignore_patterns()
    sources = [s for i in instructions if i.keyword == "COPY" for s in copy_sources(i)]
    sources += [s for i in instructions if i.keyword == "RUN" for s in context_bind_mounts(i)]
    assert sources, "the Dockerfile copies nothing from the build context"
    needed = [
        "pyproject.toml",
        "README.md",
        "src/persona_pipeline/__init__.py",
        *(f"{part.folder}/pyproject.toml" for part in workspace_parts()),
    ]
    for path in [*sources, *needed]:
        assert not is_ignored(path, patterns), f"{path} is needed by the build but ignored"
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
