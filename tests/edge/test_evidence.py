"""Evidence JPEG and the Violation payload built from a decided event."""

from __future__ import annotations

import base64
import hashlib

import cv2
import numpy as np
import pytest

from bkcommon.messages import MAX_PAYLOAD_BYTES, Violation, decode
from edge.evidence import new_event_id, prepare_violation, render_evidence
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
