"""Turn a decided violation into evidence, a durable outbox row, a pop-up and an alert."""

from __future__ import annotations

import logging
import uuid

from bkcommon.messages import Alert, AlertLevel
from bkcommon.timeutil import rfc3339, utcnow
from bkcommon.topics import DEFAULT_PREFIX, violation_topic
from edge.display import KitchenDisplay, Reminder
from edge.events import ViolationEvent
from edge.evidence import PreparedViolation, new_event_id, prepare_violation
from edge.metrics import EdgeMetrics
from edge.outbox import Outbox
from edge.publish import EdgePublisher
from edge.rulenames import rule_title

logger = logging.getLogger(__name__)


class Delivery:
    """The delivery half of the box: one call per violation, safe from several camera threads."""

    def __init__(
        self,
        *,
        site_id: str,
        box_id: str,
        outbox: Outbox,
        prefix: str = DEFAULT_PREFIX,
        display: KitchenDisplay | None = None,
        publisher: EdgePublisher | None = None,
        metrics: EdgeMetrics | None = None,
        jpeg_quality: int = 85,
        max_width_px: int = 1280,
        inline_evidence: bool = True,
    ) -> None:
        """Wire the outbox, the local page, the MQTT side and the metrics."""
        self.site_id = site_id
        self.box_id = box_id
        self.outbox = outbox
        self.topic = violation_topic(site_id, box_id, prefix)
        self.display = display
        self.publisher = publisher
        self.metrics = metrics
        self.jpeg_quality = jpeg_quality
        self.max_width_px = max_width_px
        self.inline_evidence = inline_evidence

    def deliver(self, event: ViolationEvent, event_id: str | None = None) -> PreparedViolation:
        """Render evidence, pop it up locally, store it in the outbox and wake the sender.

        The event id is fixed here, before the row is stored, so every resend of the
        row carries the same id and the backend stores it once.
        """
        eid = event_id or new_event_id()
        prepared = prepare_violation(
            event,
            eid,
            quality=self.jpeg_quality,
            max_width_px=self.max_width_px,
            inline=self.inline_evidence,
        )
        zh, en = rule_title(event.rule)
        if self.display is not None:
            self.display.push(
                Reminder(
                    event_id=eid,
                    rule=event.rule,
                    title_zh=zh,
                    title_en=en,
                    camera_id=event.camera_id,
                    zone=event.zone_id,
                    ts=rfc3339(event.started_at),
                ),
                prepared.image.jpeg,
            )
        stored = self.outbox.put(eid, self.topic, prepared.payload)
        logger.info(
            "violation %s on camera %s (%s): event %s %s",
            event.rule,
            event.camera_id,
            event.zone_id or "-",
            eid,
            "queued" if stored else "already queued",
        )
        if self.metrics is not None:
            self.metrics.violations.labels(event.rule, event.camera_id).inc()
            st = self.outbox.stats()
            self.metrics.outbox_depth.set(st.depth)
            self.metrics.outbox_bytes.set(st.bytes_total)
        if self.publisher is not None:
            self.publisher.wake()
            level = AlertLevel.WARNING if not event.rule.startswith("camera_") else AlertLevel.INFO
            snap = None
            if self.display is not None:
                snap = f"{self.display.url}/snapshot/{eid}.jpg"
            self.publisher.publish_alert(
                Alert(
                    alert_id=str(uuid.uuid5(uuid.NAMESPACE_URL, eid)),
                    ts=utcnow(),
                    level=level,
                    rule=event.rule,
                    title=f"{zh} {en}",
                    message=f"camera {event.camera_id}"
                    + (f", zone {event.zone_id}" if event.zone_id else ""),
                    camera_id=event.camera_id,
                    snapshot_url=snap,
                )
            )
        return prepared
