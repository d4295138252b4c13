"""The batch writer against a real PostgreSQL: readings, duplicates, rollups, violations,
statuses, dead letters, the rule hook and poison messages."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bkcommon.messages import SensorReading, Violation, encode
from ingest.directory import SensorDirectory
from ingest.types import NewReading
from ingest.validate import AcceptedReadings, AcceptedViolation, Validator
from ingest.writer import BatchWriter, Item
from tests.ingest.conftest import count

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
P = "bk/v1"


class RecordingHook:
    """A rule hook that records what it saw and writes one finding per call."""

    def __init__(self) -> None:
        self.calls: list[list[NewReading]] = []

    def apply(self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime) -> int:
        self.calls.append(list(readings))
        cur.execute(
            "INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at) "
            "VALUES (%s, 'manual', 'site-a', 'fridge-1', 'test', 2, %s)",
            (f"test:{len(self.calls)}", now),
        )
        return 1


@pytest.fixture
def conn(registry_db: str) -> Any:
    with psycopg.connect(registry_db) as c:
        yield c


@pytest.fixture
def validator(conn: psycopg.Connection[Any]) -> Validator:
    d = SensorDirectory()
    d.refresh(conn)
    conn.commit()
    return Validator(d, P, "zigbee2mqtt")


def items(v: Validator, *msgs: tuple[str, bytes]) -> list[Item]:
    return [Item(t, raw, NOW, v(t, raw, NOW)) for t, raw in msgs]


def reading(i: int, temp: float = 4.0) -> bytes:
    ts = (NOW - timedelta(hours=1) + timedelta(minutes=i)).isoformat()
    return json.dumps({"ts": ts, "seq": i, "temp_c": temp}).encode()


def test_readings_duplicates_rollups_and_rule_hook(
    conn: psycopg.Connection[Any], validator: Validator, registry_db: str
) -> None:
    hook = RecordingHook()
    w = BatchWriter(hook, "w1", clock=lambda: NOW)
    t = f"{P}/site-a/sensor/fridge-1/reading"
    batch = items(validator, *[(t, reading(i, float(i))) for i in range(10)], (t, reading(3, 3.0)))
    conn.execute("LISTEN bk_findings")
    conn.commit()
    res = w.write(conn, batch)
    assert (res.inserted, res.duplicates) == (10, 1)
    assert [r.temp_c for r in hook.calls[0]] == [float(i) for i in range(10)]
    assert res.findings == 1
    assert [n.channel for n in conn.notifies(timeout=1, stop_after=1)] == ["bk_findings"]
    again = w.write(conn, batch[:5])
    assert (again.inserted, again.duplicates) == (0, 5)
    assert len(hook.calls) == 1  # no new rows: the rule engine is not asked
    rows = conn.execute(
        "SELECT bucket, temp_min, temp_max, temp_avg, n FROM readings_5m ORDER BY bucket"
    ).fetchall()
    assert [r[4] for r in rows] == [5, 5]
    assert (rows[0][1], rows[0][2], rows[0][3]) == (0.0, 4.0, 2.0)
    hourly = conn.execute("SELECT sum(n), max(temp_max) FROM readings_1h").fetchone()
    assert hourly == (10, 9.0)
    last = conn.execute("SELECT last_reading_at FROM sensors WHERE id='fridge-1'").fetchone()
    assert last == (NOW - timedelta(hours=1) + timedelta(minutes=9),)


def test_a_batch_mixing_stored_and_new_rows_stores_and_counts_each_row_once(
    conn: psycopg.Connection[Any], validator: Validator
) -> None:
    # The plain-INSERT fast path fails on the stored row; the writer must fall back to
    # ON CONFLICT for the whole batch without keeping anything of the failed attempt.
    hook = RecordingHook()
    w = BatchWriter(hook, "w1", clock=lambda: NOW)
    t = f"{P}/site-a/sensor/fridge-1/reading"
    w.write(conn, items(validator, *[(t, reading(i)) for i in range(0, 10, 2)]))
    res = w.write(conn, items(validator, *[(t, reading(i, float(i))) for i in range(10)]))
    assert (res.inserted, res.duplicates) == (5, 5)
    assert [r.temp_c for r in hook.calls[1]] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert conn.execute("SELECT count(*) FROM sensor_readings").fetchone() == (10,)
    assert conn.execute("SELECT sum(n) FROM readings_5m").fetchone() == (10,)
    assert conn.execute("SELECT sum(n) FROM readings_1h").fetchone() == (10,)


def test_last_received_at_follows_arrival_and_never_moves_back(
    conn: psycopg.Connection[Any], validator: Validator
) -> None:
    hook = RecordingHook()
    w = BatchWriter(hook, "w1", clock=lambda: NOW)
    t = f"{P}/site-a/sensor/fridge-1/reading"

    def received(at: datetime, *minutes: int) -> list[Item]:
        return [Item(t, reading(i), at, validator(t, reading(i), at)) for i in minutes]

    def last() -> tuple[Any, ...] | None:
        return conn.execute(
            "SELECT last_reading_at, last_received_at FROM sensors WHERE id='fridge-1'"
        ).fetchone()

    newest = NOW - timedelta(hours=1) + timedelta(minutes=30)
    assert w.write(conn, received(NOW, 30)).inserted == 1
    assert last() == (newest, NOW)
    assert [r.received_at for r in hook.calls[-1]] == [NOW]
    # A gateway replays a backlog: old stamps, arriving later. The sensor was heard from
    # (arrival moves), its newest reading time does not.
    later = NOW + timedelta(minutes=5)
    assert w.write(conn, received(later, 1, 2)).inserted == 2
    assert last() == (newest, later)
    assert [r.received_at for r in hook.calls[-1]] == [later, later]
    # A batch received earlier and committed after it (a slower worker): no step back.
    assert w.write(conn, received(NOW + timedelta(minutes=1), 3)).inserted == 1
    assert last() == (newest, later)
    # A redelivered duplicate is no new reading: it moves nothing.
    assert w.write(conn, received(NOW + timedelta(minutes=9), 30)).duplicates == 1
    assert last() == (newest, later)


def test_violation_twice_gives_one_row_one_finding_one_blob(
    conn: psycopg.Connection[Any], validator: Validator, registry_db: str
) -> None:
    img = b"\xff\xd8\xff fake jpeg"
    v = {
        "schema_version": 1,
        "event_id": "evt-0000000042",
        "rule": "no_mask",
        "camera_id": "cam-a",
        "zone": "prep",
        "started_at": "2026-03-01T07:58:00Z",
        "confidence": 0.87,
        "model_version": "m1",
        "evidence": {
            "jpeg_b64": base64.b64encode(img).decode(),
            "sha256": hashlib.sha256(img).hexdigest(),
        },
    }
    t = f"{P}/site-a/edge/box-a/violation"
    raw = json.dumps(v).encode()
    w = BatchWriter(None, "w1")
    first = w.write(conn, items(validator, (t, raw), (t, raw)))
    second = w.write(conn, items(validator, (t, raw)))
    assert (first.violations, first.findings) == (1, 1)
    assert (second.violations, second.findings) == (0, 0)
    db = registry_db
    assert count(db, "SELECT count(*) FROM violations") == 1
    assert count(db, "SELECT count(*) FROM evidence_blobs WHERE bytes = %s", img) == 1
    row = conn.execute(
        "SELECT finding_key, kind, subject, rule, tier, payload FROM findings"
    ).fetchall()
    assert len(row) == 1
    key, kind, subject, rule, tier, payload = row[0]
    assert (key, kind, subject, rule, tier) == (
        "violation:evt-0000000042",
        "violation",
        "cam-a",
        "no_mask",
        2,
    )
    assert "jpeg_b64" not in json.dumps(payload)
    assert payload["evidence_sha256"] == hashlib.sha256(img).hexdigest()


def test_status_updates_box_and_unknown_box_is_dead_lettered(
    conn: psycopg.Connection[Any], validator: Validator, registry_db: str
) -> None:
    def st(box: str, ts: str, online: bool) -> bytes:
        return json.dumps({"box_id": box, "ts": ts, "online": online}).encode()

    w = BatchWriter(None, "w1")
    res = w.write(
        conn,
        items(
            validator,
            (f"{P}/site-a/edge/box-a/status", st("box-a", "2026-03-01T07:00:00Z", True)),
            (f"{P}/site-a/edge/box-zz/status", st("box-zz", "2026-03-01T07:00:00Z", True)),
            (
                f"{P}/site-b/edge/box-a/violation",
                b'{"event_id":"evt-00000001","rule":"pest",'
                b'"camera_id":"c","started_at":"2026-03-01T07:00:00Z","confidence":0.5}',
            ),
        ),
    )
    assert res.statuses == 1
    assert res.dead == {"unknown_box": 1, "site_mismatch": 1}
    # an older status (a message seen again) does not overwrite a newer one ...
    box = "SELECT online, status_at FROM edge_boxes WHERE id='box-a'"
    seven = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    older = st("box-a", "2026-03-01T06:00:00Z", True)
    w.write(conn, items(validator, (f"{P}/site-a/edge/box-a/status", older)))
    assert conn.execute(box).fetchone() == (True, seven)
    # ... but an older offline one is the box's last will (built when it connected, so older
    # than every status since): it is applied, and the newest time is kept
    will = st("box-a", "2026-03-01T06:00:00Z", False)
    w.write(conn, items(validator, (f"{P}/site-a/edge/box-a/status", will)))
    assert conn.execute(box).fetchone() == (False, seven)
    reasons = sorted(r[0] for r in conn.execute("SELECT reason FROM dead_letters"))
    assert reasons[0].startswith("site mismatch: box 'box-a' belongs to 'site-a'")
    assert reasons[1].startswith("unknown edge box 'box-zz'")


def test_statuses_of_one_batch_apply_the_newest_per_box_in_one_update(
    conn: psycopg.Connection[Any], validator: Validator
) -> None:
    def st(ts: str, online: bool) -> tuple[str, bytes]:
        body = {"box_id": "box-a", "ts": ts, "online": online, "outbox_depth": int(online)}
        return f"{P}/site-a/edge/box-a/status", json.dumps(body).encode()

    w = BatchWriter(None, "w1")
    # Out of order within the batch: the 07:05 status wins, not the last one received.
    batch = items(
        validator,
        st("2026-03-01T07:00:00Z", False),
        st("2026-03-01T07:05:00Z", True),
        st("2026-03-01T07:01:00Z", False),
    )
    assert w.write(conn, batch).statuses == 1
    row = conn.execute(
        "SELECT online, status_at, status->>'outbox_depth' FROM edge_boxes WHERE id='box-a'"
    ).fetchone()
    assert row == (True, datetime(2026, 3, 1, 7, 5, tzinfo=UTC), "1")
    # A later batch holding only older online statuses changes nothing; an older offline
    # one (the last will) is applied, keeping the newest time.
    assert w.write(conn, items(validator, st("2026-03-01T07:02:00Z", True))).statuses == 0
    assert w.write(conn, items(validator, st("2026-03-01T07:02:00Z", False))).statuses == 1
    row = conn.execute("SELECT online, status_at FROM edge_boxes WHERE id='box-a'").fetchone()
    assert row == (False, datetime(2026, 3, 1, 7, 5, tzinfo=UTC))


def test_dead_letters_keep_topic_reason_raw_and_worker(
    conn: psycopg.Connection[Any], validator: Validator
) -> None:
    w = BatchWriter(None, "worker-7")
    raw = b'{"ts": "2026-03-01T07:00:00Z", "temp_c": 999}'
    w.write(conn, items(validator, (f"{P}/site-a/sensor/fridge-1/reading", raw)))
    row = conn.execute("SELECT topic, reason, raw, worker FROM dead_letters").fetchone()
    assert row is not None
    assert row[0] == f"{P}/site-a/sensor/fridge-1/reading"
    assert row[1].startswith("invalid SensorReading: temp_c")
    assert bytes(row[2]) == raw
    assert row[3] == "worker-7"


def _unchecked_reading(i: int, **fields: Any) -> Item:
    """A reading as a contract wider than its column would have accepted it."""
    values: dict[str, Any] = {"ts": NOW - timedelta(hours=2, seconds=-i), "seq": i, "temp_c": 4.0}
    r = SensorReading.model_construct(**(values | fields))
    t = f"{P}/site-a/sensor/fridge-1/reading"
    return Item(t, encode(r), NOW, AcceptedReadings("fridge-1", (r,)))


def _unchecked_violation(details: dict[str, Any]) -> Item:
    v = Violation.model_construct(
        event_id="evt-00000009",
        rule="no_mask",
        camera_id="cam-a",
        started_at=NOW - timedelta(hours=1),
        confidence=0.5,
        details=details,
    )
    return Item(
        f"{P}/site-a/edge/box-a/violation",
        encode(v),
        NOW,
        AcceptedViolation("site-a", "box-a", v, None, None),
    )


def test_values_their_columns_cannot_hold_are_bisected_out_and_the_rest_commits(
    conn: psycopg.Connection[Any], registry_db: str
) -> None:
    # Independently of the contract: a seq beyond bigint (the driver refuses it) and NUL in
    # jsonb (PostgreSQL refuses it) inside a batch of 300 good readings.
    batch = [_unchecked_reading(i) for i in range(300)]
    batch[137] = _unchecked_reading(137, seq=2**63)
    batch.insert(42, _unchecked_violation({"a": "\x00"}))
    res = BatchWriter(None, "w1").write(conn, batch)
    assert res.inserted == 299
    assert res.dead == {"database": 2}
    assert count(registry_db, "SELECT count(*) FROM sensor_readings") == 299
    assert count(registry_db, "SELECT count(*) FROM sensor_readings WHERE seq = 137") == 0
    rows = sorted(
        conn.execute("SELECT topic, reason, raw FROM dead_letters").fetchall(),
        key=lambda r: str(r[0]).rsplit("/", 1)[1],
    )
    assert [r[0].rsplit("/", 1)[1] for r in rows] == ["reading", "violation"]
    assert rows[0][1].startswith("database rejected: OverflowError")
    assert json.loads(bytes(rows[0][2]))["seq"] == 2**63
    assert rows[1][1].startswith("database rejected: ")
    again = BatchWriter(None, "w1").write(conn, batch)  # redelivered: no duplicates
    assert (again.inserted, again.duplicates) == (0, 299)


def test_a_lost_connection_is_not_a_bad_message(
    conn: psycopg.Connection[Any], registry_db: str
) -> None:
    w = BatchWriter(None, "w1")
    w.prepare(conn)
    pid = conn.info.backend_pid
    with psycopg.connect(registry_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        w.write(conn, [_unchecked_reading(i) for i in range(10)])
    assert count(registry_db, "SELECT count(*) FROM dead_letters") == 0
    assert count(registry_db, "SELECT count(*) FROM sensor_readings") == 0


def test_a_limit_the_content_crossed_is_not_retried_whole(conn: psycopg.Connection[Any]) -> None:
    """TimescaleDB's cap on rows decompressed to check a batch against compressed chunks is
    SQLSTATE 53400, an OperationalError: taken as passing, the batch was retried for ever.
    It is the content's (the batch is split until the parts pass); a lost server is not."""
    from ingest.writer import is_transient

    cap = psycopg.errors.ConfigurationLimitExceeded("tuple decompression limit exceeded")
    assert not is_transient(cap, conn)
    assert not is_transient(psycopg.errors.ProgramLimitExceeded("too big"), conn)
    assert is_transient(psycopg.errors.AdminShutdown("bye"), conn)
    assert is_transient(psycopg.errors.DeadlockDetected("again"), conn)
