"""``GET /console/api/events``: the console's live stream (server-sent events), per user scope.

A browser's ``EventSource`` opens it with the session cookie. Each alarm, ticket,
capture-review or violation change of a site in the user's scope arrives within
moments as one event (``event: alarm`` etc., JSON data: kind, site_id, id, rule, status,
subject); ``resync`` asks the page to reload its data after a gap. A comment line is
sent every ``PING_S`` seconds so proxies keep the connection, and the stream ends
after ``MAX_STREAM_S``: the browser reconnects by itself with ``Last-Event-ID``, the
token is checked again and missed events are replayed. The token is also checked before
every event and ping (the auth cache, cleared on sign-out, disable, password reset,
revocation and grant changes): a signed-out or disabled user's open stream, or one whose
scope changed, ends there instead of running out its minute. Edge-box (device) tokens are
refused, as on every human route.

The stream holds no database connection: the token is resolved (or taken from the
auth cache) before it starts, with a pooled connection returned at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool

from api.auth.cache import AuthCache, CachedAuth
from api.auth.device import device_refused
from api.auth.passwords import token_hash
from api.auth.resolve import resolve_scope
from api.auth.scope import Role
from api.auth.users import token_principal
from api.console.live import RESYNC, LiveEvent, LiveHub, Subscription, live_lifespan
from api.deps import SESSION_COOKIE, unauthorized
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["console"], lifespan=live_lifespan)

PING_S = 15.0
MAX_STREAM_S = 60.0
RETRY_MS = 2000


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def _look_up(pool: ConnectionPool, token: str) -> CachedAuth | None:
    now = utcnow()
    with pool.connection() as conn:
        found = token_principal(conn, token=token, now=now)
        if found is None:
            return None
        principal, expires_at = found
        return CachedAuth(principal, resolve_scope(conn, principal), expires_at)


async def stream_auth(request: Request) -> CachedAuth:
    """The user and scope of the request's token, without keeping a connection (else 401)."""
    token = _token(request)
    if token is None:
        raise unauthorized()
    cache: AuthCache = request.app.state.auth_cache
    key = token_hash(token)
    entry = cache.get(key, now=utcnow())
    if entry is None:
        entry = await run_in_threadpool(_look_up, request.app.state.pool, token)
        if entry is None:
            raise unauthorized("invalid or expired token")
        cache.put(key, entry)
    return entry


async def _still_valid(request: Request, opened: CachedAuth) -> bool:
    """Whether the stream's token still signs in the same user with the same scope."""
    try:
        now = await stream_auth(request)
    except HTTPException:
        return False
    return now.principal == opened.principal and now.scope == opened.scope


async def frames(
    request: Request,
    hub: LiveHub,
    sub: Subscription,
    *,
    max_s: float = MAX_STREAM_S,
    auth: CachedAuth | None = None,
) -> AsyncIterator[str]:
    """The SSE frames of one subscription until the client leaves, the hub stops, time is up
    or (given ``auth``) the token no longer signs in the same user with the same scope."""
    try:
        yield f"retry: {RETRY_MS}\nid: {hub.last_id}\nevent: hello\ndata: {{}}\n\n"
        ends = time.monotonic() + max_s
        while (left := ends - time.monotonic()) > 0:
            if await request.is_disconnected():
                return
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=min(PING_S, left))
            except TimeoutError:
                if auth is not None and not await _still_valid(request, auth):
                    return
                yield ": ping\n\n"
                continue
            if auth is not None and event is not None and not await _still_valid(request, auth):
                return
            if event is None:
                return
            if sub.overflowed:  # events were dropped: the page reloads instead
                sub.overflowed = False
                yield LiveEvent(hub.last_id, RESYNC, None, {}).frame()
                continue
            yield event.frame()
    finally:
        hub.unsubscribe(sub)


@router.get("/events", response_class=StreamingResponse, include_in_schema=False)
async def live_events(
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Live changes of your sites: alarms, tickets, capture reviews, violations (SSE)."""
    auth = await stream_auth(request)
    if auth.principal.role is Role.DEVICE:  # a box watches nothing live (deny by default)
        raise device_refused(request, auth.principal.username)
    hub: LiveHub | None = getattr(request.app.state, "live", None)
    if hub is None:
        raise HTTPException(status_code=503, detail="live updates are not running")
    sub = hub.subscribe(auth.scope, last_event_id)
    return StreamingResponse(
        frames(request, hub, sub, auth=auth),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
