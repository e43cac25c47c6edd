"""The Grafana dashboard and provisioning (deploy/grafana): the dashboard loads, every
panel queries Prometheus through the `datasource` variable, every query is valid
PromQL (checked by promtool) over metrics the services export, and provisioning
points Grafana at the compose stack's Prometheus and at the dashboards directory.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import (
    ROOT,
    assert_promtool_ok,
    metric_names,
    run_promtool,
    unknown_metrics,
)

GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DASHBOARD = DASHBOARDS_DIR / "persona-pipeline.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "persona.yml"
DATASOURCE_VARIABLE = "${datasource}"
DATASOURCE_UID = "prometheus"

# Grafana's built-in variables, replaced by representative values so that
# promtool can parse the queries.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")

# What the dashboard must show: one metric per required panel.
REQUIRED_METRICS = {
    "http_requests_total": "API request rate and 5xx share",
    "http_request_duration_seconds_bucket": "API latency quantiles",
    "persona_stored_total": "personas stored per minute",
    "persona_llm_call_duration_seconds_bucket": "LLM call latency",
    "persona_llm_calls_total": "LLM calls by outcome",
    "persona_llm_cost_usd_total": "LLM cost per hour",
    "persona_llm_tokens_total": "LLM tokens",
    "persona_generations_in_flight": "generations in flight",
    "persona_requests_in_flight": "requests in flight",
    "persona_dead_letters_total": "DLQ messages",
    "kafka_consumergroup_lag": "consumer lag (kafka-exporter)",
    "persona_consumer_lag_messages": "consumer lag (the worker's view)",
    "process_resident_memory_bytes": "memory (RSS)",
    "persona_memory_limit_bytes": "memory limit",
    "persona_dependency_up": "dependency up",
}


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows; rows themselves excluded."""
    for item in items:
        if item.get("type") == "row":
            yield from panels(item.get("panels", []))
        else:
            yield item


def dashboard_variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def substitute(expr: str, variables: dict[str, dict[str, Any]]) -> str:
    """``expr`` with Grafana variables replaced, as Grafana would before querying."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        assert name in variables, f"query uses undefined variable ${name}: {expr}"
        return ".+"  # a dashboard variable, used as a label matcher regex

    return _VARIABLE.sub(value, expr)


def queries() -> list[tuple[str, str]]:
    """(record name, PromQL with variables substituted) for every panel query."""
    dashboard = load_dashboard()
    variables = dashboard_variables(dashboard)
    found = []
    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            name = f"dashboard:panel_{panel['id']}_{target['refId']}"
            found.append((name, substitute(target["expr"], variables)))
    return found


def test_dashboard_loads_with_uid_title_and_datasource_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "persona-pipeline"
    assert dashboard["title"] == "Persona pipeline"
    assert dashboard["schemaVersion"] >= 36, "schemaVersion too old for the panels used"
    variable = dashboard_variables(dashboard).get("datasource")
    assert variable is not None, "the dashboard needs a `datasource` template variable"
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    assert variable["current"]["value"] == DATASOURCE_UID, (
        f"the datasource variable should default to the provisioned data source {DATASOURCE_UID}"
    )


def test_every_panel_has_a_title_and_uses_the_datasource_variable() -> None:
    all_panels = list(panels(load_dashboard()["panels"]))
    assert all_panels, "the dashboard has no panels"
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids)), f"panel ids are not unique: {ids}"
    for panel in all_panels:
        where = f"panel {panel['id']} ({panel.get('title')!r})"
        assert str(panel.get("title", "")).strip(), f"{where} has no title"
        assert panel.get("datasource", {}).get("uid") == DATASOURCE_VARIABLE, (
            f"{where}: datasource must be {{'type': 'prometheus', 'uid': '{DATASOURCE_VARIABLE}'}}"
        )
        targets = panel.get("targets", [])
        assert targets, f"{where} has no queries"
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), f"{where}: refIds are not unique"
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"{where}: query {target['refId']} is empty"
            assert target.get("datasource", {}).get("uid", DATASOURCE_VARIABLE) == (
                DATASOURCE_VARIABLE
            ), f"{where}: query {target['refId']} must use {DATASOURCE_VARIABLE}"
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, f"{where} is wider than the dashboard"


def test_panel_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [{"record": name, "expr": expr} for name, expr in queries()]
    assert rules, "the dashboard has no queries"
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = assert_promtool_ok(
        run_promtool("check", "rules", rules_file), f"queries of {DASHBOARD.name}"
    )
    assert f"SUCCESS: {len(rules)} rules found" in output, output


@pytest.mark.parametrize(("name", "expr"), queries(), ids=[name for name, _ in queries()])
def test_panel_queries_use_exported_metrics(name: str, expr: str) -> None:
    assert metric_names(expr), f"{name} queries no metric: {expr}"
    missing = unknown_metrics(expr)
    assert not missing, (
        f"{name} ({DASHBOARD.name}) uses metrics no service exports: {sorted(missing)}"
    )


def test_rate_windows_follow_the_time_range() -> None:
    for panel in panels(load_dashboard()["panels"]):
        for target in panel["targets"]:
            for window in re.findall(r"\[([^\]]*)\]", target["expr"]):
                assert window in {"$__rate_interval", "$__range"}, (
                    f"panel {panel['title']!r}: use [$__rate_interval] (or [$__range] for totals "
                    f"over the time range) instead of [{window}]"
                )


def test_dashboard_shows_the_required_metrics() -> None:
    used = set().union(*(metric_names(expr) for _, expr in queries()))
    missing = {metric: what for metric, what in REQUIRED_METRICS.items() if metric not in used}
    assert not missing, f"{DASHBOARD.name} lacks panels for: {missing}"


def test_datasource_provisioning_points_at_prometheus() -> None:
    config = yaml.safe_load(DATASOURCES.read_text())
    assert config["apiVersion"] == 1
    sources = config["datasources"]
    assert len(sources) == 1, sources
    source = sources[0]
    assert source["type"] == "prometheus"
    assert source["uid"] == DATASOURCE_UID
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True


def test_dashboard_provisioning_loads_the_dashboards_directory() -> None:
    config = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    # docker-compose mounts deploy/grafana/dashboards there.
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    uids = [json.loads(path.read_text())["uid"] for path in sorted(DASHBOARDS_DIR.glob("*.json"))]
    assert len(uids) == len(set(uids)), f"dashboard uids in {DASHBOARDS_DIR} are not unique: {uids}"
