"""Prometheus metrics of the edge box, each box process with its own registry."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

logger = logging.getLogger(__name__)


class EdgeMetrics:
    """Counters and gauges of capture, inference and delivery, served on ``/metrics``."""

    def __init__(self) -> None:
        """Create the metrics in a private registry (several boxes may share a test process)."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.camera_fps = Gauge(
            "edge_camera_fps", "Frames analysed per second", ["camera_id"], registry=r
        )
        self.camera_skipped_fps = Gauge(
            "edge_camera_skipped_fps",
            "Frames read but not analysed per second",
            ["camera_id"],
            registry=r,
        )
        self.inference_ms = Gauge(
            "edge_inference_ms", "Mean processing time per frame (ms)", ["camera_id"], registry=r
        )
        self.camera_online = Gauge(
            "edge_camera_online", "1 when the camera delivers frames", ["camera_id"], registry=r
        )
        self.outbox_depth = Gauge(
            "edge_outbox_depth", "Messages waiting for a broker ack", registry=r
        )
        self.outbox_bytes = Gauge("edge_outbox_bytes", "Bytes waiting in the outbox", registry=r)
        self.outbox_dropped = Counter(
            "edge_outbox_dropped",
            "Messages dropped oldest-first because the outbox was full",
            registry=r,
        )
        self.outbox_set_aside = Gauge(
            "edge_outbox_set_aside",
            "Events set aside because the broker can never take them (kept in the outbox file)",
            registry=r,
        )
        self.broker_refused = Gauge(
            "edge_broker_refused",
            "Publishes the broker refused since start (MQTT account or ACL, quota)",
            registry=r,
        )
        self.published = Counter(
            "edge_published", "Messages acknowledged by the broker", registry=r
        )
        self.violations = Counter(
            "edge_violations", "Violations decided", ["rule", "camera_id"], registry=r
        )
        self.mqtt_connected = Gauge(
            "edge_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.camera_errors = Counter(
            "edge_camera_errors", "Errors in a camera loop", ["camera_id"], registry=r
        )
        self._server: Any = None

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on host:port (0 = any free port); return the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = int(server.server_address[1])
        logger.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        """Stop the metrics server if one is running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
