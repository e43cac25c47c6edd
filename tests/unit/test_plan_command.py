"""``persona plan``: the plan as a user sees it, and the bad paths of its options."""

import json

import pytest
from typer.testing import CliRunner

from persona_pipeline.cli.main import app

runner = CliRunner()


def test_the_plan_shows_every_dimension_with_counts_and_sources() -> None:
    result = runner.invoke(app, ["plan", "--brief", "urban cyclists in Berlin", "--count", "20"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "subject: urban cyclists" in out
    assert "locations (from brief)" in out
    assert "Berlin, Germany" in out
    assert "genders (from default)" in out
    assert "how they ride (from brief)" in out
    assert "│    20" in out


def test_json_output_is_a_plan_that_request_accepts_back(tmp_path: object) -> None:
    args = ["plan", "--brief", "nurses", "--count", "4", "--gender", "female=3", "--json"]
    result = runner.invoke(app, [*args, "--gender", "male=1"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [q["count"] for q in shown["quotas"]["genders"]] == [3, 1]
    assert shown["plan"]["genders"]["source"] == "constraints"
    saved = tmp_path / "plan.json"  # type: ignore[operator]
    saved.write_text(result.output)
    again = runner.invoke(app, ["plan", "--brief", "anything", "--audience", str(saved), "--json"])
    assert json.loads(again.output)["plan"]["occupations"] == shown["plan"]["occupations"]


def test_a_contradiction_exits_2_and_says_why() -> None:
    result = runner.invoke(app, ["plan", "--brief", "teenagers", "--min-age", "40"])
    assert result.exit_code == 2
    assert "the brief states ages 16-19" in result.output


def test_a_bad_weight_exits_2_and_shows_the_form() -> None:
    result = runner.invoke(app, ["plan", "--brief", "x", "--country", "DE=lots"])
    assert result.exit_code == 2
    assert "--country 'NAME=0.7'" in result.output.replace("\n", "")


def test_an_unreadable_audience_file_exits_2(tmp_path: object) -> None:
    broken = tmp_path / "plan.json"  # type: ignore[operator]
    broken.write_text("{not json")
    result = runner.invoke(app, ["plan", "--brief", "x", "--audience", str(broken)])
    assert result.exit_code == 2
    assert "not a plan" in " ".join(result.output.split())


def test_a_setting_that_is_not_json_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_EXTRA_HEADERS", "X-Gateway: not json")
    result = runner.invoke(app, ["plan", "--brief", "nurses"])
    assert result.exit_code == 2
    assert "openai_extra_headers" in result.output
    assert "JSON value" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
