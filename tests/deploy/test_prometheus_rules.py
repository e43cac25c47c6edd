"""Prometheus configuration and rules (deploy/prometheus): promtool accepts them,
the alerts are the documented ones, every alert is unit-tested both ways, and
every metric the rules query is one the services export.
"""

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.common import EXPECTED_ALERTS
from tests.deploy.promql import (
    PROMETHEUS_DIR,
    RULE_TESTS_DIR,
    RULES_DIR,
    assert_promtool_ok,
    metric_names,
    run_promtool,
    unknown_metrics,
)

COMPOSE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
KUBERNETES_CONFIG = PROMETHEUS_DIR / "prometheus-kubernetes.yml"
ALERTS_FILE = RULES_DIR / "persona-alerts.yml"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TEST_FILES = sorted(RULE_TESTS_DIR.glob("*.yml"))

RUNBOOK_BASE = "https://github.com/persona-pipeline/persona-pipeline/blob/main/docs/OPERATIONS.md#"
SEVERITIES = {"critical", "warning"}
CONTAINER_RULES_GLOB = "/etc/prometheus/rules/*.yml"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules(*, kind: str) -> list[dict[str, Any]]:
    """Every rule of ``kind`` ("alert" or "record") across the rules files."""
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


def alerts() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for rule in rules(kind="alert"):
        assert rule["alert"] not in found, f"alert {rule['alert']} is defined twice"
        found[rule["alert"]] = rule
    return found


def check_config_with_rules(config: dict[str, Any], tmp_path: Path) -> str:
    """``promtool check config`` on ``config`` with the repository's rules beside it.

    The rules are copied to ``rules/`` next to the written config, so promtool
    really loads and checks them; the output must name every rules file.
    """
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    config = {**config, "rule_files": ["rules/*.yml"]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    output = assert_promtool_ok(run_promtool("check", "config", path), "the scrape config")
    for rules_file in RULE_FILES:
        assert f"rules/{rules_file.name}" in output, (
            f"promtool check config did not read {rules_file.name}:\n{output}"
        )
    assert "rules found" in output, output
    return output


def scrape_job(config: dict[str, Any], name: str) -> dict[str, Any]:
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert name in jobs, f"no scrape job {name!r}; jobs: {sorted(jobs)}"
    return jobs[name]


# --- promtool ---------------------------------------------------------------


def test_compose_config_passes_promtool_with_its_rules(tmp_path: Path) -> None:
    config = load_yaml(COMPOSE_CONFIG)
    assert config["rule_files"] == [CONTAINER_RULES_GLOB], (
        f"{COMPOSE_CONFIG.name}: rule_files must be [{CONTAINER_RULES_GLOB}] "
        "(docker-compose mounts deploy/prometheus/rules there)"
    )
    check_config_with_rules(config, tmp_path)


def test_kubernetes_config_passes_promtool_with_its_rules(tmp_path: Path) -> None:
    config = load_yaml(KUBERNETES_CONFIG)
    assert config["rule_files"] == ["rules/*.yml"], (
        f"{KUBERNETES_CONFIG.name}: rule_files must be rules/*.yml, beside the config"
    )
    # Checked in place first: the relative rule_files path resolves to deploy/prometheus/rules.
    result = run_promtool("check", "config", KUBERNETES_CONFIG)
    output = f"{result.stdout}\n{result.stderr}"
    if "field kubernetes_sd_configs not found" in output:
        # Debian's prometheus package builds promtool without Kubernetes service
        # discovery. Check everything else with a static stand-in for the pods,
        # and the discovery block itself below.
        for job in config["scrape_configs"]:
            for sd in job.pop("kubernetes_sd_configs", []):
                assert set(sd) <= {"role", "namespaces", "selectors", "api_server"}, sd
                assert sd["role"] == "pod", f"{job['job_name']}: expected role pod, got {sd}"
                job["static_configs"] = [{"targets": ["10.0.0.1:8080"]}]
        check_config_with_rules(config, tmp_path)
    else:
        assert result.returncode == 0, f"promtool rejects {KUBERNETES_CONFIG.name}:\n{output}"
        for rules_file in RULE_FILES:
            assert rules_file.name in output, f"rules not read:\n{output}"


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda path: path.name)
def test_rules_pass_promtool_check(rules_file: Path) -> None:
    assert_promtool_ok(run_promtool("check", "rules", rules_file), rules_file.name)


