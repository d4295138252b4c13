"""Count, in the database, every numbered reading and event a chaos run produced.

Readings are found by (sensor, ``seq``), events by their event id. For each fault window
(what was produced from the fault's start to the next fault's start) the reconciliation
says how many were sent, acknowledged by the broker, stored, stored more than once, and
which ids are missing. Beyond rows, it checks what duplicates would corrupt downstream:
the 5-minute rollup counts each stored reading once (plain PostgreSQL path), each
violation has exactly one finding, and each finding reached exactly one ticket event or
capture review (the API's workers were killed mid-claim).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg


def event_id(run_id: str, n: int) -> str:
    """The id of edge event number ``n`` of a run (stable across restarts of the box)."""
    return f"{run_id}-ev-{n:07d}"


@dataclass(frozen=True, slots=True)
class Window:
    """What was produced in one fault window: readings per sensor and events, as ranges."""

    name: str
    readings: dict[str, tuple[int, int]]  # sensor -> [first seq, end seq)
    events: tuple[int, int]  # [first event number, end)


@dataclass
class Tally:
    """Reconciliation of one window (or of the whole run)."""

    name: str
    readings_sent: int = 0
    readings_acked: int = 0
    readings_stored: int = 0
    readings_duplicated: int = 0
    readings_missing: list[str] = field(default_factory=list)
    readings_missing_acked: int = 0
    events_sent: int = 0
    events_stored: int = 0
    events_duplicated: int = 0
    events_missing: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Readings and events produced and not stored."""
        return len(self.readings_missing) + len(self.events_missing)

    @property
    def duplicated(self) -> int:
        """Readings and events stored more than once (extra copies)."""
        return self.readings_duplicated + self.events_duplicated

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (missing ids capped at 50 each)."""
        return {
            "name": self.name,
            "readings": {
                "sent": self.readings_sent,
                "acked_by_broker": self.readings_acked,
                "stored": self.readings_stored,
                "duplicates": self.readings_duplicated,
                "missing": len(self.readings_missing),
                "missing_after_broker_ack": self.readings_missing_acked,
                "missing_ids": self.readings_missing[:50],
            },
            "events": {
                "sent": self.events_sent,
                "stored": self.events_stored,
                "duplicates": self.events_duplicated,
                "missing": len(self.events_missing),
                "missing_ids": self.events_missing[:50],
            },
        }


@dataclass
class Downstream:
    """Checks past the rows: rollups, findings, tickets, evidence, dead letters."""

    rollup_checked: bool = False
    rollup_count: int = 0
    findings: int = 0
    findings_duplicated: int = 0
    findings_unprocessed: int = 0
    findings_applied_twice: int = 0
    findings_not_applied: int = 0
    events_with_evidence: int = 0
    events_hash_only: int = 0
    dead_letters: int = 0
    dead_letter_reasons: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Human lines for each downstream inconsistency (empty when all is well)."""
        out = []
        if self.findings_duplicated:
            out.append(f"{self.findings_duplicated} violation(s) with more than one finding")
        if self.findings_unprocessed:
            out.append(f"{self.findings_unprocessed} finding(s) never processed by the workers")
        if self.findings_applied_twice:
            out.append(f"{self.findings_applied_twice} finding(s) applied to tickets twice")
        if self.findings_not_applied:
            out.append(f"{self.findings_not_applied} processed finding(s) with no ticket event")
        if self.dead_letters:
            out.append(f"{self.dead_letters} dead letter(s) on the run's topics")
        return out


def stored_readings(conn: psycopg.Connection[Any], sensors: list[str]) -> dict[str, Counter[int]]:
    """Rows per (sensor, seq) of the given sensors."""
    out: dict[str, Counter[int]] = {s: Counter() for s in sensors}
    for sid, seq, n in conn.execute(
        "SELECT sensor_id, seq, count(*) FROM sensor_readings WHERE sensor_id = ANY(%s)"
        " GROUP BY 1, 2",
        (sensors,),
    ):
        out[str(sid)][-1 if seq is None else int(seq)] += int(n)
    return out


