"""FastAPI dependencies: everything a route needs, resolved from the app's state.

The lifespan (``app.py``) builds these objects once per process; routes declare
what they use with ``Annotated`` types and never reach for globals.
Every dependency is ``async def``, even the trivial ones: FastAPI runs plain
``def`` dependencies in a thread pool, a thread hop per dependency per request.

Access control (keys and roles are described in ``core/api_keys.py``): ``WriterDep`` /
``require_writer`` and ``AdminDep`` / ``require_admin`` guard writes and admin
routes; ``read_gate`` asks every read for a reader key when ``READS_REQUIRE_KEY`` is
set (``create_app`` applies it app-wide, except to the service routes).
``WriteRateLimitDep`` takes a token from the caller's write bucket. A client with too
many unknown keys in verification at once gets a 429 (see ``KeyRing.verify``).
"""

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka import KafkaBroker
from loguru import logger
from prometheus_client import CollectorRegistry
from pydantic import AliasChoices, BaseModel
from pymongo import AsyncMongoClient
from starlette.exceptions import HTTPException

from persona_api.cursor import CursorCodec
from persona_api.key_ring import OPEN, KeyRing, Principal, VerificationBusyError
from persona_api.limits import TokenBuckets, retry_after
from persona_audience.planner import Planner, RulePlanner
from persona_infra.api_keys import Role
from persona_infra.health import DependencyProbe
from persona_infra.metrics import HttpMetrics
from persona_infra.mongo import Document
from persona_infra.persona_store import PersonaStore
from persona_infra.request_store import RequestStore
from persona_infra.settings import Settings
from persona_infra.stats_store import StatsStore
from persona_producers.publisher import RequestPublisher

if TYPE_CHECKING:
    from persona_api.submissions import Submissions


@dataclass(frozen=True, slots=True)
class Services:
    """The per-process objects the lifespan builds and every request shares."""

    settings: Settings
    mongo: AsyncMongoClient[Document]
    broker: KafkaBroker
    personas: PersonaStore
    requests: RequestStore
    stats: StatsStore
    publisher: RequestPublisher
    cursors: CursorCodec
    http_metrics: HttpMetrics
    keys: KeyRing
    write_limiter: TokenBuckets
    dependencies: DependencyProbe
    registry: CollectorRegistry
    submissions: "Submissions"
    """Records, publishes and de-duplicates generation requests."""
    rules: RulePlanner
    """Checks every request before it is accepted (contradictions are a 422)."""
    planner: Planner
    """Answers ``POST /v1/plans``: the planner the workers use."""


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return _services(request)


ServicesDep = Annotated[Services, Depends(get_services)]


# Each reads the request directly rather than depending on ``get_services``: FastAPI
# resolves every level of a dependency tree on every request, and these are on the
# hottest paths.
async def get_personas(request: Request) -> PersonaStore:
    return _services(request).personas


async def get_requests(request: Request) -> RequestStore:
    return _services(request).requests


async def get_stats(request: Request) -> StatsStore:
    return _services(request).stats


async def get_publisher(request: Request) -> RequestPublisher:
    return _services(request).publisher


async def get_cursors(request: Request) -> CursorCodec:
    return _services(request).cursors


async def get_rules(request: Request) -> RulePlanner:
    return _services(request).rules


async def get_planner(request: Request) -> Planner:
    return _services(request).planner


PersonaStoreDep = Annotated[PersonaStore, Depends(get_personas)]
RequestStoreDep = Annotated[RequestStore, Depends(get_requests)]
StatsStoreDep = Annotated[StatsStore, Depends(get_stats)]
PublisherDep = Annotated[RequestPublisher, Depends(get_publisher)]
CursorsDep = Annotated[CursorCodec, Depends(get_cursors)]
RulesDep = Annotated[RulePlanner, Depends(get_rules)]
PlannerDep = Annotated[Planner, Depends(get_planner)]


# --- Access control ---------------------------------------------------------------------

