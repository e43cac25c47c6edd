"""The operator documentation and the CI workflow stay true to the project.

- docs/OPERATIONS.md has a runbook section for every alert, and every alert's
  runbook_url points at an anchor that exists there;
- docs/DEPLOYMENT.md covers every supported platform;
- environment variables and metric names named in the docs exist, and the Kafka
  security and tracing settings are documented with values the settings accept;
- relative links and anchors in the docs resolve;
- .github/workflows/ci.yml runs the project's CI entry point with pinned actions.
"""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import yaml

from persona_infra.settings import Settings
from tests.deploy.common import EXPECTED_ALERTS, ROOT, tool
from tests.support.workspace import workspace_parts

REPO = ROOT
DEPLOYMENT = REPO / "docs" / "DEPLOYMENT.md"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
DOCS = (DEPLOYMENT, OPERATIONS)
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


# Upper-case variables the docs may name that are not fields of Settings, and why.
# (The KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* names are settings.)
NON_SETTING_VARIABLES = {
    "SECRETS_DIR": "directory of secret files, read by load_settings()",
    "FORWARDED_ALLOW_IPS": "uvicorn reads it: the app's uvicorn.run sets no forwarded_allow_ips",
    "TEST_MONGODB_URI": "the test suite: use an existing database",
    "GRAFANA_ADMIN_USER": "docker-compose.yml: Grafana's admin login (default admin)",
    "GRAFANA_ADMIN_PASSWORD": "docker-compose.yml: Grafana's admin password (required)",
    "OTEL_TRACES_SAMPLER": "OpenTelemetry SDK: the TracerProvider reads it",
    "OTEL_TRACES_SAMPLER_ARG": "OpenTelemetry SDK: the TracerProvider reads it",
    # Config vars that the Apache Kafka on Heroku add-on sets; the Heroku wrapper in
    # DEPLOYMENT.md turns them into settings (PEM contents -> KAFKA_SSL_*_FILE files).
    "KAFKA_URL": "Heroku add-on: kafka+ssl:// broker URLs",
    "KAFKA_PREFIX": "Heroku add-on: topic and group prefix of multi-tenant plans",
    "KAFKA_TRUSTED_CERT": "Heroku add-on: the cluster's CA, PEM contents",
    "KAFKA_CLIENT_CERT": "Heroku add-on: client certificate, PEM contents",
    "KAFKA_CLIENT_CERT_KEY": "Heroku add-on: client key, PEM contents",
}
# Families of variables read by libraries, not by Settings.
NON_SETTING_PREFIXES = {
    "OTEL_EXPORTER_OTLP_": "OpenTelemetry's OTLP exporter reads these itself (endpoint...)",
}
# Settings that DEPLOYMENT.md must document itself (not only the README's table).
DEPLOYMENT_SETTING_PREFIXES = ("kafka_security_", "kafka_sasl_", "kafka_ssl_", "otel_")

# The project's own metrics (operations contract); exporters' metrics are not checked.
PERSONA_METRICS = frozenset(
    {
        "persona_memory_limit_bytes",
        "persona_dependency_up",
        "persona_requests_consumed_total",
        "persona_stored_total",
        "persona_events_published_total",
        "persona_dead_letters_total",
        "persona_ordinals_failed_total",
        "persona_llm_calls_total",
        *(f"persona_llm_call_duration_seconds{s}" for s in ("_bucket", "_sum", "_count")),
        "persona_llm_tokens_total",
        "persona_llm_cost_usd_total",
        "persona_near_duplicates_total",
        "persona_generations_in_flight",
        "persona_llm_concurrency_limit",
        "persona_requests_in_flight",
        *(f"persona_insert_batch_size{s}" for s in ("_bucket", "_sum", "_count")),
        "persona_consumer_lag_messages",
    }
)

