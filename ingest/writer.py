"""Write one batch of validated messages to PostgreSQL in one transaction.

Readings go in with one binary COPY into a temporary staging table and one
``INSERT … ON CONFLICT DO NOTHING``: a reading redelivered after a crash is a no-op, so
at-least-once delivery gives exactly-once rows. The same statement moves forward (never
back) ``sensors.last_reading_at``, the newest reading time, and
``sensors.last_received_at``, the newest time a new reading reached the worker (what the
offline rule judges), updates on plain PostgreSQL the 5 min / 1 h rollup tables from the
new rows only, and returns their count (and the keys of rows that were already stored,
only when there are any). The rule hook sees the new readings, each with its receive
time, in the same transaction, so rule state, alarms and findings commit (or not) with
the readings that caused them.

A batch that the database rejects for its content (not for a lost connection) is bisected
under savepoints until each refused message is alone; that one is dead-lettered with the
database's reason and the rest commits, so one poison message never stops the worker.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb

from bkcommon.timeutil import utcnow
from ingest.types import NewPower, NewReading
from ingest.validate import (
    MAX_REASON_CHARS,
    AcceptedPower,
    AcceptedReadings,
    AcceptedStatus,
    AcceptedViolation,
    Ignored,
    Outcome,
    Rejected,
    clean_text,
)

logger = logging.getLogger(__name__)

FINDINGS_CHANNEL = "bk_findings"

RULE_TIERS: dict[str, int] = {"pest": 1, "no_chef_hat": 3, "no_uniform": 3}
"""Tier of a violation finding by rule (DOMAIN.md); every other rule is tier 2."""


class RuleHook(Protocol):
    """What the writer needs of the rule engine: judge new readings inside the transaction."""

    def apply(self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime) -> int:
        """Update rule state for ``readings`` and return the number of findings written."""
        ...


class NoRules:
    """A rule hook that does nothing (tests, or a worker without the rule engine)."""

    def apply(self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime) -> int:
        """Write no findings."""
        return 0


@dataclass(frozen=True, slots=True)
class Item:
    """One received message and what validation made of it."""

    topic: str
    raw: bytes
    received_at: datetime
    outcome: Outcome


@dataclass(slots=True)
class WriteResult:
    """What one batch wrote."""

    inserted: int = 0
    duplicates: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    violations: int = 0
    statuses: int = 0
    findings: int = 0
    new_readings: list[NewReading] = field(default_factory=list)
    """Readings this batch inserted (not redelivered duplicates), for the rules."""
    new_power: list[NewPower] = field(default_factory=list)
    """Smart-plug samples this batch inserted (``cabinet_power``), for the cycle detector."""

    def merge(self, part: WriteResult) -> None:
        """Add what a part of the batch wrote (bisection writes a batch in parts)."""
        self.inserted += part.inserted
        self.duplicates += part.duplicates
        self.dead.update(part.dead)
        self.ignored += part.ignored
        self.violations += part.violations
        self.statuses += part.statuses
        self.findings += part.findings
        self.new_readings.extend(part.new_readings)
        self.new_power.extend(part.new_power)


def is_transient(exc: BaseException, conn: psycopg.Connection[Any]) -> bool:
    """True when a failed write says nothing about the messages: the connection is gone,
    or the server is in a state that passes (shutting down, out of disk or memory, read
    only during a failover, a deadlock or serialization conflict, a cancelled statement).
    Then the batch is retried whole: nothing is dead-lettered and nothing acknowledged.
    Anything else (a value that does not fit its column, a constraint, text the driver
    cannot encode, a statement the content makes too large) is the content's fault."""
    if conn.closed or conn.broken:
        return True
    if isinstance(
        exc, psycopg.errors.ProgramLimitExceeded | psycopg.errors.ConfigurationLimitExceeded
    ):
        # a limit the content crossed (TimescaleDB's cap on rows decompressed to check a
        # batch against compressed chunks is a 53400, an OperationalError): retried whole
        # it fails for ever; bisected, the smaller batches pass
        return False
    return isinstance(
        exc,
        psycopg.OperationalError | psycopg.InterfaceError | psycopg.errors.InvalidTransactionState,
    )