def test_rule_unit_tests_pass() -> None:
    assert RULE_TEST_FILES, f"no promtool unit tests in {RULE_TESTS_DIR}"
    output = assert_promtool_ok(
        run_promtool("test", "rules", *RULE_TEST_FILES), "the rule unit tests"
    )
    for test_file in RULE_TEST_FILES:
        assert test_file.name in output, f"{test_file.name} was not run:\n{output}"
    assert "FAILED" not in output, output


def test_every_rules_file_is_unit_tested() -> None:
    tested = {
        (test_file.parent / rule_file).resolve()
        for test_file in RULE_TEST_FILES
        for rule_file in load_yaml(test_file)["rule_files"]
    }
    untested = [path.name for path in RULE_FILES if path.resolve() not in tested]
    assert not untested, f"rules files without promtool unit tests in {RULE_TESTS_DIR}: {untested}"


# --- the alerts -------------------------------------------------------------


def test_alert_names_are_the_documented_ones() -> None:
    found = set(alerts())
    assert found == EXPECTED_ALERTS, (
        f"{ALERTS_FILE.name}: missing {sorted(EXPECTED_ALERTS - found)}, "
        f"unexpected {sorted(found - EXPECTED_ALERTS)} (the names are fixed by docs/OPERATIONS.md)"
    )
    assert {rule["alert"] for rule in rules(kind="alert")} == set(alerts_in(ALERTS_FILE)), (
        f"alerts belong in {ALERTS_FILE.name}"
    )


def alerts_in(path: Path) -> list[str]:
    return [
        rule["alert"]
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_alert_has_for_severity_and_annotations(name: str) -> None:
    rule = alerts().get(name)
    assert rule is not None, f"alert {name} is missing"
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: needs a `for` duration"
    assert rule.get("labels", {}).get("severity") in SEVERITIES, (
        f"{name}: labels.severity must be one of {sorted(SEVERITIES)}"
    )
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{name}: annotation {key} is missing"
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower(), (
        f"{name}: runbook_url must be {RUNBOOK_BASE + name.lower()} "
        "(the docs/OPERATIONS.md heading's anchor)"
    )


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test_file in RULE_TEST_FILES:
        for case in load_yaml(test_file).get("tests", []):
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing >= EXPECTED_ALERTS, (
        f"alerts without a promtool test case where they fire: {sorted(EXPECTED_ALERTS - firing)}"
    )
    assert silent >= EXPECTED_ALERTS, (
        "alerts without a promtool test case where they must not fire (exp_alerts: []): "
        f"{sorted(EXPECTED_ALERTS - silent)}"
    )


GENERATOR_GROUPS = 'consumergroup=~"persona-(shard-)?generators"'
"""Both groups of the workers: on the requests and on the shards of large requests."""


def test_consumer_lag_rules_watch_the_generators_groups() -> None:
    for rule in rules(kind="alert") + rules(kind="record"):
        for selector in re.findall(r"kafka_consumergroup_lag\s*(\{[^}]*\})?", rule["expr"]):
            assert GENERATOR_GROUPS in selector, (
                f"{rule.get('alert') or rule.get('record')}: kafka_consumergroup_lag must select "
                f"{GENERATOR_GROUPS}"
            )


# --- metric names -----------------------------------------------------------


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (job) (rate(http_requests_total{job="persona-api",status=~"5.."}[5m]))'
        " / on (job) (job:http_requests:rate5m offset 5m > 0) and up == 0"
        ' or vector(1e3) unless histogram_quantile(0.95, x_bucket{le=~"5|5\\\\.0"})'
    )
    assert metric_names(expr) == {
        "http_requests_total",
        "job:http_requests:rate5m",
        "up",
        "x_bucket",
    }


