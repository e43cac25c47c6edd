"""Loguru setup shared by every process.

Coloured console lines in development, one JSON object per line in production,
and an optional daily-rotated file kept for seven days. Standard-library loggers
(uvicorn, FastStream, aiokafka, pymongo) are routed into the same sink so that
every line of a process has one format.

Logged text often carries request data (paths, header values): its control
characters are escaped in every sink, so a CR, LF or terminal escape sequence
sent by a client can neither forge a line nor recolour a terminal.
"""

import inspect
import json
import logging
import re
import sys
from typing import TYPE_CHECKING

from loguru import logger

from persona_infra.settings import Settings

if TYPE_CHECKING:
    from loguru import Record

CONSOLE_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[component]}</cyan> {message} <dim>{extra[context]}</dim>"
)
# Chatty at INFO, and never useful to an operator at that level.
QUIET_LOGGERS = ("aiokafka", "pymongo", "httpx", "httpcore", "openai", "faststream.access")
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What ``json.dumps`` leaves raw in a string; ``\uXXXX`` decodes to the same value.
JSON_UNESCAPED = re.compile("[\x7f-\x9f\u2028\u2029]")
NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """``text`` on one inert line: CR as ``\\r``, LF as ``\\n``, ESC as ``\\x1b`` and so on.

    Backslashes stay as they are: the escapes are for reading, not for decoding."""
    return CONTROL_CHARS.sub(_escape, text)


def _json_line(payload: dict[str, object]) -> str:
    """One JSON object on one line, with no control character left raw anywhere."""
    text = json.dumps(payload, ensure_ascii=False)
    return JSON_UNESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class InterceptHandler(logging.Handler):
    """Forward standard-library records to loguru, keeping the caller's location."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).bind(component=record.name).log(
            level, record.getMessage()
        )


def _patch(record: "Record") -> None:
    """Render structured context once, for both the console and the JSON format, and
    escape control characters in what the console format shows (JSON encodes them)."""
    extra = record["extra"]
    extra.setdefault("component", record["name"])
    fields = {k: v for k, v in extra.items() if k not in {"component", "context", "json"}}
    payload = {
        "timestamp": record["time"].isoformat(),
        "level": record["level"].name,
        "logger": extra["component"],
        "message": record["message"],
        **{k: v if isinstance(v, int | float | bool) else str(v) for k, v in fields.items()},
    }
    if record["exception"] is not None:
        payload["exception"] = repr(record["exception"].value)
    extra["json"] = _json_line(payload)
    extra["context"] = escape_controls(" ".join(f"{k}={v}" for k, v in fields.items()))
    extra["component"] = escape_controls(str(extra["component"]))
    record["message"] = escape_controls(record["message"])


def configure_logging(settings: Settings, component: str) -> None:
    """Install the process-wide sinks; call once at the entrypoint of a process."""
    logger.remove()
    logger.configure(extra={"component": component}, patcher=_patch)
    fmt = "{extra[json]}" if settings.json_logs else CONSOLE_FORMAT
    logger.add(
        sys.stderr,
        level=settings.log_level,
        format=fmt,
        colorize=not settings.json_logs,
        backtrace=False,
        diagnose=False,
    )
    if settings.log_file is not None:
        logger.add(
            settings.log_file,
            level=settings.log_level,
            format="{extra[json]}",
            rotation="00:00",
            retention="7 days",
            enqueue=True,
            backtrace=False,
            diagnose=False,
        )
    # The configured level, not 0: libraries (uvicorn among them) switch on per-message
    # tracing when they see a root logger at level 0, costing every request.
    level = logging.getLevelName(settings.log_level) if settings.log_level != "TRACE" else 5
    logging.basicConfig(handlers=[InterceptHandler()], level=level, force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream"):
        std = logging.getLogger(name)
        std.handlers = [InterceptHandler()]
        std.propagate = False
