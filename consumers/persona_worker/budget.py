"""What a request may still spend on LLM calls, when it sets ``max_cost_usd``.

A delivery (a whole request, or one shard of a large one) starts a persona only while
what it has spent, plus what the personas already in flight will cost at the average
so far, leaves room for one more. So a request overshoots its cap by at most the
personas in flight when it is reached, before any has finished (each costs the price
of its calls, retries included). A shard gets its share of the cap in proportion to
its ordinals, so the workers sharing a request need not talk to each other, and what
is left unstarted when the money runs out is spread evenly over the plan.
"""

from dataclasses import dataclass


@dataclass
class Budget:
    limit_usd: float | None
    """``None``: no cap."""
    spent_usd: float = 0.0
    finished: int = 0
    in_flight: int = 0

    @classmethod
    def share(cls, cap_usd: float | None, planning_usd: float, part: int, whole: int) -> "Budget":
        """The budget of ``part`` of a request's ``whole`` ordinals: the cap, less what
        planning cost, in proportion."""
        if cap_usd is None:
            return cls(None)
        return cls(max(cap_usd - planning_usd, 0.0) * part / whole)

    def already(self, costs: list[float]) -> None:
        """Count personas an earlier delivery stored at ``costs``."""
        self.spent_usd += sum(costs)
        self.finished += len(costs)

    def admit(self) -> bool:
        """Start one more persona, if the money allows; count it in flight."""
        if self.limit_usd is not None:
            average = self.spent_usd / self.finished if self.finished else 0.0
            ahead = self.spent_usd + (self.in_flight + 1) * average
            if self.spent_usd >= self.limit_usd or ahead > self.limit_usd:
                return False
        self.in_flight += 1
        return True

    def settle(self, cost_usd: float) -> None:
        """A persona admitted earlier finished (stored or failed) at ``cost_usd``."""
        self.in_flight -= 1
        self.finished += 1
        self.spent_usd += cost_usd

    @property
    def reason(self) -> str:
        return (
            f"not generated: the request's max_cost_usd was reached "
            f"(${self.spent_usd:.4f} of ${self.limit_usd or 0:.4f} spent on this part)"
        )
