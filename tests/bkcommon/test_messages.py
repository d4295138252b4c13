"""Payload contracts: valid payloads parse to UTC; every kind of bad input is rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bkcommon.errors import PayloadError
from bkcommon.messages import (
    BIGINT_MAX,
    INT32_MAX,
    MAX_PAYLOAD_BYTES,
    Contract,
    EdgeStatus,
    ReadingBatch,
    SensorReading,
    Violation,
    ZigbeeState,
    check_not_future,
    decode,
    encode,
    times_of,
)


def test_reading_normalises_to_utc() -> None:
    r = decode(SensorReading, b'{"ts":"2026-03-01T08:00:00+08:00","temp_c":4.5,"door_open":true}')
    assert r.ts == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert r.schema_version == 1
    assert r.door_open is True


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"ts":"2026-01-01T00:00:00Z"}', "temp_c"),
        (b'{"ts":"2026-01-01T00:00:00Z","temp_c":"warm"}', "temp_c"),
        (b'{"ts":"2026-01-01T00:00:00Z","temp_c":999}', "temp_c"),
        (b'{"ts":"2026-01-01T00:00:00Z","temp_c":NaN}', "temp_c"),
        (b'{"ts":"2026-01-01T00:00:00","temp_c":3}', "timezone"),
        (b'{"ts":"2026-01-01T00:00:00Z","temp_c":3,"extra":1}', "extra"),
        (b'{"ts":"2026-01-01T00:00:00Z","temp_c":3,"schema_version":2}', "schema_version"),
        (b'{"ts":"2026-01-01T00:00:00Z","temp_c":3,"humidity_pct":101}', "humidity_pct"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "oversized"),
    ],
)
def test_bad_readings_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode(SensorReading, raw)


def test_batch_limits() -> None:
    with pytest.raises(PayloadError, match="readings"):
        decode(ReadingBatch, b'{"readings":[]}')
    one = {"ts": "2026-01-01T00:00:00Z", "temp_c": 1.0}
    b = decode(ReadingBatch, json.dumps({"readings": [one, one]}).encode())
    assert len(b.readings) == 2


def test_future_timestamps() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    check_not_future(now + timedelta(minutes=4), now)
    with pytest.raises(PayloadError, match="future"):
        check_not_future(now + timedelta(minutes=6), now)


def test_zigbee_maps_contact_to_door() -> None:
    z = ZigbeeState.model_validate(
        {"temperature": 4.2, "humidity": 51, "battery": 90, "contact": False, "linkquality": 80}
    )
    r = z.to_reading(datetime(2026, 1, 1, tzinfo=UTC))
    assert (r.temp_c, r.humidity_pct, r.battery_pct, r.door_open) == (4.2, 51, 90, True)


def test_violation_round_trip() -> None:
    v = Violation(
        event_id="evt-0001-abc",
        rule="no_mask",
        camera_id="cam1",
        zone="prep",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        confidence=0.8,
        model_version="mask-1",
    )
    assert decode(Violation, encode(v)) == v
    with pytest.raises(PayloadError, match="rule"):
        decode(Violation, encode(v).replace(b"no_mask", b"No Mask!"))


READING = {"ts": "2026-01-01T00:00:00Z", "temp_c": 4.0}
VIOLATION = {
    "event_id": "evt-0001-abc",
    "rule": "no_mask",
    "camera_id": "cam1",
    "started_at": "2026-01-01T00:00:00Z",
    "confidence": 0.5,
}
STATUS = {"box_id": "box-1", "ts": "2026-01-01T00:00:00Z", "online": True}


@pytest.mark.parametrize(
    ("model", "base", "field", "bad", "good"),
    [
        (SensorReading, READING, "temp_c", -80.001, -80.0),
        (SensorReading, READING, "temp_c", 300.001, 300.0),
        (SensorReading, READING, "humidity_pct", -0.1, 0.0),
        (SensorReading, READING, "humidity_pct", 100.1, 100.0),
        (SensorReading, READING, "battery_pct", 100.1, 100.0),
        (SensorReading, READING, "seq", BIGINT_MAX + 1, BIGINT_MAX),
        (SensorReading, READING, "seq", -1, 0),
        (SensorReading, READING, "ts", "1970-01-01T00:00:00Z", "2000-01-01T00:00:00Z"),
        (SensorReading, READING, "ts", "0001-01-01T00:00:00Z", "2000-01-01T08:00:00+08:00"),
        (ZigbeeState, {"temperature": 4.0}, "temperature", 300.5, 300.0),
        (ZigbeeState, {"temperature": 4.0}, "battery", 101, 100),
        (Violation, VIOLATION, "track_id", INT32_MAX + 1, INT32_MAX),
        (Violation, VIOLATION, "track_id", -1, 0),
        (Violation, VIOLATION, "camera_id", "cam\x00", "cam-é"),
        (Violation, VIOLATION, "camera_id", "c" * 65, "c" * 64),
        (Violation, VIOLATION, "started_at", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z"),
        (Violation, VIOLATION, "details", {"a": "x\x00"}, {"a": "x"}),
        (Violation, VIOLATION, "details", {"k\x00": 1}, {"k": 1}),
        (Violation, VIOLATION, "details", {"n": 2**63}, {"n": BIGINT_MAX}),
        (Violation, VIOLATION, "details", {"a": [[[[[[[[1]]]]]]]]}, {"a": [[[[[[1]]]]]]}),
        (EdgeStatus, STATUS, "outbox_depth", BIGINT_MAX + 1, BIGINT_MAX),
        (EdgeStatus, STATUS, "ts", "1970-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        (EdgeStatus, STATUS, "model_version", "m" * 129, "m" * 128),
    ],
)
def test_every_field_is_bounded_by_what_stores_it(
    model: type[Contract | ZigbeeState], base: dict[str, Any], field: str, bad: Any, good: Any
) -> None:
    decode(model, json.dumps({**base, field: good}).encode())
    with pytest.raises(PayloadError, match=field):
        decode(model, json.dumps({**base, field: bad}).encode())


def test_non_finite_json_numbers_and_lone_surrogates_are_refused() -> None:
    with pytest.raises(PayloadError, match="details"):
        decode(Violation, json.dumps({**VIOLATION, "details": {"x": float("inf")}}).encode())
    with pytest.raises(PayloadError, match="camera_id"):
        decode(Violation, json.dumps({**VIOLATION, "camera_id": "\ud800"}).encode())
    with pytest.raises(PayloadError, match="ended_at"):
        decode(Violation, json.dumps({**VIOLATION, "ended_at": "2025-12-31T00:00:00Z"}).encode())


def test_times_of_names_every_time_field() -> None:
    batch = decode(ReadingBatch, json.dumps({"readings": [READING, READING]}).encode())
    assert [f for f, _ in times_of(batch)] == ["readings.0.ts", "readings.1.ts"]
    v = decode(Violation, json.dumps({**VIOLATION, "ended_at": "2026-01-02T00:00:00Z"}).encode())
    assert [f for f, _ in times_of(v)] == ["started_at", "ended_at"]
    noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(PayloadError, match="ended_at: timestamp"):
        check_not_future(dict(times_of(v))["ended_at"], noon, field="ended_at")


SHA = "0" * 64
SQUARE = [[10, 10], [110, 10], [110, 90], [10, 90]]


def test_evidence_scale_and_zone_outline_are_optional() -> None:
    """A box that predates the record sends neither; one that records them round-trips."""
    old = decode(Violation, json.dumps({**VIOLATION, "evidence": {"sha256": SHA}}).encode())
    assert old.evidence is not None
    assert (old.evidence.scale, old.evidence.zone_polygon_px) == (None, None)
    new = decode(
        Violation,
        json.dumps(
            {**VIOLATION, "evidence": {"sha256": SHA, "scale": 2 / 3, "zone_polygon_px": SQUARE}}
        ).encode(),
    )
    assert new.evidence is not None
    assert new.evidence.scale == pytest.approx(2 / 3)
    assert new.evidence.zone_polygon_px == [
        (10.0, 10.0),
        (110.0, 10.0),
        (110.0, 90.0),
        (10.0, 90.0),
    ]
    assert decode(Violation, encode(new)) == new
    assert decode(Violation, json.dumps({**VIOLATION, "evidence": {"scale": 1}}).encode())


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ({"scale": -0.5}, r"evidence\.scale: Input should be greater than 0"),
        ({"scale": 0}, r"evidence\.scale: Input should be greater than 0"),
        ({"scale": 1.5}, r"evidence\.scale: Input should be less than or equal to 1"),
        ({"scale": float("nan")}, r"evidence\.scale: Input should be a finite number"),
        ({"scale": float("inf")}, r"evidence\.scale: Input should be"),
        ({"scale": True}, r"evidence\.scale: Input should be a valid number"),
        ({"scale": "0.5"}, r"evidence\.scale: Input should be a valid number"),
        ({"zone_polygon_px": SQUARE[:2]}, r"evidence\.zone_polygon_px: .*at least 3"),
        ({"zone_polygon_px": [[0, 0]] * 257}, r"evidence\.zone_polygon_px: .*at most 256"),
        ({"zone_polygon_px": [*SQUARE, [float("nan"), 1]]}, r"zone_polygon_px\.4\.0: .*finite"),
        ({"zone_polygon_px": [*SQUARE, [1, 1e9]]}, r"zone_polygon_px\.4\.1: .*less than or equal"),
        ({"zone_polygon_px": [*SQUARE, [1, 2, 3]]}, r"zone_polygon_px\.4: .*at most 2"),
    ],
)
def test_nonsense_scale_or_zone_outline_is_refused_with_the_field(
    evidence: dict[str, Any], reason: str
) -> None:
    """A scale outside (0, 1] (the evidence is never enlarged), not finite or not a number,
    and an outline that is not a polygon of finite pixels, are refused with the field's path."""
    raw = json.dumps({**VIOLATION, "evidence": {"sha256": SHA, **evidence}}).encode()
    with pytest.raises(PayloadError, match=reason):
        decode(Violation, raw)