API_KEY_HEADER = "X-API-Key"
_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <key>` (or send `X-API-Key`)."
)
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="`X-API-Key: <key>` (or send a Bearer)."
)


VERIFICATION_RETRY_S = "1"


def _client_ip(request: Request) -> str:
    """The client's address (the proxy's ``X-Forwarded-For`` one behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> str | None:
    """The key the caller sent, from ``Authorization: Bearer`` or ``X-API-Key``."""
    from_bearer = bearer.credentials if bearer else None
    if from_bearer and api_key and from_bearer != api_key:
        raise _unauthorized("Send one API key, as `Authorization: Bearer` or `X-API-Key`.")
    return from_bearer or api_key or None


PresentedKeyDep = Annotated[str | None, Depends(presented_key)]


async def _authorize(
    request: Request, services: Services, presented: str | None, role: Role
) -> Principal:
    keys = services.keys
    if keys.open:
        return OPEN
    if presented is None:
        raise _unauthorized(
            f"This needs an API key with the `{role.label}` role, sent as "
            f"`Authorization: Bearer <key>` or `{API_KEY_HEADER}: <key>`."
        )
    try:
        principal = await keys.verify(presented, _client_ip(request))
    except VerificationBusyError:
        # Not a 401: the key may be valid; it was not checked. The client retries later.
        raise HTTPException(
            429,
            "Too many API keys from this client are being checked; retry in "
            f"{VERIFICATION_RETRY_S} s.",
            headers={"Retry-After": VERIFICATION_RETRY_S},
        ) from None
    if principal is None:
        path = request.scope["path"]  # as sent: ``url.path`` drops some control characters
        logger.bind(component="auth", path=path).info("rejected an unknown API key")
        raise _unauthorized("The API key is not valid.")
    # The key's name (never the key) goes into the access log line.
    request.state.api_key = principal.name
    if principal.role < role:
        raise HTTPException(403, f"This API key lacks the `{role.label}` role this needs.")
    return principal


async def require_writer(
    request: Request, services: ServicesDep, presented: PresentedKeyDep
) -> Principal:
    """A key listed in ``API_KEYS`` or ``ADMIN_API_KEYS``."""
    return await _authorize(request, services, presented, Role.WRITER)


async def require_admin(
    request: Request, services: ServicesDep, presented: PresentedKeyDep
) -> Principal:
    """A key listed in ``ADMIN_API_KEYS``."""
    return await _authorize(request, services, presented, Role.ADMIN)


WriterDep = Annotated[Principal, Depends(require_writer)]
AdminDep = Annotated[Principal, Depends(require_admin)]


def read_gate(public_paths: Collection[str]) -> Callable[..., Awaitable[None]]:
    """An app-wide dependency: a reader key on every route but ``public_paths``.

    Applied to the app rather than to routers, so a route added later is protected
    unless it is made public on purpose."""
    public = frozenset(public_paths)

    async def gate_reads(
        request: Request, services: ServicesDep, presented: PresentedKeyDep
    ) -> None:
        if getattr(request.scope.get("route"), "path", None) not in public:
            await _authorize(request, services, presented, Role.READER)

    return gate_reads


async def limit_writes(request: Request, services: ServicesDep, caller: WriterDep) -> None:
    """Take a token from the caller's bucket: per key, or per client IP without one."""
    if caller.name is not None:
        client = f"key:{caller.name}"
    else:
        client = f"ip:{request.client.host if request.client else 'unknown'}"
    wait_s = services.write_limiter.take(client)
    if wait_s > 0:
        after = retry_after(wait_s)
        raise HTTPException(
            429,
            f"Too many write requests; retry in {after} s.",
            headers={"Retry-After": after},
        )


WriteRateLimitDep = Annotated[None, Depends(limit_writes)]


# --- Unknown query parameters -----------------------------------------------------------

MAX_REPORTED_NAME_CHARS = 64
_QUERY_NAMES = "persona_pipeline.query_names"  # cached on the route object


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
