"""Who may call a route: API keys, roles and the writers' rate limit, as FastAPI dependencies.

Keys and roles are described in ``persona_infra.api_keys``; verification is
``key_ring.py``. ``WriterDep`` / ``require_writer`` and ``AdminDep`` / ``require_admin``
guard writes and admin routes; ``read_gate`` asks every read for a reader key when
``READS_REQUIRE_KEY`` is set (``create_app`` applies it app-wide, except to the service
routes). ``WriteRateLimitDep`` takes a token from the caller's write bucket,
``ExportRateLimitDep`` from its export bucket. A client
with too many unknown keys in verification at once gets a 429 (see ``KeyRing.verify``).
"""

from collections.abc import Awaitable, Callable, Collection
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from loguru import logger
from starlette.exceptions import HTTPException

from persona_api.deps import AppContext, AppContextDep
from persona_api.key_ring import OPEN, Principal, VerificationBusyError
from persona_api.limits import TokenBuckets, retry_after
from persona_infra.api_keys import Role

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
    request: Request, context: AppContext, presented: str | None, role: Role
) -> Principal:
    keys = context.keys
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
    request: Request, context: AppContextDep, presented: PresentedKeyDep
) -> Principal:
    """A key listed in ``API_KEYS`` or ``ADMIN_API_KEYS``."""
    return await _authorize(request, context, presented, Role.WRITER)


async def require_admin(
    request: Request, context: AppContextDep, presented: PresentedKeyDep
) -> Principal:
    """A key listed in ``ADMIN_API_KEYS``."""
    return await _authorize(request, context, presented, Role.ADMIN)


WriterDep = Annotated[Principal, Depends(require_writer)]
AdminDep = Annotated[Principal, Depends(require_admin)]


def read_gate(public_paths: Collection[str]) -> Callable[..., Awaitable[None]]:
    """An app-wide dependency: a reader key on every route but ``public_paths``.

    Applied to the app rather than to routers, so a route added later is protected
    unless it is made public on purpose."""
    public = frozenset(public_paths)

    async def gate_reads(
        request: Request, context: AppContextDep, presented: PresentedKeyDep
    ) -> None:
        if getattr(request.scope.get("route"), "path", None) not in public:
            await _authorize(request, context, presented, Role.READER)

    return gate_reads


def _take(limiter: TokenBuckets, request: Request, key_name: str | None, what: str) -> None:
    """Take a token from the caller's bucket: per key, or per client IP without one."""
    client = f"key:{key_name}" if key_name is not None else f"ip:{_client_ip(request)}"
    wait_s = limiter.take(client)
    if wait_s > 0:
        after = retry_after(wait_s)
        raise HTTPException(
            429, f"Too many {what}; retry in {after} s.", headers={"Retry-After": after}
        )


async def limit_writes(request: Request, context: AppContextDep, caller: WriterDep) -> None:
    _take(context.write_limiter, request, caller.name, "write requests")


async def limit_exports(request: Request, context: AppContextDep) -> None:
    """Exports read every matching persona: their own, tighter bucket. The caller is the
    reader key the read gate verified, if reads require one."""
    _take(context.export_limiter, request, getattr(request.state, "api_key", None), "exports")


WriteRateLimitDep = Annotated[None, Depends(limit_writes)]
ExportRateLimitDep = Annotated[None, Depends(limit_exports)]
