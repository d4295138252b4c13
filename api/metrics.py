"""Prometheus metrics of the ticket engine, the dispatcher and the HTTP API."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from prometheus_client import Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    The time is from the request reaching the app to the response's start (status and
    headers; a streamed body such as the live events is not waited for), and every answer
    carries it as ``Server-Timing: app;dur=<ms>``: the app's own time, not the wait to be
    read nor the send, what a benchmark under load compares with the client's time, and
    what browsers show in their developer tools.

    The template (``/api/v1/tickets/{ticket_id}``), not the raw path, keeps the label
    set small; requests that match no route are counted under ``unmatched``.
    """
    app.add_middleware(_Observe)


class _Observe:
    """Plain ASGI middleware (no task group and body stream per request, unlike
    ``@app.middleware``): one histogram observation and one header per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        def observe(status: int) -> float:
            nonlocal observed
            observed = True
            seconds = time.perf_counter() - started
            template = route_template(Request(scope))  # the router set scope["route"]
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(seconds)
            return seconds

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                seconds = observe(int(message["status"]))
                MutableHeaders(scope=message).append(
                    "Server-Timing", f"app;dur={seconds * 1000:.1f}"
                )
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not observed:  # an error no handler turned into a response
                observe(500)


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