def stored_events(conn: psycopg.Connection[Any], prefix: str) -> Counter[str]:
    """Rows per event id of the run's violations (the primary key makes >1 impossible, but
    the count is taken, not assumed)."""
    return Counter(
        {
            str(eid): int(n)
            for eid, n in conn.execute(
                "SELECT event_id, count(*) FROM violations WHERE event_id LIKE %s GROUP BY 1",
                (prefix + "%",),
            )
        }
    )


def tally(
    window: Window,
    readings: dict[str, Counter[int]],
    acked: set[tuple[str, int]],
    events: Counter[str],
    event_id: Any,
) -> Tally:
    """Reconcile one window against what is stored."""
    t = Tally(window.name)
    for sid, (lo, hi) in window.readings.items():
        have = readings.get(sid, Counter())
        for seq in range(lo, hi):
            t.readings_sent += 1
            if (sid, seq) in acked:
                t.readings_acked += 1
            n = have.get(seq, 0)
            if n == 0:
                t.readings_missing.append(f"{sid}#{seq}")
                if (sid, seq) in acked:
                    t.readings_missing_acked += 1
            else:
                t.readings_stored += 1
                t.readings_duplicated += n - 1
    lo, hi = window.events
    for k in range(lo, hi):
        eid = str(event_id(k))
        t.events_sent += 1
        n = events.get(eid, 0)
        if n == 0:
            t.events_missing.append(eid)
        else:
            t.events_stored += 1
            t.events_duplicated += n - 1
    return t


def downstream(
    conn: psycopg.Connection[Any], sensors: list[str], event_prefix: str, topic_prefix: str
) -> Downstream:
    """Rollup, finding, ticket, evidence and dead-letter checks of the run."""
    d = Downstream()
    has_store = conn.execute("SELECT to_regclass('readings_5m_store') IS NOT NULL").fetchone()
    if has_store and has_store[0]:
        d.rollup_checked = True
        row = conn.execute(
            "SELECT coalesce(sum(n), 0) FROM readings_5m_store WHERE sensor_id = ANY(%s)",
            (sensors,),
        ).fetchone()
        d.rollup_count = int(row[0]) if row else 0
    like = f"violation:{event_prefix}%"
    row = conn.execute(
        """SELECT count(*),
                  count(*) - count(DISTINCT finding_key),
                  count(*) FILTER (WHERE processed_at IS NULL)
           FROM findings WHERE finding_key LIKE %s""",
        (like,),
    ).fetchone()
    assert row is not None
    d.findings, d.findings_duplicated, d.findings_unprocessed = (int(x) for x in row)
    row = conn.execute(
        """WITH f AS (SELECT id FROM findings
                       WHERE finding_key LIKE %s AND processed_at IS NOT NULL),
                applied AS (
                    SELECT f.id,
                           (SELECT count(*) FROM ticket_events e
                             WHERE e.kind IN ('opened', 'occurrence')
                               AND (e.data->>'finding_id')::bigint = f.id)
                         + (SELECT count(*) FROM capture_reviews r WHERE r.finding_id = f.id) AS n
                    FROM f)
           SELECT count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE n = 0) FROM applied""",
        (like,),
    ).fetchone()
    assert row is not None
    d.findings_applied_twice, d.findings_not_applied = int(row[0]), int(row[1])
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE b.sha256 IS NOT NULL),
                  count(*) FILTER (WHERE b.sha256 IS NULL)
           FROM violations v LEFT JOIN evidence_blobs b ON b.sha256 = v.evidence_sha256
           WHERE v.event_id LIKE %s""",
        (event_prefix + "%",),
    ).fetchone()
    assert row is not None
    d.events_with_evidence, d.events_hash_only = int(row[0]), int(row[1])
    rows = conn.execute(
        "SELECT reason FROM dead_letters WHERE topic LIKE %s ORDER BY id",
        (topic_prefix.rstrip("/") + "/%",),
    ).fetchall()
    d.dead_letters = len(rows)
    d.dead_letter_reasons = [str(r[0])[:200] for r in rows[:10]]
    return d
