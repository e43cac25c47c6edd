"""The types of settings fields that validate more than their type: what a bad value
means is said where the value is read, so a process refuses to start with a clear error.

``Settings`` (``settings.py``) is made of these; they live apart so that it reads as
the list of settings it is.
"""

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
)
from pydantic_settings import NoDecode

from persona_infra.api_keys import parse_entries
from persona_infra.text import split_list

# --- LLM ----------------------------------------------------------------------------

MAX_EXTRA_HEADERS = 20
# RFC 9110 token characters; anything else cannot be a header name.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The key's own headers: an extra header must not replace the API key.
_KEY_HEADERS = frozenset({"authorization", "api-key"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _check_extra_headers(headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
    """Refuse what a gateway could not take or what would replace the API key.

    Errors name the header, never its value: values may be secrets (a gateway token).
    """
    seen: set[str] = set()
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name (letters, digits, !#$%&'*+.^_`|~-)")
        if name.lower() in _KEY_HEADERS:
            raise ValueError(
                f"{name!r} would replace the API key: set OPENAI_API_KEY or AZURE_OPENAI_API_KEY"
            )
        if name.lower() in seen:
            raise ValueError(f"{name!r} is given twice (header names ignore case)")
        if any(char in value.get_secret_value() for char in "\r\n\0"):
            raise ValueError(f"the value of {name!r} contains CR, LF or NUL")
        seen.add(name.lower())
    return headers


def _https_or_loopback(url: AnyHttpUrl) -> AnyHttpUrl:
    """The API key travels to this URL: only TLS, or a test server on this machine."""
    if url.scheme != "https" and url.host not in _LOOPBACK_HOSTS:
        raise ValueError(
            "must be an https:// URL, e.g. https://my-resource.openai.azure.com "
            "(plain http only to localhost)"
        )
    return url


ExtraHeaders = Annotated[
    dict[str, SecretStr],
    Field(max_length=MAX_EXTRA_HEADERS),
    AfterValidator(_check_extra_headers),
]
AzureEndpoint = Annotated[AnyHttpUrl, AfterValidator(_https_or_loopback)]
# Azure's rule for deployment names; the name becomes part of the request path.
AzureDeployment = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
AzureApiVersion = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")]


# --- Prices ---------------------------------------------------------------------------

Rate = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""USD per million tokens."""


class PriceSpec(BaseModel):
    """A model's price in ``PRICE_TABLE``'s object form; omitted rates get defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Rate
    completion: Rate
    cached_prompt: Rate | None = None
    batch_prompt: Rate | None = None
    batch_completion: Rate | None = None


def _from_pair(value: Any) -> Any:
    """``[prompt, completion]`` (the original form of ``PRICE_TABLE``) as a ``PriceSpec``."""
    if isinstance(value, dict | PriceSpec):
        return value
    if isinstance(value, list | tuple) and len(value) == 2:
        return {"prompt": value[0], "completion": value[1]}
    raise ValueError(
        "a price is a list of two numbers (prompt, completion) or an object with prompt, "
        "completion and optionally cached_prompt, batch_prompt, batch_completion, in USD "
        "per 1M tokens"
    )


PriceSetting = Annotated[PriceSpec, BeforeValidator(_from_pair)]
"""One ``PRICE_TABLE`` entry: ``[prompt, completion]`` or a ``PriceSpec`` object."""


# --- API keys and browsers --------------------------------------------------------------


def _check_entries(value: SecretStr | None) -> SecretStr | None:
    if value is None or not value.get_secret_value().strip():
        return None
    parse_entries(value.get_secret_value())  # raises KeyFormatError, a ValueError
    return value


ApiKeyEntries = Annotated[SecretStr | None, AfterValidator(_check_entries)]
"""Comma- or newline-separated ``name:scrypt$salt$hash`` entries; empty means none."""

ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")


def _split_commas(value: object) -> object:
    return split_list(value) if isinstance(value, str) else value


def _check_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    for origin in origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin such as https://app.example.com "
                "(scheme, host and optional port; no path, no trailing slash)"
            )
    if "*" in origins and len(origins) > 1:
        raise ValueError("`*` already allows every origin; use it alone or list origins")
    return tuple(o.lower() for o in origins)


CorsOrigins = Annotated[
    tuple[str, ...], NoDecode, BeforeValidator(_split_commas), AfterValidator(_check_origins)
]
"""Comma-separated browser origins allowed by CORS; empty turns CORS off."""
