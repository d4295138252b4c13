"""Evidence JPEG and the Violation payload built from a decided event."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import cv2
import numpy as np
import pytest

from bkcommon.messages import MAX_PAYLOAD_BYTES, Violation, decode, encode
from edge.evidence import _ZONE_BGR, new_event_id, prepare_violation, render_evidence
from tests.edge.delivery_support import make_event


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_jpeg_decodes_with_size_hash_and_drawing() -> None:
    ev = make_event(width=640, height=360)
    img = render_evidence(ev, quality=90)
    assert img.sha256 == hashlib.sha256(img.jpeg).hexdigest()
    dec = _decode(img.jpeg)
    # full width kept, caption bar added below the frame
    assert dec.shape[1] == 640 == img.width_px
    assert dec.shape[0] == img.height_px > 360
    # the box outline is drawn in red on the left edge of the box
    b = img.boxes[0]
    edge_px = dec[int((b.y1 + b.y2) / 2), int(b.x1)]
    assert edge_px[2] > 180
    assert edge_px[0] < 90
    assert edge_px[1] < 90
    # caption bar is dark with white text
    bar = dec[361:, :]
    assert bar.mean() < 90
    assert bar.max() > 200


def test_large_frame_is_downscaled_boxes_follow() -> None:
    ev = make_event(width=1920, height=1080)
    img = render_evidence(ev, max_width_px=960)
    assert img.width_px == 960
    assert img.boxes[0].x1 == pytest.approx(1920 * 0.2 / 2, abs=1)


def test_violation_payload_roundtrip_and_inline_jpeg_hash() -> None:
    ev = make_event()
    eid = new_event_id()
    prep = prepare_violation(ev, eid)
    v = decode(Violation, prep.payload)
    assert v.event_id == eid
    assert v.rule == "no_mask"
    assert v.zone == "prep"
    assert v.track_id == 7
    assert v.model_version == "mask_yolo-test"
    assert v.confidence == pytest.approx(0.87)
    assert v.details == {"frames": 12, "score": "0.5"}
    assert v.evidence is not None
    assert v.evidence.jpeg_b64 is not None
    jpeg = base64.b64decode(v.evidence.jpeg_b64)
    assert hashlib.sha256(jpeg).hexdigest() == v.evidence.sha256
    assert _decode(jpeg).shape[:2] == (v.evidence.height_px, v.evidence.width_px)


def test_payload_shrinks_to_fit_limit() -> None:
    ev = make_event(width=1920, height=1080, seed=3)  # pure noise: ~1 MB at q85
    prep = prepare_violation(ev, new_event_id(), quality=95, max_width_px=1920)
    assert len(prep.payload) <= MAX_PAYLOAD_BYTES
    v = decode(Violation, prep.payload)
    assert v.evidence is not None
    assert v.evidence.jpeg_b64 is not None
    assert v.evidence.width_px is not None
    assert v.evidence.width_px < 1920
    jpeg = base64.b64decode(v.evidence.jpeg_b64)
    assert hashlib.sha256(jpeg).hexdigest() == v.evidence.sha256


def test_hash_only_when_nothing_fits() -> None:
    prep = prepare_violation(make_event(), new_event_id(), max_bytes=3000)
    v = decode(Violation, prep.payload)
    assert v.evidence is not None
    assert v.evidence.jpeg_b64 is None
    assert v.evidence.sha256 == prep.image.sha256


def test_event_ids_unique_and_time_ordered() -> None:
    ids = [new_event_id(1000.0 + i) for i in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)


def _zone_coloured(img: np.ndarray, polygon: list[tuple[float, float]]) -> float:
    """Share of the pixels under a 1-px line along ``polygon`` drawn in ``_ZONE_BGR``."""
    line = np.zeros(img.shape[:2], np.uint8)
    cv2.polylines(line, [np.array(polygon, np.int32)], isClosed=True, color=255, thickness=1)
    px = img[line > 0].astype(int)
    return float((np.abs(px - np.array(_ZONE_BGR)).max(axis=1) < 60).mean())


@pytest.mark.parametrize(("width", "height", "scale"), [(1920, 1080, 2 / 3), (640, 360, 1.0)])
def test_payload_records_where_the_zone_outline_was_drawn(
    width: int, height: int, scale: float
) -> None:
    """The zone's polygon is in camera pixels; a frame wider than the evidence width is
    shrunk, so the payload says by how much and where the outline lies in the JPEG's pixels
    (what the training export needs to paint it out)."""
    ev = make_event(width=width, height=height)
    prep = prepare_violation(ev, new_event_id(), inline=False)  # noise: too big to inline
    v = decode(Violation, prep.payload)
    assert v.evidence is not None
    assert v.evidence.sha256 == prep.image.sha256
    assert v.evidence.scale == pytest.approx(scale)
    assert ev.zone_polygon is not None
    assert v.evidence.zone_polygon_px == [
        (float(int(x * scale)), float(int(y * scale))) for x, y in ev.zone_polygon
    ]
    dec = _decode(prep.image.jpeg)
    assert dec.shape[1] == round(width * scale)
    assert _zone_coloured(dec, v.evidence.zone_polygon_px) > 0.5  # the outline is there


def test_reduced_evidence_records_its_own_outline_and_no_zone_sends_none() -> None:
    """When the payload only fits at a smaller width, the record follows the image sent."""
    ev = make_event(width=1920, height=1080, seed=3)  # pure noise: reduced to fit
    v = decode(Violation, prepare_violation(ev, new_event_id(), max_width_px=1920).payload)
    assert v.evidence is not None
    assert v.evidence.width_px is not None
    assert v.evidence.width_px < 1920
    scale = v.evidence.scale
    assert scale is not None
    assert scale == pytest.approx(v.evidence.width_px / 1920, abs=1e-3)
    assert v.evidence.zone_polygon_px is not None
    assert max(x for x, _ in v.evidence.zone_polygon_px) == int(1920 * 0.8 * scale)
    assert v.evidence.jpeg_b64 is not None
    sent = _decode(base64.b64decode(v.evidence.jpeg_b64))
    assert _zone_coloured(sent, v.evidence.zone_polygon_px) > 0.5
    no_zone = replace(make_event(), zone_id=None, zone_polygon=None)
    v = decode(Violation, prepare_violation(no_zone, new_event_id()).payload)
    assert v.evidence is not None
    assert (v.evidence.scale, v.evidence.zone_polygon_px) == (1.0, None)
    assert b"zone_polygon_px" not in encode(v)


def test_an_outline_the_contract_cannot_hold_leaves_the_violation_valid_and_unrecorded() -> None:
    """A zone of 300 corners is drawn but cannot be sent; the violation still goes (valid at
    ingest) without scale or outline, so the export knows the outline's place is unknown."""
    ring = [(320 + 100 * np.cos(a), 180 + 100 * np.sin(a)) for a in np.linspace(0, 6.2, 300)]
    ev = replace(make_event(), zone_polygon=[(float(x), float(y)) for x, y in ring])
    prep = prepare_violation(ev, new_event_id(), inline=False)
    v = decode(Violation, prep.payload)
    assert v.evidence is not None
    assert (v.evidence.scale, v.evidence.zone_polygon_px) == (None, None)
    assert v.zone == "prep"  # the export reads: in a zone, outline not recorded
    assert _zone_coloured(_decode(prep.image.jpeg), ring) > 0.3  # it was drawn
