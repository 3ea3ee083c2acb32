"""Who is calling (an API key) and what they may read (their tenant), plus the request body
limit. With keys required, every /v1 endpoint needs one; a tenant key reads its own tenant
only, and index-wide endpoints need an admin key."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_worker import api_keys
from ingest_worker.api_keys import OPEN, Caller
from query_api.models import SearchRequest, WaitForDocument
from query_api.state import state_of

DEFAULT_TENANT = "default"
_bearer = HTTPBearer(auto_error=False, description="An API key: `freshindex keys create`.")
_query_key = APIKeyQuery(
    name="api_key", auto_error=False, description="The API key, for clients that cannot send "
    "headers (a browser's EventSource)."
)  # fmt: skip


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_query_key)],
) -> Caller:
    """The caller a request's key stands for (everyone is OPEN when keys are not required;
    keys are looked up on the primary)."""
    state = state_of(request)
    if not state.require_keys:
        return OPEN
    secret = credentials.credentials if credentials else api_key
    if not secret:
        raise _unauthorized(
            "this API requires a key: send `Authorization: Bearer <key>` (an operator "
            "creates one with `freshindex keys create --tenant NAME`)"
        )
    with state.pool.connection() as conn:
        caller = api_keys.caller_for(conn, secret)
    if caller is None:
        raise _unauthorized("unknown or revoked API key")
    return caller


Authenticated: TypeAlias = Annotated[Caller, Depends(authenticate)]


def tenant_for(caller: Caller, requested: str | None) -> str:
    """The tenant a request reads: a tenant key's own (naming another is refused)."""
    if caller.tenant is None:
        return requested or DEFAULT_TENANT
    if requested is not None and requested != caller.tenant:
        raise HTTPException(403, f"this API key reads tenant {caller.tenant!r} only")
    return caller.tenant


def scoped(request: SearchRequest, caller: Caller) -> SearchRequest:
    """The request with every tenant it names resolved for this caller."""

    def given(model: Any) -> str | None:
        return model.tenant if "tenant" in model.model_fields_set else None

    wait_for = [
        w.model_copy(update={"tenant": tenant_for(caller, given(w))})
        if isinstance(w, WaitForDocument)
        else w
        for w in request.wait_for
    ]
    tenant = tenant_for(caller, given(request.filter))
    return request.model_copy(
        update={
            "filter": request.filter.model_copy(update={"tenant": tenant}),
            "wait_for": wait_for,
        }
    )


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise HTTPException(
            403, "index-wide data needs an admin key (`freshindex keys create --admin`)"
        )


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(send, self.max_bytes)


class _TooLarge(BaseException):
    """A BaseException: FastAPI turns any Exception raised while reading a body into 400."""


async def _refuse(send: Send, max_bytes: int) -> None:
    body = f'{{"detail": "request body over {max_bytes} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
