"""Prometheus metrics of the ticket engine, the dispatcher and the HTTP API."""

from __future__ import annotations

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
