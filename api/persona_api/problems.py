"""RFC 9457 problem details for every error the API returns.

Handlers never echo exception text from the database or the broker: clients get
a stable title and an actionable detail, operators get the full error in logs.
"""

from http import HTTPStatus
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException

from persona_audience.planner import AudienceError
from persona_producers.publisher import EventTooLargeError

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = "5"


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ProblemError(Exception):
    """Raise from a route to answer with a specific problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        status=status, title=title, detail=detail, instance=request.url.path, errors=errors
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: never the rejected input, which may be huge or secret.
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()[:20]
    ]


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(
        request, exc.status_code, _title(exc.status_code), exc.detail, headers=headers
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(request, exc.status, exc.title, exc.detail)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        request,
        422,
        "Invalid request",
        "One or more inputs are invalid; see `errors`.",
        errors=_validation_errors(exc),
    )


async def _on_audience(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AudienceError)
    return problem_response(
        request,
        422,
        "Cannot plan this audience",
        f"{exc}. Change the brief or the constraints so they agree.",
        errors=[{"msg": problem} for problem in exc.problems],
    )


async def _on_too_large(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 413, "Request event too large", f"{exc}.")


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.opt(exception=exc).error("dependency unavailable on {}", request.scope["path"])
    return problem_response(
        request,
        503,
        "Service unavailable",
        "A backing service is unreachable; retry shortly.",
        headers={"Retry-After": RETRY_AFTER_S},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.opt(exception=exc).error("unhandled error on {}", request.scope["path"])
    return problem_response(
        request,
        500,
        "Internal server error",
        "The error was logged; retry, and report it if it persists.",
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(AudienceError, _on_audience)
    app.add_exception_handler(EventTooLargeError, _on_too_large)
    for unavailable in (ConnectionFailure, KafkaError):
        app.add_exception_handler(unavailable, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(code).phrase}
    for code in (400, 401, 403, 404, 413, 422, 429, 503)
}
