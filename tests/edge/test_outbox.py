"""The on-disk outbox: FIFO, idempotent by event id, bounded oldest-first, durable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.outbox import Outbox


def test_put_peek_ack_in_order(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    for i in range(5):
        assert ob.put(f"evt-{i:04d}", "t/v", f"p{i}".encode())
    assert not ob.put("evt-0002", "t/v", b"again")  # same event id = one row
    assert ob.depth() == 5
    rows = ob.peek(3)
    assert [r.event_id for r in rows] == ["evt-0000", "evt-0001", "evt-0002"]
    assert rows[2].payload == b"p2"
    assert [r.event_id for r in ob.peek(2, exclude={rows[0].id})] == ["evt-0001", "evt-0002"]
    ob.mark_attempt(rows[0].id)
    assert ob.peek(1)[0].attempts == 1
    assert ob.ack(rows[0].id)
    assert not ob.ack(rows[0].id)
    assert ob.depth() == 4
    assert ob.peek(1)[0].event_id == "evt-0001"


def test_rows_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    drops: list[int] = []
    ob = Outbox(tmp_path / "o.sqlite", max_rows=3, on_drop=drops.append)
    for i in range(5):
        ob.put(f"evt-{i:04d}", "t", b"x" * 10)
    assert [r.event_id for r in ob.peek(10)] == ["evt-0002", "evt-0003", "evt-0004"]
    assert sum(drops) == 2
    assert ob.stats().dropped_total == 2


def test_bytes_bound_drops_oldest(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=1000)
    for i in range(10):
        ob.put(f"evt-{i:04d}", "t", b"y" * 300)
    st = ob.stats()
    assert st.depth == 3
    assert st.bytes_total == 900
    assert st.dropped_total == 7
    assert ob.peek(1)[0].event_id == "evt-0007"
    with pytest.raises(ValueError, match="exceeds"):
        ob.put("evt-big", "t", b"z" * 1001)


def test_survives_reopen_with_counters(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, max_rows=2)
    for i in range(3):
        ob.put(f"evt-{i:04d}", "t", b"z")
    ob.close()
    ob2 = Outbox(path, max_rows=2)
    st = ob2.stats()
    assert st.depth == 2
    assert st.dropped_total == 1
    assert st.oldest_created_at is not None
    assert [r.event_id for r in ob2.peek(5)] == ["evt-0001", "evt-0002"]
    # WAL + synchronous=FULL as documented
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
