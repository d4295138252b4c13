"""Evidence for a violation: an annotated JPEG and the versioned ``Violation`` payload.

The JPEG shows the boxes with label and confidence, the zone outline and a caption
bar (rule, camera, zone, UTC time) added below the frame so nothing is covered.
OpenCV cannot draw Chinese; the Chinese rule title is drawn only when a CJK font
is installed (Pillow + a font file), never fetched. The payload keeps under
``MAX_PAYLOAD_BYTES`` by lowering JPEG quality, then the size, then leaving the
image out (its sha256 stays).

The payload's evidence also says how the frame was shrunk (``scale``) and where the zone
outline was drawn in the image's pixels (``zone_polygon_px``): the zone's polygon is in the
camera's pixels, and the training export (``models.captures``) must find the outline to take
it off a confirmed capture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bkcommon.messages import (
    MAX_BOX_PX,
    MAX_PAYLOAD_BYTES,
    MAX_ZONE_POINTS,
    BoxXYXY,
    Evidence,
    Violation,
    encode,
)
from bkcommon.timeutil import rfc3339
from edge.events import ViolationEvent
from edge.rulenames import rule_title

logger = logging.getLogger(__name__)

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
_BOX_BGR = (0, 0, 255)
_ZONE_BGR = (0, 215, 255)
_BAR_BGR = (32, 32, 32)
_MIN_WIDTH_PX = 160


@dataclass(frozen=True, slots=True)
class EvidenceImage:
    """An encoded evidence JPEG with its hash, size, the boxes in its pixels, the scale from
    the event's frame to it and the zone outline's corners as drawn (None: no outline)."""

    jpeg: bytes
    sha256: str
    width_px: int
    height_px: int
    boxes: list[BoxXYXY]
    scale: float = 1.0
    zone_polygon: list[tuple[float, float]] | None = None


def new_event_id(now_s: float | None = None) -> str:
    """Return a new event id, time-ordered and unique, fixed once so resends carry the same id.

    Example:
        >>> len(new_event_id(0.0))
        32
    """
    ms = int((time.time() if now_s is None else now_s) * 1000)
    return f"{ms:012x}{secrets.token_hex(10)}"


def find_cjk_font() -> Path | None:
    """Return an installed font that can draw Chinese, or None."""
    for cand in CJK_FONT_CANDIDATES:
        p = Path(cand)
        if p.is_file():
            return p
    return None


def _draw_cjk(img: npt.NDArray[Any], text: str, org: tuple[int, int], size_px: int) -> bool:
    font_path = find_cjk_font()
    if font_path is None:
        return False
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return False
    pil = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(pil)
    font = ImageFont.truetype(str(font_path), size_px)
    draw.text(org, text, font=font, fill=(255, 255, 255))
    img[:] = cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)
    return True


def _caption(event: ViolationEvent) -> str:
    _zh, en = rule_title(event.rule)
    zone = f" zone {event.zone_id}" if event.zone_id else ""
    return (
        f"{en} [{event.rule}]  cam {event.camera_id}{zone}  "
        f"{rfc3339(event.started_at)[:19]}Z  conf {event.confidence:.2f}"
    )


def render_evidence(
    event: ViolationEvent, *, quality: int = 85, max_width_px: int = 1280
) -> EvidenceImage:
    """Draw boxes, zone outline and caption on a copy of the event frame and encode a JPEG."""
    frame = event.frame
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a BGR frame of shape (h, w, 3), got {frame.shape}")
    h0, w0 = frame.shape[:2]
    scale = min(1.0, max_width_px / w0)
    if scale < 1.0:
        img = cv2.resize(
            frame, (round(w0 * scale), round(h0 * scale)), interpolation=cv2.INTER_AREA
        )
    else:
        img = frame.copy()
    h, w = img.shape[:2]
    thick = max(1, round(w / 400))
    font_scale = max(0.35, w / 1600)
    drawn: list[tuple[float, float]] | None = None
    if event.zone_polygon:
        pts = np.array([[x * scale, y * scale] for x, y in event.zone_polygon], dtype=np.int32)
        cv2.polylines(img, [pts], isClosed=True, color=_ZONE_BGR, thickness=thick)
        drawn = [(float(x), float(y)) for x, y in pts.tolist()]
    boxes: list[BoxXYXY] = []
    for b in event.boxes:
        x1, y1, x2, y2 = (round(v * scale) for v in (b.x1, b.y1, b.x2, b.y2))
        cv2.rectangle(img, (x1, y1), (x2, y2), _BOX_BGR, thick + 1)
        label = f"{b.label} {b.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        ty = max(th + base, y1)
        cv2.rectangle(img, (x1, ty - th - base), (x1 + tw, ty), _BOX_BGR, -1)
        cv2.putText(
            img,
            label,
            (x1, ty - base),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
        boxes.append(
            BoxXYXY(
                x1=x1,
                y1=y1,
                x2=x2,
                y2=y2,
                label=b.label,
                confidence=min(1.0, max(0.0, b.confidence)),
            )
        )
    bar_h = max(20, round(h * 0.07))
    img = cv2.copyMakeBorder(img, 0, bar_h, 0, 0, cv2.BORDER_CONSTANT, value=_BAR_BGR)
    text = _caption(event)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
    fs = font_scale * min(1.0, (w * 0.98) / max(tw, 1))
    cv2.putText(
        img,
        text,
        (4, h + bar_h // 2 + th // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        fs,
        (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )
    zh, _en = rule_title(event.rule)
    _draw_cjk(img, zh, (4, 4), max(14, bar_h - 6))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    jpeg = buf.tobytes()
    return EvidenceImage(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        width_px=int(img.shape[1]),
        height_px=int(img.shape[0]),
        boxes=boxes,
        scale=scale,
        zone_polygon=drawn,
    )


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return out


def _outline_to_send(
    polygon: list[tuple[float, float]] | None,
) -> list[tuple[float, float]] | None:
    """The drawn outline as the contract takes it (``Evidence.zone_polygon_px``), or None.

    A zone of fewer than 3 or more than ``MAX_ZONE_POINTS`` corners, or one reaching past
    ``MAX_BOX_PX``, would make the whole violation invalid at ingest; the violation matters
    more than taking its outline off a training image, so such an outline is not sent (and
    neither is the scale, see ``build_violation``).
    """
    if polygon is None or not 3 <= len(polygon) <= MAX_ZONE_POINTS:
        return None
    if any(abs(v) > MAX_BOX_PX for pt in polygon for v in pt):
        return None
    return polygon


def build_violation(
    event: ViolationEvent, event_id: str, image: EvidenceImage | None, *, inline: bool = True
) -> Violation:
    """Turn a decided event (and its evidence image) into the versioned MQTT payload model.

    ``scale`` set without ``zone_polygon_px`` tells the backend that no outline was drawn, so
    where an outline was drawn but cannot be sent, the scale is left out too: the export then
    treats the image like an older box's, whose outline may be there (and says so).
    """
    evidence = None
    if image is not None:
        outline = _outline_to_send(image.zone_polygon)
        recorded = outline is not None or image.zone_polygon is None
        evidence = Evidence(
            jpeg_b64=base64.b64encode(image.jpeg).decode("ascii") if inline else None,
            sha256=image.sha256,
            width_px=image.width_px,
            height_px=image.height_px,
            boxes=image.boxes,
            scale=image.scale if recorded else None,
            zone_polygon_px=outline,
        )
    return Violation(
        event_id=event_id,
        rule=event.rule,
        camera_id=event.camera_id,
        zone=event.zone_id,
        started_at=event.started_at,
        ended_at=event.ended_at,
        confidence=min(1.0, max(0.0, float(event.confidence))),
        track_id=event.track_id,
        model_version=event.model_version[:128],
        evidence=evidence,
        details=_json_safe(event.details),
    )


@dataclass(frozen=True, slots=True)
class PreparedViolation:
    """A violation ready for the outbox: its model, encoded bytes and the full-size image."""

    violation: Violation
    payload: bytes
    image: EvidenceImage


def prepare_violation(
    event: ViolationEvent,
    event_id: str,
    *,
    quality: int = 85,
    max_width_px: int = 1280,
    inline: bool = True,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> PreparedViolation:
    """Render evidence and encode the payload, shrinking the inline JPEG to fit ``max_bytes``."""
    image = render_evidence(event, quality=quality, max_width_px=max_width_px)
    if not inline:
        v = build_violation(event, event_id, image, inline=False)
        return PreparedViolation(v, encode(v), image)
    q, width = quality, min(max_width_px, image.width_px)
    sent = image
    while True:
        b64_len = 4 * ((len(sent.jpeg) + 2) // 3)
        v = build_violation(event, event_id, sent, inline=b64_len < max_bytes)
        payload = encode(v)
        if b64_len < max_bytes and len(payload) <= max_bytes:
            if sent is not image:
                logger.info(
                    "event %s: evidence reduced to %dpx q%d to fit %d bytes",
                    event_id,
                    sent.width_px,
                    q,
                    max_bytes,
                )
            return PreparedViolation(v, payload, image)
        if q > 45:
            q -= 15
        elif width // 2 >= _MIN_WIDTH_PX:
            width //= 2
        else:
            break
        sent = render_evidence(event, quality=q, max_width_px=width)
    logger.warning(
        "event %s: evidence does not fit %d bytes; sending its hash only", event_id, max_bytes
    )
    v = build_violation(event, event_id, image, inline=False)
    return PreparedViolation(v, encode(v), image)
