"""A fake OpenAI-compatible Chat Completions server for tests and benchmarks.

The real ``openai`` SDK talks to it over real HTTP (the SDK's transport cannot be
mocked in-process), so retries, ``Retry-After``, timeouts and connection pooling
are exercised exactly as in production.

Usage::

    with FakeOpenAI() as fake:                      # or fake.start() / fake.stop()
        fake.script(status(429, retry_after=0.5), ok())
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key")
        ...
        assert fake.calls == 2

``POST /v1/chat/completions`` answers with a completion whose content is a
persona-shaped JSON object that fits the requested ``response_format`` schema
and echoes the skeleton's city and occupation from the prompt. Scripted replies
(``ok``, ``status``, ``malformed``, ``refusal``, ``truncated``, ``delay``) are
consumed one per chat call, in order; once the script is empty every call is
answered ``ok``. ``latency`` delays every call (for benchmarks). A reply built
with ``wait_for_calls=n`` is held until ``n`` chat requests have arrived, so a
test can make a whole wave of concurrent calls arrive before any is answered.
Counters, recorded requests and ``replies`` (when each answer was sent, with its
status and ``Retry-After``) are safe to read from any thread; timestamps use
``time.monotonic()``.

A strict ``json_schema`` response format is checked as OpenAI checks it, before
any scripted reply is used: a keyword outside the subset strict mode documents
(anywhere in the schema, ``$defs`` included), an object without
``additionalProperties: false`` or one whose ``required`` misses a property is
answered 400 with OpenAI's ``Invalid schema for response_format`` error
(``strict_schema_problem``); such a request counts in ``calls`` but is not
recorded in ``requests``. So a schema that OpenAI would refuse (and llama.cpp could
not turn into a grammar) cannot pass in tests.
"""

from .chat import Answer
from .persona import persona_for
from .replies import Reply, ReplyKind, ReplyRecord, delay, malformed, ok, refusal, status, truncated
from .server import CHAT_PATHS, FakeOpenAI
from .strict import strict_schema_problem

__all__ = [
    "CHAT_PATHS",
    "Answer",
    "FakeOpenAI",
    "Reply",
    "ReplyKind",
    "ReplyRecord",
    "delay",
    "malformed",
    "ok",
    "persona_for",
    "refusal",
    "status",
    "strict_schema_problem",
    "truncated",
]
