"""Strict query parameters: a parameter the matched route does not declare is a 422.

Applied app-wide (``create_app``), so a typo such as ``?contry=de`` is an error rather
than a list of everything.
"""

from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AliasChoices, BaseModel

MAX_REPORTED_NAME_CHARS = 64
_QUERY_NAMES = "persona_api.query_names"  # cached on the route object


def _names_of(field: Any) -> set[str]:
    """Every query key a parameter (FastAPI ``ModelField`` or pydantic ``FieldInfo``) accepts."""
    names = {field.alias} if getattr(field, "alias", None) else set()
    info = getattr(field, "field_info", field)
    validation_alias = getattr(info, "validation_alias", None)
    if isinstance(validation_alias, str):
        names.add(validation_alias)
    elif isinstance(validation_alias, AliasChoices):
        names.update(c for c in validation_alias.choices if isinstance(c, str))
    return names


def _declared_query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters of an endpoint and all its (sub-)dependencies."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
                for name, info in model.model_fields.items():
                    names |= {info.alias or name, *_names_of(info)}
            else:
                names |= _names_of(field)
        stack.extend(current.dependencies)
    return frozenset(names)


async def reject_unknown_query_params(request: Request) -> None:
    """422 for a query parameter the matched route does not declare (applied app-wide).

    Silently ignoring one hides typos (``?contry=de`` would list everything)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    cached: frozenset[str] | None = vars(route).get(_QUERY_NAMES)
    if cached is None:
        cached = vars(route)[_QUERY_NAMES] = _declared_query_names(route.dependant)
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in cached]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name[:MAX_REPORTED_NAME_CHARS]),
                    "msg": "Unknown query parameter",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )
