"""Validation, table-driven: every kind of bad input gets its code and a readable reason."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from bkcommon.messages import MAX_PAYLOAD_BYTES
from bkcommon.profiles import Profile, RuleParams
from ingest.directory import SensorDirectory
from ingest.types import SensorInfo
from ingest.validate import (
    AcceptedReadings,
    AcceptedStatus,
    AcceptedViolation,
    Ignored,
    Rejected,
    Validator,
    clean_text,
)

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
P = "bk/v1"
DIRECTORY = SensorDirectory(
    [
        SensorInfo("f1", "s1", Profile.FRIDGE, RuleParams(high_c=8.0)),
        SensorInfo("zb", "s1", Profile.FRIDGE, RuleParams(high_c=8.0), "kitchen_fridge"),
    ]
)
V = Validator(DIRECTORY, P, "zigbee2mqtt")


def j(**kw: object) -> bytes:
    return json.dumps(kw).encode()


GOOD = j(ts="2026-03-01T07:59:00Z", seq=1, temp_c=4.5)
VIOLATION = {
    "event_id": "evt-00000001",
    "rule": "no_mask",
    "camera_id": "cam-1",
    "started_at": "2026-03-01T07:59:00Z",
    "confidence": 0.9,
}


@pytest.mark.parametrize(
    ("topic", "raw", "code", "reason_start"),
    [
        ("bk/v1/s1/sensor/f1/reading", b"{nope", "not_json", "not JSON"),
        ("bk/v1/s1/sensor/f1/reading", b"[1, 2]", "not_json", "not a JSON object"),
        ("bk/v1/s1/sensor/f1/reading", b"\xff\xfe", "not_json", "not JSON"),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00Z", temp_c="warm"),
            "invalid",
            "invalid SensorReading: temp_c",
        ),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00Z", temp_c=400),
            "invalid",
            "invalid SensorReading: temp_c",
        ),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00Z", temp_c=-90),
            "invalid",
            "invalid SensorReading: temp_c",
        ),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00", temp_c=3),
            "invalid",
            "invalid SensorReading: ts",
        ),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T09:00:00Z", temp_c=3),
            "future",
            "timestamp",
        ),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00Z", temp_c=3, extra=1),
            "invalid",
            "invalid SensorReading: extra",
        ),
        ("bk/v1/s1/sensor/f1/reading", b" " * (MAX_PAYLOAD_BYTES + 1), "oversized", "oversized"),
        ("bk/v1/s1/sensor/ghost/reading", GOOD, "unknown_sensor", "unknown sensor"),
        ("bk/v1/s2/sensor/f1/reading", GOOD, "site_mismatch", "site mismatch"),
        ("bk/v1/s1/sensor/f1/bogus", GOOD, "topic", "unknown topic layout"),
        ("bk/v1/s1/sensor/f|1/reading", GOOD, "topic", "bad topic"),
        ("bk/v1/s1/sensor/f1", GOOD, "topic", "unknown topic layout"),
        ("other/s1/sensor/f1/reading", GOOD, "topic", "topic"),
        ("bk/v1/s1/sensor/f1/readings", j(readings=[]), "invalid", "invalid ReadingBatch"),
        (
            "bk/v1/s1/sensor/f1/readings",
            j(
                readings=[
                    {"ts": "2026-03-01T07:59:00Z", "temp_c": 1},
                    {"ts": "2026-03-02T07:59:00Z", "temp_c": 1},
                ]
            ),
            "future",
            "readings.1.ts: timestamp",
        ),
        # a time with no UTC form (the year 10000 there): OverflowError escaped the validator
        # and the message stayed unacknowledged, redelivered for ever
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="9999-12-31T23:59:59-01:00", temp_c=3),
            "invalid",
            "invalid SensorReading: ts",
        ),
        (
            "bk/v1/s1/sensor/f1/readings",
            j(readings=[{"ts": "9999-12-31T23:59:59-01:00", "temp_c": 3}]),
            "invalid",
            "invalid ReadingBatch: readings.0.ts",
        ),
        (
            "bk/v1/s1/edge/box1/violation",
            j(**{**VIOLATION, "started_at": "9999-12-31T23:59:59-01:00"}),
            "invalid",
            "invalid Violation: started_at",
        ),
        (
            "bk/v1/s1/edge/box1/status",
            j(box_id="box1", ts="9999-12-31T23:59:59-01:00", online=True),
            "invalid",
            "invalid EdgeStatus: ts",
        ),
        # a boolean is not a measurement: lax parsing stored true as 1.0 °C, false as 0.0
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00Z", temp_c=True),
            "invalid",
            "invalid SensorReading: temp_c",
        ),
        (
            "bk/v1/s1/sensor/f1/readings",
            j(readings=[{"ts": "2026-03-01T07:59:00Z", "temp_c": 3, "humidity_pct": False}]),
            "invalid",
            "invalid ReadingBatch: readings.0.humidity_pct",
        ),
        ("zigbee2mqtt/kitchen_fridge", j(temperature=True), "invalid", "invalid ZigbeeState"),
        (
            "bk/v1/s1/sensor/f1/reading",
            j(ts="2026-03-01T07:59:00Z", temp_c="4.5"),
            "invalid",
            "invalid SensorReading: temp_c",
        ),
        ("zigbee2mqtt/kitchen_fridge", j(temperature="x"), "invalid", "invalid ZigbeeState"),
        ("zigbee2mqtt/kitchen_fridge", j(humidity=40), "invalid", "invalid ZigbeeState"),
        (
            "bk/v1/s1/edge/box1/violation",
            j(**{**VIOLATION, "confidence": 2}),
            "invalid",
            "invalid Violation: confidence",
        ),
        (
            "bk/v1/s1/edge/box1/violation",
            j(**{**VIOLATION, "evidence": {"jpeg_b64": "%%%not-base64"}}),
            "evidence",
            "evidence",
        ),
        (
            "bk/v1/s1/edge/box1/violation",
            j(
                **{
                    **VIOLATION,
                    "evidence": {"jpeg_b64": base64.b64encode(b"img").decode(), "sha256": "0" * 64},
                }
            ),
            "evidence",
            "evidence.sha256",
        ),
        (
            "bk/v1/s1/edge/box1/status",
            j(box_id="box2", ts="2026-03-01T07:59:00Z", online=True),
            "box_mismatch",
            "box mismatch",
        ),
    ],
)
def test_rejections_have_a_code_and_reason(
    topic: str, raw: bytes, code: str, reason_start: str
) -> None:
    out = V(topic, raw, NOW)
    assert isinstance(out, Rejected), out
    assert out.code == code
    assert reason_start in out.reason
    assert "\x00" not in out.reason


def test_accepts_single_reading_batch_and_zigbee() -> None:
    one = V("bk/v1/s1/sensor/f1/reading", GOOD, NOW)
    assert isinstance(one, AcceptedReadings)
    assert one.sensor_id == "f1"
    assert one.readings[0].temp_c == 4.5
    assert one.readings[0].ts == NOW - timedelta(minutes=1)
    batch = V("bk/v1/s1/sensor/f1/readings", j(readings=[json.loads(GOOD)] * 3), NOW)
    assert isinstance(batch, AcceptedReadings)
    assert len(batch.readings) == 3
    zb = V(
        "zigbee2mqtt/kitchen_fridge",
        b'{"temperature":4.2,"humidity":51,"battery":90,"linkquality":80}',
        NOW,
    )
    assert isinstance(zb, AcceptedReadings)
    assert zb.sensor_id == "zb"
    assert zb.readings[0].ts == NOW
    assert zb.readings[0].battery_pct == 90


def test_unmapped_zigbee_device_is_ignored_not_dead_lettered() -> None:
    assert isinstance(V("zigbee2mqtt/lamp", b'{"state":"ON"}', NOW), Ignored)


def test_violation_evidence_is_decoded_and_hashed() -> None:
    img = b"\xff\xd8jpeg bytes"
    sha = hashlib.sha256(img).hexdigest()
    raw = j(
        **{**VIOLATION, "evidence": {"jpeg_b64": base64.b64encode(img).decode(), "sha256": sha}}
    )
    out = V("bk/v1/s1/edge/box1/violation", raw, NOW)
    assert isinstance(out, AcceptedViolation)
    assert out.evidence_jpeg == img
    assert out.evidence_sha256 == sha
    assert (out.site_id, out.box_id) == ("s1", "box1")


def test_status_accepted() -> None:
    out = V(
        "bk/v1/s1/edge/box1/status", j(box_id="box1", ts="2026-03-01T07:59:00Z", online=False), NOW
    )
    assert isinstance(out, AcceptedStatus)
    assert out.status.online is False


def test_clean_text_strips_nul_and_bounds_length() -> None:
    assert clean_text("a\x00b") == "a\\x00b"
    assert len(clean_text("x" * 5000)) == 1000


def test_an_unexpected_exception_is_dead_lettered_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a library raises for one message, the validator answers Rejected: the worker
    acknowledges and dead-letters it instead of leaving it in flight for ever."""

    def boom(*_: object) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(V, "_validate", boom)
    out = V("bk/v1/s1/sensor/f1/reading", GOOD, NOW)
    assert isinstance(out, Rejected)
    assert out.code == "invalid"
    assert out.reason == "unexpected OverflowError: date value out of range"


def test_a_retained_zigbee_state_is_not_a_new_reading() -> None:
    """Zigbee2MQTT states carry no time and are stamped on arrival: a retained one, sent
    again on every (re)subscription, became a reading "now" of a silent sensor."""
    raw = b'{"temperature":3.5}'
    assert isinstance(V("zigbee2mqtt/kitchen_fridge", raw, NOW), AcceptedReadings)
    out = V("zigbee2mqtt/kitchen_fridge", raw, NOW, retained=True)
    assert isinstance(out, Ignored)
    assert "retained" in out.reason
    # a native reading carries its own time: retained or not, it is what it says
    assert isinstance(V("bk/v1/s1/sensor/f1/reading", GOOD, NOW, retained=True), AcceptedReadings)
    status = j(box_id="box1", ts="2026-03-01T07:59:00Z", online=True)
    live = V("bk/v1/s1/edge/box1/status", status, NOW)
    replayed = V("bk/v1/s1/edge/box1/status", status, NOW, retained=True)
    assert isinstance(live, AcceptedStatus)
    assert isinstance(replayed, AcceptedStatus)
    assert (live.retained, replayed.retained) == (False, True)
