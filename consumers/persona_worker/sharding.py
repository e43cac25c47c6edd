"""Large requests as shards, so that every worker of the group generates a part of one.

A request of more personas than ``size`` is planned once by the worker that takes it
from ``persona.requests``, which records its shards and publishes one
``ShardRequested`` per shard on ``persona.shards``, keyed apart so they spread over the
partitions. Any worker takes a shard: it claims it (a lease it renews while it
generates), generates the shard's missing ordinals exactly as a whole request's, and
settles it. The worker that settles the last shard settles the request from the sums
of its shards.

What can go wrong, and why nothing is lost or generated twice:
- a copy of a shard's event while its lease lives is skipped; after the lease lapsed
  (its worker died), the next copy takes the shard over and generates what is missing;
- a request whose shards all stopped moving is re-driven by the reconciler like any
  other, and its redelivery publishes the shards not done again;
- a persona is stored once per ``(request_id, ordinal)`` whichever worker writes it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from persona_contracts import GenerationMode, PersonaRequested, RequestState, ShardRequested
from persona_contracts.plan import Planning
from persona_worker.ports import ShardWrites
from persona_worker.stages import Outcome, Stages


class ShardSink(Protocol):
    async def publish(self, shard: ShardRequested) -> None: ...


def parts(request: PersonaRequested, size: int) -> list[ShardRequested]:
    """The request's shards: consecutive ordinals, ``size`` each (the last one the rest)."""
    return [
        ShardRequested(request=request, shard=k, first=first, end=min(first + size, request.count))
        for k, first in enumerate(range(0, request.count, size))
    ]


@dataclass
class Sharding:
    stages: Stages
    shards: ShardWrites
    sink: ShardSink
    size: int
    owner: str
    """This worker, as shard leases name it."""
    lease_s: float

    def applies(self, request: PersonaRequested, mode: GenerationMode) -> bool:
        """Shard synchronous requests larger than a shard; a batch is one provider job."""
        return mode is GenerationMode.SYNC and request.count > self.size

    async def split(self, request: PersonaRequested, mode: GenerationMode) -> RequestState:
        """Plan the request once, record its shards and publish those not done."""
        await self.stages.plan_once(request, mode)
        shards = parts(request, self.size)
        await self.shards.create(shards)
        await self.stages.requests.mark_sharded(request.request_id, len(shards))
        return await self.publish_undone(request, shards)

    async def publish_undone(
        self, request: PersonaRequested, shards: Iterable[ShardRequested] | None = None
    ) -> RequestState:
        """(Re)publish the shards not done; settle the request when none is left."""
        undone = await self.shards.undone(request.request_id)
        if not undone:
            return await self.finish(request)
        every = list(shards or parts(request, self.size))
        for shard in every:
            if shard.shard in undone:
                await self.sink.publish(shard)
        logger.info(
            "request {} is {} shards of up to {}: {} to generate",
            request.request_id,
            len(every),
            self.size,
            len(undone),
        )
        return RequestState.GENERATING

    async def claim(self, shard: ShardRequested) -> bool:
        request_id = shard.request.request_id
        return await self.shards.claim(request_id, shard.shard, self.owner, self.lease_s)

    async def renew(self, shard: ShardRequested) -> None:
        request_id = shard.request.request_id
        await self.shards.renew(request_id, shard.shard, self.owner, self.lease_s)

    async def settle(self, shard: ShardRequested, outcome: Outcome, new: int) -> None:
        """Announce the shard's failures, mark it done (counting it in the statistics
        once), and settle the request if it was the last."""
        request = shard.request
        await self.stages.announce_failures(request, outcome.failures)
        marked = await self.shards.finish(
            request.request_id, shard.shard, outcome.personas, outcome.failures, outcome.retries
        )
        if marked:
            await self.stages.stats.apply(
                list(outcome.personas.values()), len(outcome.failures), outcome.near_duplicates
            )
        logger.info(
            "shard {} of request {}: {} new, {} reused, {} failed",
            shard.shard,
            request.request_id,
            new,
            len(outcome.personas) - new,
            len(outcome.failures),
        )
        if not await self.shards.undone(request.request_id):
            await self.finish(request)

    async def finish(self, request: PersonaRequested) -> RequestState:
        plan = await self.stages.requests.plan_of(request.request_id)
        totals = await self.shards.totals(request.request_id)
        cancelled = await self.stages.requests.cancel_requested(request.request_id)
        planning = plan.planning if plan is not None else Planning(planner="rules")
        state = await self.stages.requests.finish_sharded(
            request, totals, planning, cancelled=cancelled
        )
        logger.info(
            "request {} {}: {} stored in {} shards, {} failed",
            request.request_id,
            state.value,
            totals.stored,
            totals.done,
            len(totals.failures),
        )
        return state
