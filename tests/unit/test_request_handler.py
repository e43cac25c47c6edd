"""The worker's Kafka edge on in-memory stores: what is dead-lettered, with which reason,
what is retried in place, and that neither costs an LLM call it should not.

The same rules run through the real broker in ``tests/integration`` (``test_pipeline``,
``test_audience``, ``test_faults``); here each is pinned down in milliseconds.
"""

import hashlib
from typing import Any

from persona_contracts import PersonaRequested, RequestState
from persona_worker.emitter import MAX_DEAD_LETTER_BYTES, DeadLetters
from persona_worker.handler import RequestHandler
from tests.support.generation_world import ScriptedGenerator, World
from tests.support.kafka_messages import REQUESTS_TOPIC, RecordingPublisher, message

REQUEST = PersonaRequested(brief="beekeepers in Leeds", count=3, seed=7)


class Edge:
    """A handler over a ``World``, with its dead-letter topic recorded."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world or World(ScriptedGenerator())
        self.dlq = RecordingPublisher()
        dead_letters = DeadLetters(self.dlq, self.world.metrics)
        self.handler = RequestHandler(
            self.world.generation, dead_letters, self.world.metrics, base_backoff_s=0.001
        )

    def consumed(self, outcome: str) -> float:
        value = self.world.registry.get_sample_value(
            "persona_requests_consumed_total", {"outcome": outcome}
        )
        return value or 0.0


async def test_an_event_that_is_no_request_is_dead_lettered_byte_for_byte() -> None:
    edge = Edge()
    body = b'{"brief": 42, "count": "many"}'
    await edge.handler(message(body, offset=17, partition=2, key=b"k"))

    [dead] = edge.dlq.published
    assert (dead.body, dead.key) == (body, b"k")
    assert "brief" in dead.headers["x-dlq-error"]
    assert "count" in dead.headers["x-dlq-error"]
    assert dead.headers["x-dlq-source-topic"] == REQUESTS_TOPIC
    assert (dead.headers["x-dlq-source-partition"], dead.headers["x-dlq-source-offset"]) == (
        "2",
        "17",
    )
    assert "x-dlq-truncated" not in dead.headers
    assert edge.world.generator.calls == []
    assert edge.consumed("dead_lettered") == 1


async def test_an_event_too_large_to_forward_is_cut_and_says_what_it_was() -> None:
    edge = Edge()
    body = b"x" * (MAX_DEAD_LETTER_BYTES + 1000)
    await edge.handler(message(body))

    [dead] = edge.dlq.published
    assert dead.body == body[:MAX_DEAD_LETTER_BYTES]
    assert dead.headers["x-dlq-truncated"] == "true"
    assert dead.headers["x-dlq-original-bytes"] == str(len(body))
    assert dead.headers["x-dlq-sha256"] == hashlib.sha256(body).hexdigest()


async def test_a_request_that_cannot_be_planned_fails_with_the_reason_and_is_dead_lettered() -> (
    None
):
    edge = Edge()
    contradictory = PersonaRequested(
        brief="mothers in Lima", count=2, constraints={"genders": {"male": 1}}
    )
    await edge.handler(message(contradictory.model_dump_json().encode()))

    [dead] = edge.dlq.published
    reason = dead.headers["x-dlq-error"]
    assert reason.startswith("cannot plan the audience: the brief is about female")
    stored = edge.world.requests.requests[contradictory.request_id]
    assert (stored.status, stored.error) == (RequestState.FAILED, reason)
    assert edge.world.generator.calls == []


async def test_a_request_id_reused_for_other_work_is_dead_lettered_and_the_first_stands() -> None:
    edge = Edge()
    await edge.handler(message(REQUEST.model_dump_json().encode(), offset=0))
    other = REQUEST.model_copy(update={"brief": "astronomers in Quito"})
    await edge.handler(message(other.model_dump_json().encode(), offset=1))

    [dead] = edge.dlq.published
    assert "other content" in dead.headers["x-dlq-error"]
    assert edge.world.stored_ordinals() == [0, 1, 2]
    assert len(edge.world.generator.calls) == 3
    assert (edge.consumed("completed"), edge.consumed("dead_lettered")) == (1, 1)


async def test_a_store_that_fails_is_retried_in_place_and_costs_no_call_twice() -> None:
    edge = Edge()
    requests = edge.world.requests
    real_finish = requests.finish
    outages = iter([ConnectionError("database unreachable")])

    async def flaky_finish(*args: Any, **kwargs: Any) -> Any:
        if (outage := next(outages, None)) is not None:
            raise outage
        return await real_finish(*args, **kwargs)

    requests.finish = flaky_finish  # type: ignore[method-assign]
    await edge.handler(message(REQUEST.model_dump_json().encode()))

    assert edge.dlq.published == []
    assert edge.world.stored_ordinals() == [0, 1, 2]
    assert len(edge.world.generator.calls) == 3  # the retry found all three stored
    # Announced again on the retry (at least once), under the same event ids.
    assert len({e.event_id for e in edge.world.events.created_events}) == 3
    assert requests.requests[REQUEST.request_id].status is RequestState.COMPLETED
    assert (edge.consumed("retried"), edge.consumed("completed")) == (1, 1)