PLATFORMS = ("docker compose", "kubectl apply -k", "ECS", "Cloud Run", "Heroku")
OPERATIONS_SECTIONS = (
    "Scaling workers and partitions",
    "Replaying the DLQ",
    "Rebuilding stats",
    "Backup and restore of MongoDB",
    "Rotating API keys",
    "Rotating the OpenAI key",
    "Logs",
    "Graceful shutdown and drain",
)

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
UPPER_SNAKE = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
# `$NAME` is a shell variable of an example (`$BOOTSTRAP`, `$ADMIN_KEY`), not a setting.
VARIABLE_IN_PROSE = re.compile(rf"(?<![A-Za-z0-9_$]){UPPER_SNAKE}(?![A-Za-z0-9_])")
# In code blocks only assignments and definitions count: NAME=value, NAME: value,
# "name": "NAME" (ECS task definitions).
VARIABLE_IN_CODE = re.compile(
    rf"(?<![A-Za-z0-9_$.])({UPPER_SNAKE})(?:=|:\s)|\"name\":\s*\"({UPPER_SNAKE})\""
)
METRIC = re.compile(r"(?<![A-Za-z0-9_])personas?_[a-z0-9_]+")
# `personas_...` is a metric only with a metric's ending (not e.g. a database name).
METRIC_ENDING = re.compile(r"_(total|bytes|seconds|bucket|sum|count|messages|up|flight|size)$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
PINNED_ACTION = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@v\d+$")


def _read(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    return path.read_text(encoding="utf-8")


def _split_fences(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, code lines) of a Markdown document."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append(line)
    return prose, code


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: no markup, lower case, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _headings(path: Path) -> list[tuple[int, str]]:
    prose, _ = _split_fences(_read(path))
    return [(len(m.group(1)), m.group(2)) for line in prose if (m := HEADING.match(line))]


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for _, text in _headings(path):
        slug = _slug(text)
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def _alert_rules() -> list[dict[str, Any]]:
    rules = []
    for file in sorted(RULES_DIR.glob("*.y*ml")):
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for group in document.get("groups", []):
            rules.extend(r for r in group.get("rules", []) if "alert" in r)
    return rules


def _expected_alerts() -> set[str]:
    names = {rule["alert"] for rule in _alert_rules()}
    return names or set(EXPECTED_ALERTS)


def _alert_sections() -> dict[str, str]:
    """``### <name>`` sections of OPERATIONS.md's Alerts chapter, name -> body."""
    prose, _ = _split_fences(_read(OPERATIONS))
    text = _read(OPERATIONS)
    sections: dict[str, str] = {}
    names = [m.group(2) for line in prose if (m := HEADING.match(line)) and len(m.group(1)) == 3]
    for name in names:
        start = text.index(f"\n### {name}\n")
        end = min(
            (i for i in (text.find("\n### ", start + 1), text.find("\n## ", start + 1)) if i >= 0),
            default=len(text),
        )
        sections[name] = text[start:end]
    return sections


def _documented_variables() -> Iterator[tuple[Path, str]]:
    for path in DOCS:
        prose, code = _split_fences(_read(path))
        for line in prose:
            for span in INLINE_CODE.finditer(line):
                for name in VARIABLE_IN_PROSE.findall(span.group(2)):
                    yield path, name
        for line in code:
            for match in VARIABLE_IN_CODE.finditer(line):
                yield path, match.group(1) or match.group(2)


def _literal_values(annotation: Any) -> set[str]:
    """The string values of every ``Literal`` inside a (possibly nested) annotation."""
    if get_origin(annotation) is Literal:
        return {value for value in get_args(annotation) if isinstance(value, str)}
    return {value for arg in get_args(annotation) for value in _literal_values(arg)}


def _setting_values() -> dict[str, set[str]]:
    """Upper-case setting name -> the values its Literal type allows (if it has one)."""
    return {
        name.upper(): values
        for name, field in Settings.model_fields.items()
        if (values := _literal_values(field.annotation))
    }


def _is_known_variable(name: str) -> bool:
    return (
        name.lower() in Settings.model_fields
        or name in NON_SETTING_VARIABLES
        or name.startswith(tuple(NON_SETTING_PREFIXES))
    )


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(_read(WORKFLOW))
    assert isinstance(data, dict), ".github/workflows/ci.yml is not a YAML mapping"
    return data


def _steps(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow.get("jobs", {}).items():
        for step in job.get("steps", []):
            yield job_id, step


def test_every_alert_has_a_runbook_section() -> None:
    documented = set(_alert_sections())
    missing = sorted(_expected_alerts() - documented)
    assert not missing, f"add a `### <name>` runbook to docs/OPERATIONS.md for: {missing}"


def test_the_contract_alerts_are_documented() -> None:
    missing = sorted(EXPECTED_ALERTS - set(_alert_sections()))
    assert not missing, f"docs/OPERATIONS.md lacks runbooks for the contract's alerts: {missing}"


def test_no_runbook_for_an_alert_that_does_not_exist() -> None:
    if not _alert_rules():
        pytest.skip("no alert rules under deploy/prometheus/rules yet")
    alerts = _expected_alerts()
    stale = sorted(
        name for name in _alert_sections() if name.startswith("Persona") and name not in alerts
    )
    assert not stale, f"runbooks in docs/OPERATIONS.md for alerts no rule defines: {stale}"


def test_runbooks_say_what_it_means_what_to_check_and_what_to_do() -> None:
    sections = _alert_sections()
    incomplete = {
        name: [part for part in ("**Means.**", "**Check.**", "**Act.**") if part not in body]
        for name, body in sections.items()
        if name in _expected_alerts()
    }
    incomplete = {name: parts for name, parts in incomplete.items() if parts}
    assert not incomplete, f"runbook sections missing parts (add them): {incomplete}"


def test_runbook_urls_point_at_existing_anchors() -> None:
    rules = _alert_rules()
    if not rules:
        pytest.skip("no alert rules under deploy/prometheus/rules yet")
    anchors = _anchors(OPERATIONS)
    problems = []
    for rule in rules:
        url = (rule.get("annotations") or {}).get("runbook_url")
        if url is None:
            problems.append(f"{rule['alert']}: no runbook_url annotation")
            continue
        path, _, anchor = url.partition("#")
        if not path.endswith("docs/OPERATIONS.md") or not anchor:
            problems.append(f"{rule['alert']}: {url} is not a docs/OPERATIONS.md#anchor link")
        elif anchor not in anchors:
            problems.append(f"{rule['alert']}: anchor #{anchor} is not a heading of OPERATIONS.md")
        elif anchor != _slug(rule["alert"]):
            problems.append(f"{rule['alert']}: links to #{anchor}, not to its own section")
    assert not problems, "fix the runbook_url annotations or the headings:\n" + "\n".join(problems)


def test_deployment_covers_every_platform() -> None:
    text = _read(DEPLOYMENT)
    missing = [platform for platform in PLATFORMS if platform not in text]
    assert not missing, f"docs/DEPLOYMENT.md does not mention: {missing}"


def test_operations_has_the_procedures() -> None:
    headings = {text for level, text in _headings(OPERATIONS) if level == 2}
    missing = [section for section in OPERATIONS_SECTIONS if section not in headings]
    assert not missing, f"docs/OPERATIONS.md lacks the `## ` sections: {missing}"


def test_documented_variables_are_settings() -> None:
    # Upper-case values of settings (`SASL_SSL`, `PLAINTEXT`) are values, not variables.
    values = {value for allowed in _setting_values().values() for value in allowed}
    unknown = sorted(
        {
            f"{path.name}: {name}"
            for path, name in _documented_variables()
            if not _is_known_variable(name) and name not in values
        }
    )
    assert not unknown, (
        "these variables are neither settings (persona_infra.settings.Settings) nor in "
        "NON_SETTING_VARIABLES / NON_SETTING_PREFIXES of this test; fix the docs or extend "
        f"the list with a reason: {unknown}"
    )


def test_deployment_documents_kafka_security_and_tracing() -> None:
    text = _read(DEPLOYMENT)
    missing = sorted(
        name.upper()
        for name in Settings.model_fields
        if name.startswith(DEPLOYMENT_SETTING_PREFIXES) and f"`{name.upper()}`" not in text
    )
    assert not missing, f"docs/DEPLOYMENT.md does not document these settings: {missing}"


def test_example_values_of_choice_settings_are_accepted() -> None:
    """`NAME=value`, `NAME: value` and ECS's `"name": "NAME", "value": "value"` in the docs."""
    allowed = _setting_values()
    names = "|".join(re.escape(name) for name in allowed)
    assignment = re.compile(
        rf"(?<![A-Za-z0-9_])({names})(?:=|:[ \t]*|\",\s*\"value\":\s*)[\"']?([A-Za-z0-9_-]+)"
    )
    wrong = sorted(
        {
            f"{path.name}: {name}={value} (allowed: {sorted(allowed[name])})"
            for path in DOCS
            for name, value in assignment.findall(_read(path))
            if value not in allowed[name]
        }
    )
    assert not wrong, f"the docs give settings values they refuse: {wrong}"


# Import names of the parts, which the docs name and which are no metrics.
PACKAGES = frozenset({"persona_pipeline", *(part.package for part in workspace_parts())})


def test_documented_metrics_exist() -> None:
    unknown = sorted(
        {
            f"{path.name}: {name}"
            for path in DOCS
            for name in METRIC.findall(_read(path))
            if name not in PERSONA_METRICS
            and name not in PACKAGES
            and (name.startswith("persona_") or METRIC_ENDING.search(name))
        }
    )
    assert not unknown, f"metric names in the docs that the services do not export: {unknown}"


def test_relative_links_and_anchors_resolve() -> None:
    problems = []
    for path in DOCS:
        prose, _ = _split_fences(_read(path))
        for target in LINK.findall("\n".join(prose)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{path.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                problems.append(f"{path.name}: {target} (no such heading)")
    assert not problems, "broken links in the docs:\n" + "\n".join(problems)


def test_ci_workflow_runs_the_ci_entry_point() -> None:
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # PyYAML reads a bare `on` as True
    trigger_names = set(triggers) if isinstance(triggers, dict | list) else {triggers}
    assert {"push", "pull_request"} <= trigger_names, "ci.yml must run on push and pull_request"
    assert workflow.get("permissions") == {"contents": "read"}, "ci.yml: permissions contents: read"
    runs = [step.get("run", "") for _, step in _steps(workflow)]
    assert any("bash .ci/run" in run for run in runs), "ci.yml must run `bash .ci/run`"


def test_ci_workflow_pins_actions_by_major_version() -> None:
    uses = [(job, step["uses"]) for job, step in _steps(_workflow()) if "uses" in step]
    assert uses, "ci.yml uses no actions at all"
    loose = [f"{job}: {action}" for job, action in uses if not PINNED_ACTION.match(action)]
    assert not loose, f"pin these actions to a major version (owner/name@vN): {loose}"


def test_ci_workflow_passes_yamllint() -> None:
    yamllint = tool("yamllint")
    config = (
        "{extends: default, rules: {line-length: {max: 120}, document-start: disable, "
        "truthy: {check-keys: false}}}"
    )
    result = subprocess.run(
        [yamllint, "-f", "parsable", "-d", config, str(WORKFLOW.parent.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"yamllint found problems in .github:\n{result.stdout}"