def describe_error(exc: BaseException) -> str:
    """One line naming an error: its class and first line (for logs and dead letters)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


_STAGE_COLS = "sensor_id, ts, temp_c, humidity_pct, door_open, battery_pct, seq, received_at"

_STAGE_TYPES = ["text", "timestamptz", "float8", "float4", "bool", "float4", "int8", "timestamptz"]

_CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS bk_stage (
    sensor_id text, ts timestamptz, temp_c double precision, humidity_pct real,
    door_open boolean, battery_pct real, seq bigint, received_at timestamptz
) ON COMMIT DELETE ROWS
"""

_ROLLUP = """
, r{name} AS (
    INSERT INTO readings_{name}_store AS r (sensor_id, bucket, temp_min, temp_max, temp_sum, n)
    SELECT sensor_id, date_bin(INTERVAL '{interval}', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           min(temp_c), max(temp_c), sum(temp_c), count(*)
    FROM {source} GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE SET
        temp_min = LEAST(r.temp_min, EXCLUDED.temp_min),
        temp_max = GREATEST(r.temp_max, EXCLUDED.temp_max),
        temp_sum = r.temp_sum + EXCLUDED.temp_sum,
        n = r.n + EXCLUDED.n
)"""


def _rollups_sql(plain: bool, source: str) -> str:
    if not plain:
        return ""
    return _ROLLUP.format(name="5m", interval="5 minutes", source=source) + _ROLLUP.format(
        name="1h", interval="1 hour", source=source
    )


def _fast_insert_sql(plain: bool) -> str:
    """The common case, no staged row stored yet: a plain INSERT, no ON CONFLICT.

    Without ON CONFLICT PostgreSQL skips the speculative insertion (an index probe, a
    token and a confirmation per row), and the rollups and ``sensors`` read the staging
    table instead of the insert's RETURNING rows. A redelivered row makes the statement
    fail with a unique violation; the writer then rolls back to a savepoint and runs
    :func:`_insert_sql`, which skips stored rows one by one.
    """
    return f"""
WITH ins AS (
    INSERT INTO sensor_readings ({_STAGE_COLS})
    SELECT {_STAGE_COLS} FROM bk_stage ORDER BY sensor_id, ts
), last AS (
    UPDATE sensors s SET last_reading_at = GREATEST(s.last_reading_at, m.ts),
                         last_received_at = GREATEST(s.last_received_at, m.received_at)
    FROM (SELECT sensor_id, max(ts) AS ts, max(received_at) AS received_at
          FROM bk_stage GROUP BY sensor_id) m
    WHERE s.id = m.sensor_id
      AND (s.last_reading_at IS NULL OR s.last_reading_at < m.ts
           OR s.last_received_at IS NULL OR s.last_received_at < m.received_at)
){_rollups_sql(plain, "bk_stage")}
SELECT 1
"""


def _insert_sql(plain: bool) -> str:
    rollups = _rollups_sql(plain, "ins")
    return f"""
WITH ins AS (
    INSERT INTO sensor_readings ({_STAGE_COLS})
    SELECT {_STAGE_COLS} FROM bk_stage ORDER BY sensor_id, ts
    ON CONFLICT (sensor_id, ts) DO NOTHING
    RETURNING sensor_id, ts, temp_c, received_at
), last AS (
    UPDATE sensors s SET last_reading_at = GREATEST(s.last_reading_at, m.ts),
                         last_received_at = GREATEST(s.last_received_at, m.received_at)
    FROM (SELECT sensor_id, max(ts) AS ts, max(received_at) AS received_at
          FROM ins GROUP BY sensor_id) m
    WHERE s.id = m.sensor_id
      AND (s.last_reading_at IS NULL OR s.last_reading_at < m.ts
           OR s.last_received_at IS NULL OR s.last_received_at < m.received_at)
){rollups}
SELECT c.n, d.sensor_ids, d.ts FROM (SELECT count(*) AS n FROM ins) AS c
LEFT JOIN LATERAL (
    SELECT array_agg(s.sensor_id) AS sensor_ids, array_agg(s.ts) AS ts FROM bk_stage AS s
    WHERE c.n < %(staged)s
      AND NOT EXISTS (SELECT 1 FROM ins AS i WHERE i.sensor_id = s.sensor_id AND i.ts = s.ts)
) AS d ON true
"""


