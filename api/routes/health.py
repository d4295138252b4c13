"""Health and metrics for operators and Prometheus."""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.metrics import BACKLOG
from api.schemas import HealthPublic

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

_HEALTH_TIMEOUT_S = 3.0


@router.get(
    "/healthz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "The database is unreachable."}},
)
def healthz(request: Request) -> Response:
    """Answer 200 when the database answers a query within 3 s (or the pool timeout), else 503."""
    timeout = min(_HEALTH_TIMEOUT_S, request.app.state.settings.db_timeout_s)
    ok = True
    try:
        with request.app.state.pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure here means "not healthy"
        logger.warning("health check: database unreachable: %s", exc)
        ok = False
    body = HealthPublic(status="ok" if ok else "unavailable", database=ok)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    """Prometheus metrics, with the current depth of the findings and notifications outboxes."""
    try:
        with request.app.state.pool.connection(timeout=_HEALTH_TIMEOUT_S) as conn:
            row = conn.execute(
                """SELECT (SELECT count(*) FROM findings WHERE processed_at IS NULL),
                          (SELECT count(*) FROM notifications WHERE status = 'pending')"""
            ).fetchone()
        if row is not None:
            BACKLOG.labels("findings").set(int(row[0]))
            BACKLOG.labels("notifications").set(int(row[1]))
    except psycopg.Error as exc:
        logger.warning("metrics: backlog query failed: %s", exc)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
