"""Reading Batch API output and error lines: which ordinals go round again, which fail."""

import json

import httpx
import openai

from persona_llm.batch_api import BatchApiError, _api_error, _parse_lines
from persona_llm.errors import FailureKind


def _line(custom_id: str, *, status: int | None = 200, error: dict[str, str] | None = None) -> str:
    response = None
    if status is not None:
        body = {"choices": []} if status == 200 else {"error": {"message": f"status {status}"}}
        response = {"status_code": status, "request_id": "req_1", "body": body}
    return json.dumps(
        {"id": "batch_req_1", "custom_id": custom_id, "response": response, "error": error}
    )


def test_an_answered_line_carries_its_chat_completion_body() -> None:
    [result] = _parse_lines([_line("3-0")])
    assert (result.custom_id, result.body, result.error) == ("3-0", {"choices": []}, None)


def test_an_expired_line_is_worth_another_round() -> None:
    expired = {"code": "batch_expired", "message": "not run before the window expired"}
    [result] = _parse_lines([_line("1-0", status=None, error=expired)])
    assert result.error is not None
    assert result.error.kind is FailureKind.TRANSIENT
    assert "batch_expired" in result.error.reason


def test_a_refused_call_fails_and_a_throttled_or_failed_one_goes_round_again() -> None:
    refused, throttled, broken = _parse_lines(
        [_line("0-0", status=400), _line("1-0", status=429), _line("2-0", status=500)]
    )
    assert refused.error is not None
    assert refused.error.kind is FailureKind.FATAL
    assert "status 400" in refused.error.reason
    assert throttled.error is not None
    assert throttled.error.kind is FailureKind.TRANSIENT
    assert broken.error is not None
    assert broken.error.kind is FailureKind.TRANSIENT


def test_lines_that_name_no_call_are_skipped() -> None:
    assert _parse_lines(["", "not json", json.dumps({"no": "custom_id"}), "[]"]) == []


def _status_error(status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://llm.local/v1/files")
    response = httpx.Response(status, request=request, json={"error": {"message": "nope"}})
    return openai.APIStatusError("nope", response=response, body={"message": "nope"})


def test_a_server_without_a_batch_api_says_what_to_change() -> None:
    error = _api_error("upload the batch file", _not_found(), creates=True)
    assert isinstance(error, BatchApiError)
    assert not error.retryable
    assert "no Batch API" in error.reason
    assert "mode `sync`" in error.reason


def test_provider_trouble_is_retryable_and_a_rejected_key_is_not() -> None:
    assert _api_error("retrieve batch b", _status_error(503), creates=False).retryable
    assert _api_error("retrieve batch b", _status_error(429), creates=False).retryable
    assert not _api_error("retrieve batch b", _status_error(401), creates=False).retryable


def _not_found() -> openai.NotFoundError:
    request = httpx.Request("POST", "http://llm.local/v1/files")
    response = httpx.Response(404, request=request, json={"error": {"message": "no route"}})
    return openai.NotFoundError("no route", response=response, body={"message": "no route"})
