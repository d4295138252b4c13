"""Payload contracts: valid payloads parse to UTC; every kind of bad input is rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bkcommon.errors import PayloadError
from bkcommon.messages import (
    MAX_PAYLOAD_BYTES,
    ReadingBatch,
    SensorReading,
    Violation,
    ZigbeeState,
    check_not_future,
    decode,
    encode,
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
