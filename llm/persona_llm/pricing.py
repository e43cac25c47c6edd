"""Turning token usage into money, so every persona and request knows what it cost.

Prices are recorded at generation time (list prices change; a persona's cost
should not). The shipped table holds OpenAI's public list prices in USD per
million tokens; ``PRICE_TABLE`` overrides or extends it.

A model has five rates (``ModelPrice``): prompt and completion tokens, prompt
tokens the provider served from its prompt cache (``cached_prompt``, OpenAI: a
quarter to a half of the prompt rate), and prompt and completion tokens through the
Batch API (OpenAI: half the prompt and completion rates). ``PRICE_TABLE`` takes a
model's price as ``[prompt, completion]`` or as an object naming any of the five
(``prompt`` and ``completion`` required). What it leaves out is filled in so that a
cost is never understated by a guess: cached prompt tokens at the full prompt rate
(no cache discount is assumed), and the batch rates at half the prompt and
completion rates (the Batch API discount OpenAI and Azure OpenAI give every model).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from persona_contracts import TokenUsage
from persona_infra.setting_types import PriceSpec

PER_MILLION: Final = 1_000_000
BATCH_DISCOUNT: Final = 0.5
"""The Batch API's price as a share of the interactive one (OpenAI, every model)."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's rates, in USD per million tokens."""

    prompt: float
    completion: float
    cached_prompt: float
    batch_prompt: float
    batch_completion: float

    @classmethod
    def of(
        cls,
        prompt: float,
        completion: float,
        *,
        cached_prompt: float | None = None,
        batch_prompt: float | None = None,
        batch_completion: float | None = None,
    ) -> "ModelPrice":
        """The price with the defaults of the module docstring for the rates not given."""
        return cls(
            prompt=prompt,
            completion=completion,
            cached_prompt=prompt if cached_prompt is None else cached_prompt,
            batch_prompt=prompt * BATCH_DISCOUNT if batch_prompt is None else batch_prompt,
            batch_completion=(
                completion * BATCH_DISCOUNT if batch_completion is None else batch_completion
            ),
        )

    @classmethod
    def from_setting(cls, setting: PriceSpec) -> "ModelPrice":
        return cls.of(**setting.model_dump())

    def cost(self, usage: TokenUsage, *, batch: bool = False) -> float:
        """USD for ``usage``. Through the Batch API every prompt token is priced at the batch
        prompt rate: a cache discount on top of the batch one is not assumed."""
        if batch:
            total = (
                usage.prompt_tokens * self.batch_prompt
                + usage.completion_tokens * self.batch_completion
            )
        else:
            cached = usage.cached_prompt_tokens
            total = (
                (usage.prompt_tokens - cached) * self.prompt
                + cached * self.cached_prompt
                + usage.completion_tokens * self.completion
            )
        return round(total / PER_MILLION, 8)


DEFAULT_PRICES: Final[Mapping[str, ModelPrice]] = {
    "gpt-4o-mini": ModelPrice.of(0.15, 0.60, cached_prompt=0.075),
    "gpt-4o": ModelPrice.of(2.50, 10.00, cached_prompt=1.25),
    "gpt-4.1": ModelPrice.of(2.00, 8.00, cached_prompt=0.50),
    "gpt-4.1-mini": ModelPrice.of(0.40, 1.60, cached_prompt=0.10),
    "gpt-4.1-nano": ModelPrice.of(0.10, 0.40, cached_prompt=0.025),
    "offline-v1": ModelPrice.of(0.0, 0.0),
}
_FREE: Final = ModelPrice.of(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[str, ModelPrice]

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, PriceSpec]) -> "PriceTable":
        """The shipped prices with ``PRICE_TABLE``'s entries added or replacing them."""
        parsed = {model: ModelPrice.from_setting(price) for model, price in overrides.items()}
        return cls({**DEFAULT_PRICES, **parsed})

    def knows(self, model: str) -> bool:
        return model in self.prices

    def cost(self, model: str, usage: TokenUsage, *, batch: bool = False) -> float:
        """USD for ``usage`` on ``model`` (at the Batch API's rates with ``batch``); 0.0 for
        a model without a price (logged by callers)."""
        return self.prices.get(model, _FREE).cost(usage, batch=batch)
