"""Property-based fuzzing of payloads through validation and the writer: nothing crashes,
every rejection is dead-lettered with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.directory import SensorDirectory
from ingest.validate import Rejected, Validator
from ingest.writer import BatchWriter, Item

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
P = "bk/v1"
TOPICS = [
    f"{P}/site-a/sensor/fridge-1/reading",
    f"{P}/site-a/sensor/fridge-1/readings",
    f"{P}/site-b/sensor/fridge-1/reading",
    f"{P}/site-a/sensor/nobody/reading",
    f"{P}/site-a/edge/box-a/violation",
    f"{P}/site-a/edge/box-a/status",
    f"{P}/site-a/edge/box-x/status",
    "zigbee2mqtt/kitchen_fridge",
    f"{P}/site-a/alert",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["2026-03-01T07:59:00Z", "2026-03-01T07:59:00+08:00", "2099-01-01T00:00:00Z", "yesterday"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "schema_version",
    "ts",
    "seq",
    "temp_c",
    "humidity_pct",
    "door_open",
    "battery_pct",
    "readings",
    "temperature",
    "humidity",
    "battery",
    "contact",
    "event_id",
    "rule",
    "camera_id",
    "started_at",
    "confidence",
    "details",
    "box_id",
    "online",
    "evidence",
]
objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


payloads = st.one_of(
    st.binary(max_size=200),
    objects.map(_encode),
    st.builds(
        lambda ts, t, extra: _encode({"ts": ts, "temp_c": t, **extra}),
        st.sampled_from(["2026-03-01T07:59:00Z", "2026-03-01T07:00:00.123456Z"]),
        st.floats(min_value=-100, max_value=200, allow_nan=False),
        st.dictionaries(st.sampled_from(["seq", "door_open", "battery_pct"]), scalars, max_size=2),
    ),
)


@pytest.fixture
def fuzz_conn(registry_db: str) -> Any:
    with psycopg.connect(registry_db) as c:
        yield c


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(st.tuples(st.sampled_from(TOPICS), payloads), min_size=1, max_size=6))
def test_fuzzed_payloads_never_crash_and_rejections_are_dead_lettered(
    fuzz_conn: psycopg.Connection[Any], batch: list[tuple[str, bytes]]
) -> None:
    directory = SensorDirectory()
    directory.refresh(fuzz_conn)
    fuzz_conn.commit()
    v = Validator(directory, P, "zigbee2mqtt")
    its = [Item(t, raw, NOW, v(t, raw, NOW)) for t, raw in batch]
    rejected = [it for it in its if isinstance(it.outcome, Rejected)]
    for it in rejected:
        assert isinstance(it.outcome, Rejected)
        assert it.outcome.reason.strip()
        assert it.outcome.code
    before = fuzz_conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    res = BatchWriter(None, "fuzz").write(fuzz_conn, its)
    after = fuzz_conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert before is not None
    assert after is not None
    stored = after[0] - before[0]
    assert stored == sum(res.dead.values())
    assert stored >= len(rejected)  # plus any the database refused or boxes it did not know
    raws = (
        {
            bytes(r[0])
            for r in fuzz_conn.execute(
                "SELECT raw FROM dead_letters ORDER BY id DESC LIMIT %s", (stored,)
            )
        }
        if stored
        else set()
    )
    assert {it.raw for it in rejected} <= raws
    empty = fuzz_conn.execute("SELECT count(*) FROM dead_letters WHERE reason = ''").fetchone()
    assert empty == (0,)
