"""The FastAPI application: REST under ``/api/v1`` plus the ticket engine and dispatcher.

Every route under ``/api/v1`` but health and metrics needs a bearer token (or the
console's session cookie) from ``POST /api/v1/auth/login``; what a user sees is limited
to their sites in the queries themselves (regulator: region and sub-regions; officer and
director: their canteens; insurer: insured canteens, read-only; admin: everything).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from api.auth.cache import AuthCache
from api.auth.settings import AuthSettings, load_auth_settings
from api.console import routes as console
from api.deps import AUTH_RESPONSES
from api.errors import install_error_contract
from api.headers import SecurityHeaders
from api.metrics import instrument
from api.routes import (
    ack,
    alarms,
    alerts,
    complaints,
    disinfection,
    duties,
    enrol,
    evidence,
    health,
    inspections,
    insurance,
    notifications,
    public,
    rapid_tests,
    risk,
    sensors,
    sites,
    supervision,
    ticket_actions,
    ticket_comments,
    tickets,
    triage,
    users,
)
from api.routes import auth as auth_routes
from api.routes import settings as settings_routes
from api.settings import ApiSettings, load_api_settings
from api.workers import Workers
from bkcommon.errors import RequestError
from bkcommon.settings import CommonSettings, load_common_settings

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(
    settings: ApiSettings | None = None,
    *,
    common: CommonSettings | None = None,
    auth: AuthSettings | None = None,
) -> FastAPI:
    """Build the app; settings default to the environment (BK_API_*, BK_AUTH_*, BK_*)."""
    api_settings = settings or load_api_settings()
    common_settings = common or load_common_settings()
    database_url = common_settings.database_url.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: ConnectionPool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=api_settings.db_pool_size,
            timeout=api_settings.db_timeout_s,
            kwargs={"autocommit": True},
            open=False,
            name="bk-api",
        )
        pool.open(wait=False)
        app.state.pool = pool
        workers: Workers | None = None
        if api_settings.workers_enabled:
            workers = Workers(database_url=database_url, settings=api_settings)
            workers.start()
            app.state.workers = workers
        logger.info("API ready (workers %s)", "running" if workers else "disabled")
        try:
            yield
        finally:
            if workers is not None:
                workers.stop()
            pool.close()

    app = FastAPI(
        title="brightkitchen API",
        version="1",
        summary="明厨亮灶: alarms, rectification tickets (整改单) and notifications.",
        description=__doc__,
        lifespan=lifespan,
        **_no_builtin_telemetry(),
    )
    app.state.settings = api_settings
    auth_settings = auth or load_auth_settings()
    app.state.auth_settings = auth_settings
    app.state.auth_cache = AuthCache(
        ttl_s=auth_settings.cache_ttl_s, max_entries=auth_settings.cache_max_entries
    )
    app.state.workers = None
    install_error_contract(app)  # 422 bodies and every documented error are ErrorPublic
    instrument(app)  # bk_api_request_seconds for every route
    app.add_middleware(SecurityHeaders)  # CSP, nosniff... on errors and included routers too
    app.include_router(health.router, prefix=API_PREFIX)  # unauthenticated: operators
    app.include_router(auth_routes.router, prefix=API_PREFIX)
    app.include_router(ack.router, prefix=API_PREFIX)  # unauthenticated: signed one-time links
    app.include_router(enrol.router, prefix=API_PREFIX)  # codes: admins; redeeming: the code
    # Every other router needs a signed-in user: 401/403 are documented on each route.
    for module in (
        alarms,
        disinfection,
        tickets,
        sites,
        sensors,
        notifications,
        users,
        inspections,
        insurance,
        risk,
        settings_routes,
        rapid_tests,
        complaints,
        supervision,
        duties,
        alerts,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=AUTH_RESPONSES)
    for loop in (ticket_actions, ticket_comments, evidence, triage):  # the closed loop
        app.include_router(loop.router, prefix=API_PREFIX, responses=AUTH_RESPONSES)
    app.include_router(public.router)  # no sign-in: canteen pages, QR codes, complaints
    app.include_router(console.router)  # the regulator console at /console/ (static + export)

    @app.exception_handler(RequestError)
    async def _refused(request: Request, exc: Exception) -> JSONResponse:
        # Every service refusal (unknown ticket, wrong state or role, bad upload...) is a
        # RequestError whose class knows its status: one answer here, none per route.
        assert isinstance(exc, RequestError)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "database unavailable"}, status_code=503)

    @app.exception_handler(psycopg.DataError)
    async def _unstorable_input(request: Request, exc: Exception) -> JSONResponse:
        # e.g. a NUL character in a text field, or a number out of the column's range
        logger.info("%s %s: input the database cannot store: %s", request.method,
                    request.url.path, exc)  # fmt: skip
        return JSONResponse({"detail": f"invalid input: {exc}"}, status_code=422)

    return app


def _no_builtin_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry hooks, off where this FastAPI has them.

    The API exports its own Prometheus metrics (``api.metrics``); with no OpenTelemetry
    provider configured the built-in hooks still looked the providers up on every request
    (environment reads, an extra middleware and endpoint wrapper), measurable under load.
    """
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {
        "telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    }
