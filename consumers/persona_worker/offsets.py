"""Which offset each partition may commit while requests finish out of order.

Requests of one partition run concurrently, so request 12 may finish before
request 10. Kafka stores one position per partition, meaning "everything below
was processed": the safe position is the lowest offset still in flight, or one
past the highest started offset when nothing is in flight. A crash then
redelivers exactly the requests that had not finished (and, harmlessly, some
that had: storage is idempotent).
"""

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass
class _Partition:
    in_flight: set[int] = field(default_factory=set)
    next_offset: int = 0
    committed: int | None = None

    def position(self) -> int:
        return min(self.in_flight) if self.in_flight else self.next_offset


class OffsetTracker(Generic[P]):
    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}

    def begin(self, partition: P, offset: int) -> None:
        state = self._partitions.setdefault(partition, _Partition(next_offset=offset))
        state.in_flight.add(offset)
        state.next_offset = max(state.next_offset, offset + 1)

    def end(self, partition: P, offset: int) -> None:
        """Mark an offset processed; unknown ones (a revoked partition's) are ignored."""
        state = self._partitions.get(partition)
        if state is not None:
            state.in_flight.discard(offset)

    def committable(self, only: Iterable[P] | None = None) -> dict[P, int]:
        """Positions that moved since they were last committed."""
        wanted = self._partitions.keys() if only is None else set(only) & self._partitions.keys()
        return {
            p: position
            for p in wanted
            if (position := self._partitions[p].position()) != self._partitions[p].committed
        }

    def committed(self, positions: dict[P, int]) -> None:
        for partition, position in positions.items():
            if partition in self._partitions:
                self._partitions[partition].committed = position

    def forget(self, partitions: Iterable[P]) -> None:
        """Drop revoked partitions: their new owner continues from the committed position."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @property
    def in_flight(self) -> int:
        return sum(len(state.in_flight) for state in self._partitions.values())
