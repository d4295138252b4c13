"""Prometheus metrics of the ticket engine, the dispatcher and the HTTP API."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Gauge, Histogram

FINDINGS_PROCESSED = Counter(
    "bk_api_findings_processed_total",
    "Findings the ticket engine processed, by kind and outcome.",
    ["kind", "outcome"],
)
TICKETS_OPENED = Counter("bk_api_tickets_opened_total", "Rectification tickets opened.", ["tier"])
NOTIFICATIONS_ENQUEUED = Counter(
    "bk_api_notifications_enqueued_total", "Notifications written to the outbox.", ["channel"]
)
DELIVERY_ATTEMPTS = Counter(
    "bk_api_delivery_attempts_total",
    "Notification delivery attempts, by channel and result (sent, retry, dead).",
    ["channel", "result"],
)
DELIVERY_SECONDS = Histogram(
    "bk_api_delivery_seconds",
    "Time one delivery attempt took.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BACKLOG = Gauge(
    "bk_api_backlog",
    "Rows waiting in an outbox at the last scrape (findings, notifications).",
    ["outbox"],
)
WORKER_ERRORS = Counter(
    "bk_api_worker_errors_total", "Errors that made a worker loop back off.", ["worker"]
)
SLA_BREACHES = Counter(
    "bk_api_sla_breaches_total",
    "Tickets whose rectification deadline passed unrectified (the escalation 'warning' step).",
    ["tier"],
)
ESCALATION_STEPS = Counter(
    "bk_api_escalation_steps_total", "Escalation steps performed, by step.", ["step"]
)
REQUEST_SECONDS = Histogram(
    "bk_api_request_seconds",
    "HTTP request latency by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def instrument(app: FastAPI) -> None:
    """Time every request into ``bk_api_request_seconds``, labelled by route template.

    The template (``/api/v1/tickets/{ticket_id}``), not the raw path, keeps the label
    set small; requests that match no route are counted under ``unmatched``.
    """

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            template = route_template(request)
            REQUEST_SECONDS.labels(request.method, template, str(status)).observe(
                time.perf_counter() - started
            )


def route_template(request: Request) -> str:
    """The matched route's path template with its router prefix, or ``unmatched``.

    A route included under a prefix may know only its own part (``/tickets/{ticket_id}``);
    the prefix is literal, so it is the request path less as many trailing segments.
    """
    path = getattr(request.scope.get("route"), "path", None)
    if not isinstance(path, str):
        return "unmatched"
    if ":path}" in path:  # a parameter spanning segments: the prefix cannot be counted
        return path
    segments = request.url.path.rstrip("/").split("/")
    own = path.rstrip("/").count("/")
    prefix = "/".join(segments[: len(segments) - own])
    return prefix + path