@pytest.mark.parametrize(
    "rule", rules(kind="alert") + rules(kind="record"), ids=lambda r: r.get("alert") or r["record"]
)
def test_rules_query_exported_metrics(rule: dict[str, Any]) -> None:
    missing = unknown_metrics(rule["expr"])
    assert not missing, (
        f"{rule.get('alert') or rule.get('record')} uses metrics no service exports: "
        f"{sorted(missing)}. persona_infra.metrics defines the services' metrics; "
        "a custom collector also needs describe() to be seen while it has no sample"
    )


# --- scrape targets ---------------------------------------------------------


def test_compose_config_scrapes_every_process() -> None:
    config = load_yaml(COMPOSE_CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    api = scrape_job(config, "persona-api")
    assert [t for sc in api["static_configs"] for t in sc["targets"]] == ["api:8080"]
    worker = scrape_job(config, "persona-worker")
    # DNS discovery, so that every replica of `docker compose up --scale worker=N` is scraped.
    assert worker["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 8081, "refresh_interval": "15s"}
    ]
    exporter = scrape_job(config, "kafka-exporter")
    assert [t for sc in exporter["static_configs"] for t in sc["targets"]] == [
        "kafka-exporter:9308"
    ]
    scrape_job(config, "prometheus")


def relabel(rules_: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus relabelling (replace, keep, drop) of one target; ``None`` if dropped."""
    labels = dict(labels)
    for rule in rules_:
        action = rule.get("action", "replace")
        assert action in {"replace", "keep", "drop"}, f"relabel action {action} is not simulated"
        value = rule.get("separator", ";").join(
            labels.get(name, "") for name in rule.get("source_labels", [])
        )
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            template = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", rule.get("replacement", "$1"))
            result = match.expand(template)
            if result:
                labels[rule["target_label"]] = result
            else:
                labels.pop(rule["target_label"], None)
    return labels


def pod(component: str, port: str, *, scrape: str = "true") -> dict[str, str]:
    return {
        "__address__": "10.1.2.3",
        "__metrics_path__": "/metrics",
        "job": "persona-pods",
        "__meta_kubernetes_namespace": "persona",
        "__meta_kubernetes_pod_name": f"persona-{component}-abc",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "persona-pipeline",
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": component,
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": scrape,
        "__meta_kubernetes_pod_annotation_prometheus_io_port": port,
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
    }


def test_kubernetes_config_names_jobs_after_the_component() -> None:
    config = load_yaml(KUBERNETES_CONFIG)
    pods = [job for job in config["scrape_configs"] if "kubernetes_sd_configs" in job]
    assert len(pods) == 1, "expected one scrape job with kubernetes_sd_configs (role: pod)"
    rules_ = pods[0]["relabel_configs"]

    api = relabel(rules_, pod("api", "8080"))
    assert api is not None, "an annotated api pod is not scraped"
    assert (api["job"], api["__address__"], api["__metrics_path__"]) == (
        "persona-api",
        "10.1.2.3:8080",
        "/metrics",
    )
    worker = relabel(rules_, {**pod("worker", "8081"), "__address__": "10.1.2.4:8081"})
    assert worker is not None, "an annotated worker pod is not scraped"
    assert (worker["job"], worker["__address__"]) == ("persona-worker", "10.1.2.4:8081")
    assert worker["pod"] == "persona-worker-abc"
    assert relabel(rules_, pod("api", "8080", scrape="false")) is None
    assert relabel(rules_, pod("create-topics", "8080")) is None
    other_app = {**pod("api", "8080"), "__meta_kubernetes_pod_label_app_kubernetes_io_name": "x"}
    assert relabel(rules_, other_app) is None, "pods of other apps must not become persona-api"

    scrape_job(config, "kafka-exporter")
