"""A fake OpenAI-compatible server (Chat Completions, Files, Batch) for tests and benchmarks.

The real ``openai`` SDK talks to it over real HTTP (the SDK's transport cannot be
mocked in-process), so retries, ``Retry-After``, timeouts and connection pooling
are exercised exactly as in production.

Usage::

    with FakeOpenAI() as fake:                      # or fake.start() / fake.stop()
        fake.script(status(429, retry_after=0.5), ok())
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key")
        ...
        assert fake.calls == 2

Chat
    ``POST /v1/chat/completions`` answers with a completion whose content is a
    persona-shaped JSON object that fits the requested ``response_format`` schema
    and echoes the skeleton's city and occupation from the prompt. Scripted replies
    (``ok``, ``status``, ``malformed``, ``refusal``, ``truncated``, ``delay``) are
    consumed one per chat call, in order; once the script is empty every call is
    answered ``ok``. ``latency`` delays every chat call (for benchmarks). A reply
    built with ``wait_for_calls=n`` is held until ``n`` chat requests have arrived,
    so a test can make a whole wave of concurrent calls arrive before any is
    answered. Counters, recorded requests (``requests``, ``request_headers``,
    ``request_queries``, ``request_paths``, parallel lists) and ``replies`` (when
    each answer was sent, with its status and ``Retry-After``) are safe to read from
    any thread; timestamps use ``time.monotonic()``.

Request checks
    Made before any scripted reply is used; a refused request counts in ``calls``
    but is not recorded in ``requests``. A strict ``json_schema`` is checked as
    OpenAI checks it: a keyword outside the subset strict mode documents (anywhere
    in the schema, ``$defs`` included), an object without ``additionalProperties:
    false`` or one whose ``required`` misses a property is answered 400 with
    OpenAI's ``Invalid schema for response_format`` error (``strict_schema_problem``),
    so a schema that OpenAI would refuse (and llama.cpp could not turn into a
    grammar) cannot pass in tests. ``response_format: {"type": "json_object"}`` is
    refused 400 unless a message says "json", as OpenAI does; its answer fits the
    JSON Schema of the first fenced ```json block (system messages first, then
    user) that has ``properties``, which is how clients of servers without
    structured outputs describe the shape. ``FakeOpenAI(json_object_only=True)``
    plays such a server: ``json_schema`` is refused 400.

Capacity
    ``FakeOpenAI(capacity=K)`` plays a server that sheds load: a chat call arriving
    while K are being handled is answered 429 at once (``rate_limit_exceeded``; a
    ``Retry-After`` only with ``capacity_retry_after``), using no scripted reply. It
    is counted in ``rejected_for_capacity`` and recorded in ``replies`` as kind
    ``"capacity"``; ``in_flight``/``max_in_flight`` count admitted chat calls only,
    so ``max_in_flight`` never exceeds K.

Azure
    ``AsyncAzureOpenAI(azure_endpoint=fake.azure_endpoint, azure_deployment=D,
    api_version=V, ...)`` posts to ``/openai/deployments/{D}/chat/completions
    ?api-version=V`` with an ``api-key`` header; the same chat logic answers it (400
    without ``api-version``), so the Azure client is tested for real.

Prompt caching
    ``FakeOpenAI(prompt_cache_min_tokens=N)`` (OpenAI: 1024) reports
    ``usage.prompt_tokens_details.cached_tokens``: the longest prefix (roles and
    texts of the messages, in order) shared with one of the last 256 prompts that
    ran, at 4 characters a token, in 128-token steps, 0 below N. A client that puts
    the constant part of its prompt first is seen to earn cached tokens. Off by
    default: usage then has no ``prompt_tokens_details``.

Files and batches
    ``/v1/files`` (upload with purpose ``batch``, retrieve, content, delete) and
    ``/v1/batches`` (create, retrieve, cancel, list) behave as OpenAI documents them,
    returning every field of the SDK's ``FileObject`` and ``Batch``, so a client of
    the Batch API (half the price, answers within 24 h) is tested end to end in
    seconds. A batch's states each last ``batch_step_s`` and are moved lazily when
    batches are looked at: ``validating`` (lines checked: JSON, unique
    ``custom_id``, POST, ``/v1/chat/completions``, a ``body`` with ``model``; else
    ``failed`` with ``errors``) → ``in_progress`` → ``finalizing`` → ``completed``.
    When ``in_progress`` ends every line is answered by the chat logic (request
    checks, persona content, usage and cached tokens), consuming ``script_batch``
    replies, never the chat ``script``; 2xx answers go to the output file, others
    (and expired lines) to the error file, each file written only if it has lines.
    ``hold_batches``/``release_batches`` keep batches ``in_progress``;
    ``expire_next_batch(answered=k)`` and ``fail_next_batch(message)`` shape the
    next batch created; a cancel answers no further line. ``batches``,
    ``batch_lines(id)``, ``batches_created`` and ``batch_requests`` (line bodies
    answered) observe them. File and batch calls count in ``calls`` and
    ``calls_by_path`` only: ``requests`` and ``replies`` stay chat-only, and
    ``latency`` does not delay them.
"""

from .chat import Answer
from .persona import persona_for
from .replies import Reply, ReplyKind, ReplyRecord, delay, malformed, ok, refusal, status, truncated
from .server import AZURE_CHAT_PATH, CHAT_PATHS, FakeOpenAI
from .strict import strict_schema_problem

__all__ = [
    "AZURE_CHAT_PATH",
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
