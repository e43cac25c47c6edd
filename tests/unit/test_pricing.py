"""Prices: the shipped list prices, cached and Batch API rates, and PRICE_TABLE's two forms."""

import json

import pytest
from pydantic import ValidationError

from persona_contracts import Persona, TokenUsage
from persona_contracts.requests import RequestStatus
from persona_infra.settings import Settings
from persona_llm.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from tests.conftest import derive
from tests.support.factories import make_persona

MILLION = 1_000_000


@pytest.mark.parametrize(
    ("model", "prompt", "completion", "cached"),
    [
        ("gpt-4o-mini", 0.15, 0.60, 0.075),
        ("gpt-4o", 2.50, 10.00, 1.25),
        ("gpt-4.1", 2.00, 8.00, 0.50),
        ("gpt-4.1-mini", 0.40, 1.60, 0.10),
        ("gpt-4.1-nano", 0.10, 0.40, 0.025),
    ],
)
def test_the_shipped_prices_are_openais_list_prices(
    model: str, prompt: float, completion: float, cached: float
) -> None:
    assert DEFAULT_PRICES[model] == ModelPrice(
        prompt=prompt,
        completion=completion,
        cached_prompt=cached,
        batch_prompt=prompt / 2,
        batch_completion=completion / 2,
    )


def test_cached_prompt_tokens_are_priced_at_the_cached_rate() -> None:
    prices = PriceTable.with_overrides({})
    usage = TokenUsage(
        prompt_tokens=MILLION, completion_tokens=MILLION, cached_prompt_tokens=MILLION // 4
    )

    cost = prices.cost("gpt-4.1", usage)

    assert cost == pytest.approx(0.75 * 2.00 + 0.25 * 0.50 + 8.00)
    assert prices.cost("gpt-4.1", TokenUsage(prompt_tokens=MILLION)) == pytest.approx(2.00)


def test_batch_calls_are_priced_at_the_batch_rates() -> None:
    prices = PriceTable.with_overrides({})
    usage = TokenUsage(prompt_tokens=MILLION, completion_tokens=MILLION)
    cached = TokenUsage(
        prompt_tokens=MILLION, completion_tokens=MILLION, cached_prompt_tokens=MILLION
    )

    assert prices.cost("gpt-4o-mini", usage, batch=True) == pytest.approx(0.075 + 0.30)
    assert prices.cost("gpt-4o-mini", cached, batch=True) == pytest.approx(0.075 + 0.30), (
        "no cache discount is assumed on top of the batch one"
    )


def test_a_model_without_a_price_costs_nothing() -> None:
    prices = PriceTable.with_overrides({})
    usage = TokenUsage(prompt_tokens=500, completion_tokens=50, cached_prompt_tokens=100)

    assert not prices.knows("my-deployment")
    assert prices.cost("my-deployment", usage) == 0.0
    assert prices.cost("my-deployment", usage, batch=True) == 0.0
    assert prices.cost("offline-v1", usage) == 0.0


def test_price_table_keeps_the_two_number_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICE_TABLE", json.dumps({"my-deployment": [1.0, 4.0]}))

    prices = PriceTable.with_overrides(Settings(_env_file=None).price_table)

    assert prices.prices["my-deployment"] == ModelPrice(
        prompt=1.0, completion=4.0, cached_prompt=1.0, batch_prompt=0.5, batch_completion=2.0
    )
    assert prices.prices["gpt-4o-mini"] == DEFAULT_PRICES["gpt-4o-mini"], "the rest stays"


def test_price_table_takes_an_object_with_defaults_for_what_it_omits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {
        "partial": {"prompt": 2.0, "completion": 6.0, "cached_prompt": 0.5},
        "full": {
            "prompt": 2.0,
            "completion": 6.0,
            "cached_prompt": 0.2,
            "batch_prompt": 1.5,
            "batch_completion": 5.0,
        },
        "gpt-4o-mini": {"prompt": 0.2, "completion": 0.8},
    }
    monkeypatch.setenv("PRICE_TABLE", json.dumps(table))

    prices = PriceTable.with_overrides(Settings(_env_file=None).price_table).prices

    assert prices["partial"] == ModelPrice(2.0, 6.0, 0.5, 1.0, 3.0)
    assert prices["full"] == ModelPrice(2.0, 6.0, 0.2, 1.5, 5.0)
    assert prices["gpt-4o-mini"] == ModelPrice(0.2, 0.8, 0.2, 0.1, 0.4), "replaced as a whole"


def test_price_table_survives_a_settings_round_trip() -> None:
    settings = Settings(
        _env_file=None,
        price_table={"a": (1.0, 2.0), "b": {"prompt": 3.0, "completion": 4.0}},  # type: ignore[dict-item]
    )

    copy = derive(settings)

    assert PriceTable.with_overrides(copy.price_table) == PriceTable.with_overrides(
        settings.price_table
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"m": [1.0]}, r"a price is a list of two numbers \(prompt, completion\) or an"),
        ({"m": [1.0, 2.0, 3.0]}, "a list of two numbers"),
        ({"m": "cheap"}, "a list of two numbers"),
        ({"m": [-1.0, 2.0]}, "greater than or equal to 0"),
        ({"m": {"prompt": 1.0}}, "completion"),
        ({"m": {"prompt": 1.0, "completion": 2.0, "cache": 0.5}}, "Extra inputs"),
        ({"m": {"prompt": 1.0, "completion": 2.0, "batch_prompt": -1}}, "greater than or equal"),
    ],
    ids=[
        "one-number",
        "three-numbers",
        "text",
        "negative",
        "no-completion",
        "unknown-rate",
        "neg-batch",
    ],
)
def test_a_bad_price_is_refused(
    monkeypatch: pytest.MonkeyPatch, table: dict[str, object], message: str
) -> None:
    monkeypatch.setenv("PRICE_TABLE", json.dumps(table))
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)


# --- cached tokens in the contracts ------------------------------------------------------


def test_usage_sums_cached_tokens() -> None:
    first = TokenUsage(prompt_tokens=1000, completion_tokens=50, cached_prompt_tokens=768)
    second = TokenUsage(prompt_tokens=900, completion_tokens=40, cached_prompt_tokens=896)

    assert first + second == TokenUsage(
        prompt_tokens=1900, completion_tokens=90, cached_prompt_tokens=1664
    )
    assert (first + TokenUsage()).cached_prompt_tokens == 768


def test_cached_tokens_are_part_of_the_prompt() -> None:
    with pytest.raises(ValidationError, match="cannot exceed prompt_tokens"):
        TokenUsage(prompt_tokens=10, cached_prompt_tokens=11)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        TokenUsage(prompt_tokens=10, cached_prompt_tokens=-1)


def test_documents_stored_before_cached_tokens_still_load() -> None:
    stored = make_persona().model_dump(mode="json")
    stored["usage"] = {"prompt_tokens": 700, "completion_tokens": 300}

    persona = Persona.model_validate(stored)

    assert persona.usage.cached_prompt_tokens == 0
    status = RequestStatus.model_validate(
        {
            "request_id": persona.request_id,
            "status": "completed",
            "brief": "x",
            "requested": 1,
            "prompt_tokens": 700,
            "created_at": persona.created_at,
            "updated_at": persona.created_at,
        }
    )
    assert status.cached_prompt_tokens == 0
