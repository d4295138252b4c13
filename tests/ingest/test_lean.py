"""The fast path of reading validation decides exactly as the full contract, and the
worker's writer lanes acknowledge in receive order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator

from bkcommon.errors import PayloadError
from bkcommon.messages import ReadingBatch, SensorReading, decode
from bkcommon.settings import CommonSettings
from ingest.directory import SensorDirectory
from ingest.lean import LeanBatch, LeanReading, lean_batch
from ingest.settings import IngestSettings
from ingest.validate import AcceptedReadings, Rejected, Validator
from ingest.worker import IngestWorker, _Pending
from ingest.writer import BatchWriter, Item

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
P = "bk/v1"


def _bounds(model: type[Any], name: str) -> list[str]:
    field = model.model_fields[name]
    return sorted(repr(m) for m in field.metadata if not isinstance(m, AfterValidator))


def test_lean_models_have_the_contracts_fields_bounds_and_defaults() -> None:
    for lean, full in ((LeanReading, SensorReading), (LeanBatch, ReadingBatch)):
        assert list(lean.model_fields) == list(full.model_fields)
        assert lean.model_config.get("extra") == full.model_config.get("extra") == "forbid"
        for name, field in full.model_fields.items():
            assert _bounds(lean, name) == _bounds(full, name), name
            assert lean.model_fields[name].is_required() == field.is_required(), name
            if not field.is_required():
                assert lean.model_fields[name].default == field.default, name


def _full(raw: bytes) -> list[SensorReading] | None:
    try:
        batch = decode(ReadingBatch, raw)
    except PayloadError:
        return None
    for r in batch.readings:
        if r.ts - NOW > SKEW:
            return None
    return list(batch.readings)


times = st.one_of(
    st.sampled_from(
        [
            "2026-03-01T07:59:00Z",
            "2026-03-01T07:59:00.250+00:00",
            "2026-03-01T15:59:00+08:00",  # UTC after conversion: the full path's job
            "2026-03-01T02:59:00-05:00",
            "2026-03-01T08:04:59Z",
            "2026-03-01T08:06:00Z",  # beyond the allowed skew
            "1999-12-31T23:59:59Z",  # before the contract's floor
            "2026-03-01T07:59:00",  # no offset
            "not a time",
        ]
    ),
    st.datetimes(
        min_value=datetime(1999, 1, 1), max_value=datetime(2026, 3, 2), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
)
real = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 1e-40, 5e-39, 1.2e-38, 100.0, 100.0001, -1.0]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=110),
)
reading = st.fixed_dictionaries(
    {"ts": times, "temp_c": st.one_of(st.floats(-100, 320), st.sampled_from([-80.0, 300.0]))},
    optional={
        "seq": st.one_of(st.none(), st.integers(-1, 2**63)),
        "humidity_pct": real,
        "battery_pct": real,
        "door_open": st.one_of(st.none(), st.booleans()),
        "schema_version": st.sampled_from([1, 2]),
        "extra": st.just(1),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(reading, min_size=0, max_size=6))
def test_lean_batch_accepts_only_what_the_contract_accepts_with_the_same_values(
    readings: list[dict[str, Any]],
) -> None:
    raw = json.dumps({"readings": readings}).encode()
    lean = lean_batch(raw, False, NOW, SKEW, None)
    full = _full(raw)
    if lean is None:
        return  # the validator then takes the full way: the same outcome by construction
    assert full is not None, raw
    assert len(lean) == len(full)
    for a, b in zip(lean, full, strict=True):
        assert a.ts == b.ts
        assert a.ts.utcoffset() == timedelta(0)
        assert (a.seq, a.temp_c, a.humidity_pct, a.door_open, a.battery_pct) == (
            b.seq,
            b.temp_c,
            b.humidity_pct,
            b.door_open,
            b.battery_pct,
        )


def test_lean_batch_hands_conversions_and_faults_to_the_full_contract() -> None:
    v = Validator(SensorDirectory(), P)
    good = {"ts": "2026-03-01T07:59:00Z", "temp_c": 4.0}

    def batch(**kw: Any) -> bytes:
        return json.dumps({"readings": [good, good | kw]}).encode()

    # a time with an offset is converted to UTC; a tiny float4 value rounded
    out = v(f"{P}/s1/sensor/f1/readings", batch(ts="2026-03-01T16:00:00+08:00"), NOW)
    assert lean_batch(batch(ts="2026-03-01T16:00:00+08:00"), False, NOW, SKEW, None) is None
    # unknown sensor in an empty directory: the fast path runs after the registry check
    assert isinstance(out, Rejected)
    assert out.code == "unknown_sensor"
    assert lean_batch(batch(humidity_pct=1e-40), False, NOW, SKEW, None) is None
    future = batch(ts="2026-03-01T08:30:00Z")
    assert lean_batch(future, False, NOW, SKEW, None) is None
    floor = datetime(2026, 3, 1, 7, 59, 30, tzinfo=UTC)
    assert lean_batch(batch(), False, NOW, SKEW, floor) is None
    assert lean_batch(batch(), False, NOW, SKEW, None) is not None
    single = json.dumps(good).encode()
    assert lean_batch(single, True, NOW, SKEW, None) is not None


def test_validator_results_through_the_full_path_are_unchanged(registry_db: str) -> None:
    with psycopg.connect(registry_db) as conn:
        directory = SensorDirectory()
        directory.refresh(conn)
    v = Validator(directory, P)
    t = f"{P}/site-a/sensor/fridge-1/readings"
    rs = [
        {"ts": "2026-03-01T15:00:00+08:00", "temp_c": 4.0, "humidity_pct": 1e-40},
        {"ts": (NOW + timedelta(minutes=1)).isoformat(), "temp_c": 4.0},
    ]
    out = v(t, json.dumps({"readings": rs}).encode(), NOW)
    assert isinstance(out, AcceptedReadings)
    first = out.readings[0]
    assert first.ts == datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    assert first.ts.tzinfo is UTC
    rounded = SensorReading(ts=NOW, temp_c=4.0, humidity_pct=1e-40).humidity_pct
    assert first.humidity_pct == rounded != 1e-40  # as float4 stores it
    rs[1]["ts"] = (NOW + timedelta(minutes=6)).isoformat()
    bad = v(t, json.dumps({"readings": rs}).encode(), NOW)
    assert isinstance(bad, Rejected)
    assert bad.code == "future"
    assert "readings.1.ts" in bad.reason


def test_a_time_twice_inside_one_gateway_batch_is_stored_once(registry_db: str) -> None:
    with psycopg.connect(registry_db) as conn:
        directory = SensorDirectory()
        directory.refresh(conn)
        conn.commit()
        v = Validator(directory, P)
        t = f"{P}/site-a/sensor/fridge-1/readings"
        ts = [(NOW - timedelta(hours=1, minutes=-i)).isoformat() for i in range(3)]
        first = {"readings": [{"ts": x, "temp_c": 1.0} for x in ts + ts[:1]]}
        again = {"readings": [{"ts": ts[2], "temp_c": 9.0}, {"ts": ts[0], "temp_c": 9.0}]}
        msgs = [json.dumps(b).encode() for b in (first, again)]
        res = BatchWriter(None, "w").write(conn, [Item(t, m, NOW, v(t, m, NOW)) for m in msgs])
        assert (res.inserted, res.duplicates) == (3, 3)
        assert [r.temp_c for r in res.new_readings] == [1.0, 1.0, 1.0]
        stored = conn.execute(
            "SELECT count(*), max(temp_c) FROM sensor_readings WHERE sensor_id = 'fridge-1'"
        ).fetchone()
        assert stored == (3, 1.0)


class _OrderWorker(IngestWorker):
    """Records what would be acknowledged instead of sending it (no broker here)."""

    acked: list[int]

    def _ack(self, batch: list[_Pending]) -> None:
        self.acked.extend(p.mid for p in batch)


@pytest.mark.parametrize("writers", [1, 3])
def test_lanes_keep_each_sensor_together_and_ack_in_receive_order(
    registry_db: str, writers: int
) -> None:
    common = CommonSettings(database_url=registry_db, mqtt_prefix=P)
    w = _OrderWorker(
        common, IngestSettings(client_id="bk-lanes", guard=False, writers=writers), rules=None
    )
    w.acked = []
    conn = w._connection()
    w.directory.refresh(conn)
    conn.commit()
    try:
        sensors = [("site-a", "fridge-1"), ("site-a", "freezer-1"), ("site-b", "fridge-b")]
        mid = 0
        for i in range(4):
            for site, sensor in sensors:
                mid += 1
                ts = (NOW - timedelta(hours=1, minutes=-i)).isoformat()
                raw = json.dumps({"ts": ts, "temp_c": 4.0}).encode()
                w._on_raw(f"{P}/{site}/sensor/{sensor}/reading".encode(), raw, mid, 1)
        lanes: dict[str, int] = {}
        for lane in w._lanes:
            for p in lane.queue:
                sensor = p.item.outcome.sensor_id  # type: ignore[union-attr]
                assert lanes.setdefault(sensor, lane.index) == lane.index
        # the last lane commits first: nothing is acknowledged before the older messages
        last = w._lanes[-1]
        w._flush_lane(last)
        assert w.acked == list(range(1, len(w.acked) + 1))  # a prefix of receive order
        while w.flush_once():
            pass
        assert w.acked == list(range(1, mid + 1))
        assert w.pending() == 0
        n = w._connection().execute("SELECT count(*) FROM sensor_readings").fetchone()
        assert n == (mid,)
    finally:
        w._close_db()