def schema_path(conn: psycopg.Connection[Any]) -> str:
    """Return 'plain' or 'timescale': the path recorded by the migrations runner."""
    row = conn.execute(
        "SELECT path FROM schema_migrations WHERE path IN ('plain', 'timescale') LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else "plain"


class BatchWriter:
    """Writes batches of validated items; one instance per worker, any number of connections."""

    def __init__(
        self,
        rules: RuleHook | None = None,
        worker_id: str = "",
        clock: Callable[[], datetime] = utcnow,
        *,
        fast_insert: bool = True,
    ) -> None:
        self.rules: RuleHook = rules if rules is not None else NoRules()
        self.worker_id = worker_id
        self.clock = clock
        self.fast_insert = fast_insert  # False: always ON CONFLICT (benchmarks compare both)
        self._prepared: psycopg.Connection[Any] | None = None
        self._insert = _insert_sql(plain=True)
        self._fast_insert = _fast_insert_sql(plain=True)
        self._clear_stage = False  # True while several writes share one transaction

    def prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create the staging table and learn the schema path of a (new) connection."""
        plain = schema_path(conn) == "plain"
        conn.execute(_CREATE_STAGE)
        conn.commit()
        self._insert = _insert_sql(plain)
        self._fast_insert = _fast_insert_sql(plain)
        self._prepared = conn

    def write(self, conn: psycopg.Connection[Any], items: Sequence[Item]) -> WriteResult:
        """Write ``items`` in one transaction and commit.

        A batch refused for its content (by the database or by the driver, say a number
        that does not fit its column) is bisected under savepoints until each refused
        message is alone; that message is dead-lettered with the reason and the rest
        commits, so one message can never stop ingest. Trouble that is not the content's
        (a lost connection, a transient server condition: :func:`is_transient`) is raised
        with nothing written or dead-lettered; the caller retries the same batch.
        """
        if self._prepared is not conn:
            self.prepare(conn)
        try:
            with conn.transaction():
                return self._write(conn, items)
        except Exception as exc:
            if is_transient(exc, conn):
                raise
            refused = exc
        logger.warning(
            "batch of %d refused (%s); bisecting to isolate the bad message",
            len(items),
            describe_error(refused),
        )
        total = WriteResult()
        self._clear_stage = True
        try:
            with conn.transaction():
                self._bisect(conn, items, refused, total)
        finally:
            self._clear_stage = False
        return total

    def _bisect(
        self,
        conn: psycopg.Connection[Any],
        items: Sequence[Item],
        refused: BaseException,
        total: WriteResult,
    ) -> None:
        """``items`` were refused with ``refused``: write each half under a savepoint and
        recurse into a refused half; a refused single message is dead-lettered."""
        if len(items) == 1:
            reason = f"database rejected: {describe_error(refused)}"
            self._dead_letter(conn, items[0], reason, "database", total)
            return
        mid = len(items) // 2
        for half in (items[:mid], items[mid:]):
            try:
                with conn.transaction():
                    part = self._write(conn, half)
            except Exception as exc:
                if is_transient(exc, conn):
                    raise
                self._bisect(conn, half, exc, total)
            else:
                total.merge(part)

    def _dead_letter(
        self,
        conn: psycopg.Connection[Any],
        item: Item,
        reason: str,
        code: str,
        res: WriteResult,
    ) -> None:
        row = (item.received_at, clean_text(item.topic), clean_text(reason), item.raw)
        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO dead_letters (received_at, topic, reason, raw, worker) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (*row, clean_text(self.worker_id)),
                )
        except Exception as exc:
            if is_transient(exc, conn):
                raise
            # Whatever made the text unstorable, ASCII with escapes is storable; the raw
            # bytes (bytea) are kept as they came.
            logger.warning("dead letter stored with escaped text (%s)", describe_error(exc))
            with conn.transaction():
                conn.execute(
                    "INSERT INTO dead_letters (received_at, topic, reason, raw, worker) "
                    "VALUES (now(), %s, %s, %s, %s)",
                    (
                        ascii(item.topic)[:MAX_REASON_CHARS],
                        ascii(reason)[:MAX_REASON_CHARS],
                        item.raw,
                        ascii(self.worker_id),
                    ),
                )
        res.dead[code] += 1

    def _write(self, conn: psycopg.Connection[Any], items: Sequence[Item]) -> WriteResult:
        res = WriteResult()
        now = self.clock()
        readings: list[tuple[Item, AcceptedReadings]] = []
        power: list[tuple[Item, AcceptedPower]] = []
        violations: list[tuple[Item, AcceptedViolation]] = []
        statuses: list[tuple[Item, AcceptedStatus]] = []
        dead: list[tuple[Item, Rejected]] = []
        for it in items:
            o = it.outcome
            if isinstance(o, AcceptedReadings):
                readings.append((it, o))
            elif isinstance(o, AcceptedPower):
                power.append((it, o))
            elif isinstance(o, Rejected):
                dead.append((it, o))
            elif isinstance(o, AcceptedViolation):
                violations.append((it, o))
            elif isinstance(o, AcceptedStatus):
                statuses.append((it, o))
            elif isinstance(o, Ignored):
                res.ignored += 1
        with conn.cursor() as cur:
            if violations or statuses:
                boxes = self._box_sites(cur, [o.box_id for _, o in violations + statuses])
                violations = self._known_boxes(violations, boxes, dead)
                statuses = self._known_boxes(statuses, boxes, dead)
            if readings:
                self._write_readings(cur, readings, res)
            if power:
                self._write_power(cur, power, res)
            for it, v in violations:
                res.findings += self._write_violation(cur, it, v, res)
            if statuses:
                res.statuses += self._write_statuses(cur, [s for _it, s in statuses])
            # The rule engine judges plug samples with the readings (``apply_power``); a
            # hook without it (tests, benchmarks) stores them unjudged.
            apply_power = getattr(self.rules, "apply_power", None)
            if res.new_power and apply_power is not None:
                res.findings += int(apply_power(cur, res.new_readings, res.new_power, now))
            elif res.new_readings:
                res.findings += self.rules.apply(cur, res.new_readings, now)
            if dead:
                with cur.copy(
                    "COPY dead_letters (received_at, topic, reason, raw, worker) FROM STDIN"
                ) as cp:
                    for it, rej in dead:
                        cp.write_row(
                            (
                                it.received_at,
                                clean_text(it.topic),
                                rej.reason,
                                it.raw,
                                self.worker_id,
                            )
                        )
                        res.dead[rej.code] += 1
            if res.findings:
                cur.execute(f"NOTIFY {FINDINGS_CHANNEL}")
        return res

    @staticmethod
    def _box_sites(cur: psycopg.Cursor[Any], box_ids: list[str]) -> dict[str, str]:
        rows = cur.execute(
            "SELECT id, site_id FROM edge_boxes WHERE id = ANY(%s)", (sorted(set(box_ids)),)
        ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    @staticmethod
    def _known_boxes(
        pairs: list[tuple[Item, Any]], boxes: dict[str, str], dead: list[tuple[Item, Rejected]]
    ) -> list[tuple[Item, Any]]:
        kept = []
        for it, o in pairs:
            site = boxes.get(o.box_id)
            if site is None:
                dead.append((it, Rejected("unknown_box", f"unknown edge box {o.box_id!r}")))
            elif site != o.site_id:
                dead.append(
                    (
                        it,
                        Rejected(
                            "site_mismatch",
                            f"site mismatch: box {o.box_id!r} belongs to {site!r}, topic says "
                            f"{o.site_id!r}",
                        ),
                    )
                )
            else:
                kept.append((it, o))
        return kept

    def _write_readings(
        self,
        cur: psycopg.Cursor[Any],
        readings: list[tuple[Item, AcceptedReadings]],
        res: WriteResult,
    ) -> None:
        n = 0
        new: list[NewReading] = []
        rows: list[tuple[Any, ...]] = []
        seen: dict[str, set[datetime]] = {}
        make = tuple.__new__  # NewReading without its Python-level __new__
        for it, acc in readings:
            sid, rat = acc.sensor_id, it.received_at
            rs = acc.readings
            n += len(rs)
            known = seen.get(sid)
            if known is None:
                known = seen[sid] = set()
            tss = [r.ts for r in rs]
            mine = set(tss)
            if len(mine) != len(tss) or not known.isdisjoint(mine):
                # Some (sensor, time) twice in the batch: the first counts. Rare (a gateway
                # resending what it had sent), so this is the slow path.
                firsts = []
                for r in rs:
                    if r.ts not in known:
                        known.add(r.ts)
                        firsts.append(r)
                rs = firsts
            else:
                known |= mine
            rows += [
                (sid, r.ts, r.temp_c, r.humidity_pct, r.door_open, r.battery_pct, r.seq, rat)
                for r in rs
            ]
            new += [
                make(NewReading, (sid, r.ts, r.temp_c, r.door_open, r.battery_pct, rat)) for r in rs
            ]
        with cur.copy(f"COPY bk_stage ({_STAGE_COLS}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(_STAGE_TYPES)
            write = cp.write_row
            for staged in rows:
                write(staged)
        inserted = len(new)
        if not (self.fast_insert and self._insert_staged_fast(cur)):
            # The statement returns the count of new rows and, only when some were already
            # stored (redelivered), their keys: the rules see new readings only.
            cur.execute(self._insert, {"staged": len(new)})
            row = cur.fetchone()
            inserted = int(row[0]) if row else 0
            if row is not None and row[1]:
                old = set(zip(row[1], row[2], strict=True))
                new = [r for r in new if (r.sensor_id, r.ts) not in old]
        if self._clear_stage:
            cur.execute("DELETE FROM bk_stage")
        res.new_readings = new
        res.inserted = inserted
        res.duplicates = n - inserted

    @staticmethod
    def _write_power(
        cur: psycopg.Cursor[Any], power: list[tuple[Item, AcceptedPower]], res: WriteResult
    ) -> None:
        """Insert smart-plug samples into ``cabinet_power`` (a redelivered one is a no-op) and
        move the cabinet's ``last_received_at`` forward: its plug is heard from."""
        rows: dict[tuple[str, datetime], tuple[Any, ...]] = {}
        n = 0
        for it, acc in power:
            for p in acc.samples:
                n += 1
                rows.setdefault(
                    (acc.sensor_id, p.ts),
                    (
                        acc.sensor_id,
                        p.ts,
                        p.power_w,
                        p.current_a,
                        p.voltage_v,
                        p.energy_kwh,
                        p.switch_on,
                        p.seq,
                        it.received_at,
                    ),
                )
        cols = list(zip(*rows.values(), strict=True))
        cur.execute(
            """WITH ins AS (
                   INSERT INTO cabinet_power (sensor_id, ts, power_w, current_a, voltage_v,
                                              energy_kwh, switch_on, seq, received_at)
                   SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::float8[],
                                        %s::float8[], %s::float4[], %s::float8[], %s::bool[],
                                        %s::int8[], %s::timestamptz[])
                   ORDER BY 1, 2
                   ON CONFLICT (sensor_id, ts) DO NOTHING
                   RETURNING sensor_id, ts, power_w, current_a, received_at
               ), last AS (
                   UPDATE sensors s SET last_received_at = GREATEST(s.last_received_at, m.at)
                   FROM (SELECT sensor_id, max(received_at) AS at FROM ins GROUP BY 1) m
                   WHERE s.id = m.sensor_id
                     AND (s.last_received_at IS NULL OR s.last_received_at < m.at)
               )
               SELECT sensor_id, ts, power_w, current_a, received_at FROM ins""",
            [list(c) for c in cols],
        )
        new = [NewPower(str(r[0]), r[1], r[2], r[3], r[4]) for r in cur.fetchall()]
        res.new_power = new
        res.inserted += len(new)
        res.duplicates += n - len(new)

    def _insert_staged_fast(self, cur: psycopg.Cursor[Any]) -> bool:
        """Insert the staged rows with :func:`_fast_insert_sql` under a savepoint.

        False when one of them is already stored (a redelivery): nothing of the attempt
        remains and the caller takes the ON CONFLICT path.
        """
        try:
            with cur.connection.transaction():
                cur.execute(self._fast_insert)
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def _write_violation(
        self, cur: psycopg.Cursor[Any], it: Item, acc: AcceptedViolation, res: WriteResult
    ) -> int:
        v = acc.violation
        row = cur.execute(
            """INSERT INTO violations (event_id, site_id, box_id, camera_id, zone, rule,
                   started_at, ended_at, confidence, track_id, model_version, evidence_sha256,
                   details, received_at)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
               ON CONFLICT (event_id) DO NOTHING RETURNING event_id""",
            (
                v.event_id,
                acc.site_id,
                acc.box_id,
                v.camera_id,
                v.zone,
                v.rule,
                v.started_at,
                v.ended_at,
                v.confidence,
                v.track_id,
                v.model_version,
                acc.evidence_sha256,
                Jsonb(v.details),
                it.received_at,
            ),
        ).fetchone()
        if row is None:
            return 0  # redelivered: already stored, finding already written
        res.violations += 1
        if acc.evidence_jpeg is not None and acc.evidence_sha256 is not None:
            cur.execute(
                "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, %s, %s) "
                "ON CONFLICT (sha256) DO NOTHING",
                (acc.evidence_sha256, "image/jpeg", acc.evidence_jpeg),
            )
        payload = v.model_dump(mode="json", exclude={"evidence": {"jpeg_b64"}})
        payload["box_id"] = acc.box_id
        payload["evidence_sha256"] = acc.evidence_sha256
        cur.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                   occurred_at, payload)
               VALUES (%s, 'violation', %s, %s, %s, %s, %s, %s)
               ON CONFLICT (finding_key) DO NOTHING""",
            (
                f"violation:{v.event_id}",
                acc.site_id,
                v.camera_id,
                v.rule,
                RULE_TIERS.get(v.rule, 2),
                v.started_at,
                Jsonb(payload),
            ),
        )
        return cur.rowcount

    @staticmethod
    def _write_statuses(cur: psycopg.Cursor[Any], statuses: list[AcceptedStatus]) -> int:
        """Apply a batch's edge-box statuses in one UPDATE: the newest of each box, if it is
        not older than the stored one, or an ``online=false`` over a stored ``online=true``
        whatever its time (the last will carries the time the box connected, older than
        every status the box sent since: compared by time it was never applied, and a dead
        box stayed online; ``status_at`` keeps the newest time, so a redelivered older status
        does not undo the will, the next one does); return the number of boxes updated.
        ``status_received_at`` is the arrival the camera-offline sweep judges silence by.

        A province's boxes send ~770 statuses a second; one statement each cost the writer
        ~75 µs of Python, PostgreSQL ~57 µs and a round trip apiece (``writer_bench
        --statuses``: 41 and 13 µs this way).
        """
        newest: dict[str, AcceptedStatus] = {}
        for acc in statuses:
            known = newest.get(acc.box_id)
            if known is None or acc.status.ts >= known.status.ts:
                newest[acc.box_id] = acc
        # A retained status (sent again on a re-subscription) is the box's last word but no
        # proof it is alive now: it does not restart the silence the camera sweep times.
        cur.execute(
            """UPDATE edge_boxes AS b SET online = v.online, status = v.status,
                      status_at = greatest(b.status_at, v.ts),
                      status_received_at = CASE WHEN v.retained THEN b.status_received_at
                                                ELSE now() END
               FROM unnest(%s::text[], %s::bool[], %s::jsonb[], %s::timestamptz[], %s::bool[])
                    AS v(id, online, status, ts, retained)
               WHERE b.id = v.id AND (b.status_at IS NULL OR b.status_at <= v.ts
                                      OR (NOT v.online AND b.online))""",
            (
                list(newest),
                [a.status.online for a in newest.values()],
                [Jsonb(a.status.model_dump(mode="json")) for a in newest.values()],
                [a.status.ts for a in newest.values()],
                [a.retained for a in newest.values()],
            ),
        )
        return cur.rowcount
