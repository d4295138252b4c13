"""Evidence from the main stream for a camera analysed on its sub-stream.

The box decodes only the small sub-stream continuously (``Camera.substream``). When the
rules decide a violation, the camera's main stream is opened, one frame is grabbed and
the stream is closed (:func:`edge.capture.grab_still`, bounded by
``substream.grab_timeout_s``); the event's boxes and zone outline are scaled from
sub-stream pixels to that frame. When the main stream fails, the event keeps the
sub-stream frame and says so in its details (``evidence_source`` / ``evidence_note``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from bkcommon.sitefile import Camera
from edge.capture import CaptureSettings, StillGrabError, grab_still
from edge.events import EvidenceBox, ViolationEvent

logger = logging.getLogger(__name__)

StillGrabber = Callable[[str, CaptureSettings, float, float | None], npt.NDArray[np.uint8]]


def scale_event(
    event: ViolationEvent, frame: npt.NDArray[np.uint8], details: dict[str, object]
) -> ViolationEvent:
    """The event on ``frame``: boxes and zone outline scaled from the event's frame to it.

    Example:
        >>> from datetime import UTC, datetime
        >>> small = np.zeros((360, 640, 3), np.uint8)
        >>> ev = ViolationEvent("no_mask", "c", "z", datetime(2026, 1, 1, tzinfo=UTC), None,
        ...     0.9, None, "m", small, [EvidenceBox(10, 20, 30, 40, "no_mask", 0.9)],
        ...     [(0.0, 0.0), (640.0, 360.0), (0.0, 360.0)])
        >>> big = scale_event(ev, np.zeros((720, 1280, 3), np.uint8), {})
        >>> (big.boxes[0].x1, big.boxes[0].y2, big.zone_polygon[1])
        (20.0, 80.0, (1280.0, 720.0))
    """
    fh, fw = event.frame.shape[:2]
    h, w = frame.shape[:2]
    sx, sy = w / fw, h / fh
    boxes = [
        EvidenceBox(b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy, b.label, b.confidence)
        for b in event.boxes
    ]
    polygon = (
        [(x * sx, y * sy) for x, y in event.zone_polygon]
        if event.zone_polygon is not None
        else None
    )
    return replace(
        event,
        frame=frame,
        boxes=boxes,
        zone_polygon=polygon,
        details={**event.details, **details},
    )


def main_stream_evidence(
    camera: Camera,
    event: ViolationEvent,
    settings: CaptureSettings,
    video_pos_s: float | None = None,
    grab: StillGrabber = grab_still,
) -> ViolationEvent:
    """Swap the event's sub-stream frame for one grabbed from the main stream (or note why not).

    ``video_pos_s`` is where a video file standing in for the camera was when the frame
    was taken; a live stream is grabbed at its live position.
    """
    sub = camera.substream
    if sub is None:
        return event
    h, w = event.frame.shape[:2]
    try:
        still = grab(camera.url, settings, sub.grab_timeout_s, video_pos_s)
    except StillGrabError as exc:
        logger.warning(
            "camera %s: evidence from the sub-stream: %s",
            camera.id,
            exc,
            extra={"camera_id": camera.id},
        )
        return replace(
            event,
            details={
                **event.details,
                "evidence_source": "substream",
                "evidence_note": f"main stream unavailable ({exc}); photo from the {w}x{h} "
                "analysis stream",
            },
        )
    return scale_event(event, still, {"evidence_source": "main_stream"})
