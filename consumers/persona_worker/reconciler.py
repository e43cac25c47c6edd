"""The reconciler: accepted requests that stopped moving are driven again.

Kafka normally redelivers what a crashed worker did not commit. The reconciler covers
what redelivery cannot: an event lost with a broker's topics (the embedded broker keeps
them in memory), a request recorded by the API whose publish never arrived, a worker
that hangs without crashing. Every ``RECONCILE_INTERVAL_S`` the process holding the
``reconciler`` lease looks for requests not final whose ``progress_at`` is older than
``RECONCILE_STALE_AFTER_S`` (workers heartbeat while they generate) and re-publishes
their stored event; the idempotent consumer makes a duplicate delivery free. After
``RECONCILE_MAX_REDRIVES`` re-drives a request ends with what it stored and says why.
A record the API never confirmed queued (its client was answered 503) is not
re-driven but ended as not accepted.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from loguru import logger

from persona_contracts import PersonaRequested
from persona_contracts.events import utcnow
from persona_infra.kafka import Publisher, publish_event
from persona_worker.lease_store import LeaseStore
from persona_worker.metrics import PipelineMetrics
from persona_worker.request_writes import RequestWriter

LEASE = "reconciler"
BATCH = 100


@dataclass
class Reconciler:
    requests: RequestWriter
    leases: LeaseStore
    publisher: Publisher
    metrics: PipelineMetrics
    interval_s: float
    stale_after_s: float
    max_redrives: int
    owner: str
    """This worker's name on the leases it takes (one per process)."""
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # the lease expires on its own anyway
            await self.leases.release(LEASE, self.owner)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the database or the broker is away: try next round
                logger.warning("reconciler round failed: {}", exc)
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> int:
        """One round: re-drive (or give up on) the stalled requests; returns how many moved."""
        if not await self.leases.take(LEASE, self.owner, ttl_s=self.interval_s * 3):
            return 0
        before = utcnow() - timedelta(seconds=self.stale_after_s)
        if dropped := await self.requests.drop_unconfirmed(before):
            logger.warning("{} request(s) the API never confirmed queued ended failed", dropped)
        stalled = await self.requests.stalled(before, BATCH)
        for request in stalled:
            await self._redrive(request)
        return len(stalled)

    async def _redrive(self, request: PersonaRequested) -> None:
        if not await self.requests.redriven(request.request_id, self.max_redrives):
            reason = f"no progress after {self.max_redrives} re-drives (RECONCILE_MAX_REDRIVES)"
            await self.requests.give_up(request.request_id, reason)
            logger.error("gave up on request {}: {}", request.request_id, reason)
            self.metrics.requests_consumed.labels("given_up").inc()
            return
        await publish_event(self.publisher, request, str(request.request_id))
        logger.warning(
            "re-drove request {}: no progress for {:.0f}s", request.request_id, self.stale_after_s
        )
        self.metrics.requests_consumed.labels("redriven").inc()
