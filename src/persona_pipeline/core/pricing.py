"""Turning token usage into money, so every persona and request knows what it cost.

Prices are recorded at generation time (list prices change; a persona's cost
should not). The shipped table holds public list prices in USD per million
tokens as of 2026; ``PRICE_TABLE`` overrides or extends it.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from persona_pipeline.contracts import TokenUsage

PER_MILLION = 1_000_000

# model -> (USD per 1M prompt tokens, USD per 1M completion tokens)
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "offline-v1": (0.0, 0.0),
}


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[str, tuple[float, float]]

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, tuple[float, float]]) -> "PriceTable":
        return cls({**DEFAULT_PRICES, **overrides})

    def knows(self, model: str) -> bool:
        return model in self.prices

    def cost(self, model: str, usage: TokenUsage) -> float:
        """USD for ``usage`` on ``model``; 0.0 for a model without a price (logged by callers)."""
        prompt, completion = self.prices.get(model, (0.0, 0.0))
        total = usage.prompt_tokens * prompt + usage.completion_tokens * completion
        return round(total / PER_MILLION, 8)
