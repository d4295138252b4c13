"""Hypothesis fuzzing of every MQTT payload type ingest consumes, through validation and the
batch writer into a real PostgreSQL.

Five kinds: a single reading, a gateway batch, a Zigbee2MQTT state, an edge violation and an
edge status (the box's heartbeat). Each case is a (topic, raw bytes) pair: mostly the kind's
own topic with a well-formed payload whose fields are pushed to their bounds and beyond
(wrong types, huge numbers, NaN / Infinity, deep nesting, huge strings, invalid UTF-8,
truncation, missing and unknown keys), sometimes a wrong topic. The cases go through the
same :class:`ingest.validate.Validator` and :class:`ingest.writer.BatchWriter` the worker
runs, in batches of up to 100. Success means: nothing raised (a raise in the worker is a
message that stops ingest), every message the validator or the database refused is in
``dead_letters`` with a non-empty reason, and every accepted one is stored or dead-lettered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import string
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

import psycopg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bkcommon.sitefile import SiteFile, parse_site_file
from bkcommon.timeutil import utcnow
from ingest.directory import SensorDirectory
from ingest.validate import (
    AcceptedReadings,
    AcceptedStatus,
    AcceptedViolation,
    Ignored,
    Rejected,
    Validator,
    clean_text,
)
from ingest.writer import BatchWriter, Item

PREFIX = "bk/v1"
ZIGBEE_BASE = "zigbee2mqtt"
SITE = "fz-site"
OTHER_SITE = "fz-other"
SENSOR = "fz-fridge"
ZIGBEE_NAME = "fz_zigbee"
BOX = "fz-box"
KINDS = ("reading", "batch", "zigbee", "violation", "status")
BATCH = 100
HUGE_BYTES = 300 * 1024  # over MAX_PAYLOAD_BYTES (256 KiB)


def fuzz_site_file() -> SiteFile:
    """The registry the cases are aimed at: one sensor, one Zigbee sensor, one box."""
    return parse_site_file(
        {
            "version": 1,
            "regions": [{"id": "fz-region", "name": "Fuzz"}],
            "sites": [
                {
                    "id": SITE,
                    "name": "Fuzz canteen",
                    "region": "fz-region",
                    "sensors": [
                        {"id": SENSOR, "profile": "fridge"},
                        {"id": "fz-zb", "profile": "freezer", "zigbee_name": ZIGBEE_NAME},
                    ],
                    "edge_boxes": [
                        {"id": BOX, "cameras": [{"id": "fz-cam", "url": "rtsp://fz.invalid/1"}]}
                    ],
                },
                {"id": OTHER_SITE, "name": "Other canteen", "region": "fz-region"},
            ],
        },
        "<fuzz site file>",
    )


# ---------------------------------------------------------------- value strategies

_SPECIAL_STRINGS = [
    "",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e309",
    "\x00",
    "\u202e\u0000\ud7ff",
    "'; DROP TABLE sensor_readings; --",
    "2026-02-30T25:61:00Z",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59Z",
    "yesterday",
]
_HUGE_NUMBERS = [
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    1e308,
    -1e308,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(_HUGE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(_SPECIAL_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _iso(now: datetime, seconds_back: float) -> str:
    return (now - timedelta(seconds=seconds_back)).isoformat()


def _times(now: datetime) -> st.SearchStrategy[str]:
    """Mostly plausible times (the last day), some at the future-skew edge, some hostile."""
    return st.one_of(
        st.floats(min_value=0, max_value=86_400).map(lambda s: _iso(now, s)),
        st.floats(min_value=-600, max_value=0).map(lambda s: _iso(now, s)),
        st.sampled_from(_SPECIAL_STRINGS[8:]),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    )


def _reading(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "ts": _times(now),
            "temp_c": st.floats(min_value=-100, max_value=400, allow_nan=False),
        },
        optional={
            "seq": st.integers(min_value=-1, max_value=2**64),
            "humidity_pct": st.floats(min_value=-5, max_value=105),
            "door_open": st.booleans(),
            "battery_pct": st.floats(min_value=-5, max_value=105),
            "schema_version": st.sampled_from([1, 1, 2, "1"]),
        },
    )


def _zigbee(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"temperature": st.floats(min_value=-100, max_value=400, allow_nan=False)},
        optional={
            "humidity": st.floats(min_value=-5, max_value=105),
            "battery": st.floats(min_value=-5, max_value=105),
            "contact": st.booleans(),
            "linkquality": st.integers(0, 255),
            "voltage": st.integers(0, 4000),
        },
    )


def _evidence() -> st.SearchStrategy[dict[str, Any]]:
    def build(img: bytes, good_hash: bool, w: int, h: int) -> dict[str, Any]:
        digest = hashlib.sha256(img).hexdigest() if good_hash else "0" * 64
        return {
            "jpeg_b64": base64.b64encode(img).decode(),
            "sha256": digest,
            "width_px": w,
            "height_px": h,
            "boxes": [{"x1": 1, "y1": 2, "x2": 30, "y2": 40, "label": "without_mask"}],
        }

    return st.builds(
        build,
        st.binary(min_size=1, max_size=64),
        st.booleans(),
        st.integers(-1, 100_000),
        st.integers(-1, 100_000),
    )


def _violation(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=6, max_size=70)
    return st.fixed_dictionaries(
        {
            "event_id": ids,
            "rule": st.sampled_from(["no_mask", "mixed_cutting_board", "pest", "Bad Rule", ""]),
            "camera_id": st.sampled_from(["fz-cam", "fz-cam-unknown", "x" * 70]),
            "started_at": _times(now),
            "confidence": st.floats(min_value=-0.5, max_value=1.5),
        },
        optional={
            "ended_at": _times(now),
            "zone": st.text(max_size=70),
            "track_id": st.integers(min_value=-(2**40), max_value=2**40),
            "model_version": st.text(max_size=140),
            "evidence": _evidence(),
            "details": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        },
    )


def _status(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    camera = st.fixed_dictionaries(
        {"camera_id": st.sampled_from(["fz-cam", "nope"]), "online": st.booleans()},
        optional={
            "fps": st.floats(min_value=-1, max_value=1000),
            "inference_ms": st.floats(min_value=-1, max_value=1e6),
            "problem": st.sampled_from([None, "offline", "frozen", "x" * 300]),
        },
    )
    return st.fixed_dictionaries(
        {
            "box_id": st.sampled_from([BOX, BOX, "fz-other-box"]),
            "ts": _times(now),
            "online": st.booleans(),
        },
        optional={
            "cameras": st.lists(camera, max_size=4),
            "outbox_depth": st.integers(min_value=-1, max_value=2**64),
            "outbox_dropped_total": st.integers(min_value=-1, max_value=2**64),
            "model_version": st.text(max_size=140),
        },
    )


def _valid(now: datetime) -> dict[str, st.SearchStrategy[Any]]:
    """Payloads inside every bound (edges included): these must be stored, not refused."""
    recent = st.floats(min_value=0, max_value=86_400).map(lambda s: _iso(now, s))
    pct = st.floats(min_value=0, max_value=100)
    temp = st.floats(min_value=-80, max_value=300)
    reading = st.fixed_dictionaries(
        {"ts": recent, "temp_c": temp},
        optional={
            "seq": st.integers(min_value=0, max_value=2**63 - 1),
            "humidity_pct": pct,
            "door_open": st.booleans(),
            "battery_pct": pct,
        },
    )
    img = st.binary(min_size=1, max_size=256)
    evidence = st.builds(
        lambda b, w, h: {
            "jpeg_b64": base64.b64encode(b).decode(),
            "sha256": hashlib.sha256(b).hexdigest(),
            "width_px": w,
            "height_px": h,
        },
        img,
        st.integers(1, 10_000),
        st.integers(1, 10_000),
    )
    ident = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=8, max_size=64)
    return {
        "reading": reading,
        "batch": st.fixed_dictionaries({"readings": st.lists(reading, min_size=1, max_size=12)}),
        "zigbee": st.fixed_dictionaries(
            {"temperature": temp},
            optional={"humidity": pct, "battery": pct, "contact": st.booleans()},
        ),
        "violation": st.fixed_dictionaries(
            {
                "event_id": ident,
                "rule": st.sampled_from(["no_mask", "mixed_cutting_board", "pest"]),
                "camera_id": st.just("fz-cam"),
                "started_at": recent,
                "confidence": st.floats(min_value=0, max_value=1),
            },
            optional={
                "track_id": st.integers(min_value=0, max_value=2**31 - 1),
                "evidence": evidence,
                "details": st.dictionaries(st.text(max_size=8), st.integers(0, 100), max_size=3),
            },
        ),
        "status": st.fixed_dictionaries(
            {"box_id": st.just(BOX), "ts": recent, "online": st.booleans()},
            optional={
                "outbox_depth": st.integers(min_value=0, max_value=2**31 - 1),
                "outbox_dropped_total": st.integers(min_value=0, max_value=2**31 - 1),
            },
        ),
    }


def _shapes(now: datetime) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "reading": _reading(now),
        "batch": st.fixed_dictionaries(
            {"readings": st.lists(_reading(now), min_size=0, max_size=12)}
        ),
        "zigbee": _zigbee(now),
        "violation": _violation(now),
        "status": _status(now),
    }


def _own_topic(kind: str) -> str:
    return {
        "reading": f"{PREFIX}/{SITE}/sensor/{SENSOR}/reading",
        "batch": f"{PREFIX}/{SITE}/sensor/{SENSOR}/readings",
        "zigbee": f"{ZIGBEE_BASE}/{ZIGBEE_NAME}",
        "violation": f"{PREFIX}/{SITE}/edge/{BOX}/violation",
        "status": f"{PREFIX}/{SITE}/edge/{BOX}/status",
    }[kind]


def _topics(kind: str) -> st.SearchStrategy[str]:
    """The kind's own topic most of the time; otherwise a wrong one."""
    own = {
        "reading": f"{PREFIX}/{SITE}/sensor/{SENSOR}/reading",
        "batch": f"{PREFIX}/{SITE}/sensor/{SENSOR}/readings",
        "zigbee": f"{ZIGBEE_BASE}/{ZIGBEE_NAME}",
        "violation": f"{PREFIX}/{SITE}/edge/{BOX}/violation",
        "status": f"{PREFIX}/{SITE}/edge/{BOX}/status",
    }[kind]
    wrong = st.one_of(
        st.sampled_from(
            [
                f"{PREFIX}/{OTHER_SITE}/sensor/{SENSOR}/reading",
                f"{PREFIX}/{SITE}/sensor/nobody/reading",
                f"{PREFIX}/{SITE}/edge/nobox/violation",
                f"{PREFIX}/{OTHER_SITE}/edge/{BOX}/status",
                f"{PREFIX}/{SITE}/alert",
                f"{PREFIX}/{SITE}/sensor/{SENSOR}/reading/extra",
                f"{ZIGBEE_BASE}/unknown_device",
                f"{ZIGBEE_BASE}/{ZIGBEE_NAME}/set",
                "bk/v2/x/sensor/y/reading",
                "",
                "/",
                f"{PREFIX}/{'s' * 65}/sensor/{SENSOR}/reading",
                f"{PREFIX}/站点/sensor/{SENSOR}/reading",
            ]
        ),
        st.text(max_size=80),
    )
    return st.one_of(st.just(own), st.just(own), st.just(own), st.just(own), wrong)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _mutate(obj: dict[str, Any], how: str, key: str, value: Any) -> bytes:
    """One hostile change to a well-formed object, returned as raw bytes."""
    o = dict(obj)
    keys = list(o) or ["x"]
    k = key if key in o else keys[hash(key) % len(keys)]
    if how == "replace":
        o[k] = value
    elif how == "delete":
        o.pop(k, None)
    elif how == "unknown_key":
        o[key or "extra"] = value
    elif how == "huge_number":
        raw = _dumps({**o, k: 0})
        literal = str(value).encode()
        return raw.replace(f'"{k}": 0'.encode(), f'"{k}": {literal.decode()}'.encode(), 1)
    elif how == "deep_value":
        depth = 50 + (abs(hash(key)) % 200_000)
        raw = _dumps({**o, k: 0})
        deep = b"[" * depth + b"]" * depth
        return raw.replace(f'"{k}": 0'.encode(), f'"{k}": '.encode() + deep, 1)
    elif how == "invalid_utf8":
        raw = _dumps(o)
        cut = abs(hash(key)) % max(1, len(raw))
        return raw[:cut] + b"\xc3\x28\xff\xfe" + raw[cut:]
    elif how == "truncate":
        raw = _dumps(o)
        return raw[: abs(hash(key)) % max(1, len(raw))]
    elif how == "not_object":
        return _dumps([o, value])
    return _dumps(o)


_HOWS = [
    "replace",
    "replace",
    "delete",
    "unknown_key",
    "huge_number",
    "deep_value",
    "invalid_utf8",
    "truncate",
    "not_object",
    "none",
]
_HUGE_LITERALS = st.one_of(
    st.sampled_from(["1e400", "-1e400", "1" + "0" * 400, "9" * 5000, "-" + "9" * 20, "1E+999999"]),
    st.integers(min_value=2**63 - 2, max_value=2**80).map(str),
)


def cases(kind: str, now: datetime) -> st.SearchStrategy[tuple[str, bytes]]:
    """(topic, raw) cases of one payload kind."""
    shape = _shapes(now)[kind]
    valid = _valid(now)[kind]
    mutated = st.builds(
        _mutate,
        shape,
        st.sampled_from(_HOWS),
        st.text(max_size=10),
        json_values,
    )
    huge_number = st.builds(
        lambda o, k, lit: _mutate(o, "huge_number", k, lit),
        shape,
        st.text(max_size=10),
        _HUGE_LITERALS,
    )
    raw_garbage = st.one_of(
        st.binary(max_size=300),
        st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.sampled_from([b"", b"null", b"NaN", b"Infinity", b"[]", b"{}", b'"x"', b"\xff" * 10]),
    )
    huge = st.builds(
        lambda obj, n, pad: _dumps({**obj, "x": pad * n}),
        shape,
        st.sampled_from([HUGE_BYTES, 250 * 1024]),
        st.sampled_from(["x", "é", "\x00"]),
    )
    payload = st.integers(0, 199).flatmap(
        lambda r: (
            huge if r == 0 else st.one_of(shape.map(_dumps), mutated, huge_number, raw_garbage)
        )
    )
    return st.one_of(
        st.tuples(_topics(kind), payload),
        st.tuples(st.just(_own_topic(kind)), valid.map(_dumps)),
    )


# ---------------------------------------------------------------- running and checking


@dataclass
class FuzzResult:
    """Outcome of one payload kind."""

    kind: str
    cases: int = 0
    accepted: int = 0
    stored: int = 0
    ignored: int = 0
    rejected: int = 0  # by validation
    refused_by_db: int = 0  # accepted, then dead-lettered by the writer
    dead_lettered: int = 0  # rejected + refused, found in dead_letters
    with_reason: int = 0
    crashes: int = 0
    unaccounted: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)
    db_reasons: dict[str, int] = field(default_factory=dict)  # why the database refused

    @property
    def ok(self) -> bool:
        """No crash, every refusal dead-lettered with a reason, every acceptance accounted."""
        return (
            self.cases > 0
            and self.crashes == 0
            and self.unaccounted == 0
            and self.dead_lettered == self.rejected + self.refused_by_db
            and self.with_reason == self.dead_lettered
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the report."""
        return {
            "kind": self.kind,
            "cases": self.cases,
            "accepted": self.accepted,
            "stored": self.stored,
            "ignored": self.ignored,
            "rejected": self.rejected,
            "refused_by_db": self.refused_by_db,
            "dead_lettered": self.dead_lettered,
            "with_reason": self.with_reason,
            "crashes": self.crashes,
            "unaccounted": self.unaccounted,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
            "examples": self.examples[:5],
            "db_reasons": dict(sorted(self.db_reasons.items(), key=lambda kv: -kv[1])[:5]),
        }


def _describe(topic: str, raw: bytes) -> str:
    shown = raw[:120]
    return f"topic {topic[:80]!r}, {len(raw)} bytes {shown!r}{'...' if len(raw) > 120 else ''}"


class _Checker:
    """Runs batches through the validator and writer and accounts for every message."""

    def __init__(self, conn: psycopg.Connection[Any], kind: str) -> None:
        self.conn = conn
        self.res = FuzzResult(kind)
        self.directory = SensorDirectory()
        self.directory.refresh(conn)
        conn.commit()
        self.validator = Validator(self.directory, PREFIX, ZIGBEE_BASE)
        self.writer = BatchWriter(None, "fuzz")
        self.pending: list[tuple[str, bytes]] = []

    def crash(self, what: str, topic: str, raw: bytes, exc: BaseException) -> None:
        self.res.crashes += 1
        if len(self.res.examples) < 5:
            self.res.examples.append(
                f"{what} raised {type(exc).__name__}: {str(exc)[:160]} on {_describe(topic, raw)}"
            )

    def add(self, topic: str, raw: bytes) -> None:
        self.pending.append((topic, raw))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        now = utcnow()
        items: list[Item] = []
        for topic, raw in batch:
            self.res.cases += 1
            try:
                outcome = self.validator(topic, raw, now)
            except Exception as exc:  # a raise here would stop the worker's network thread
                self.crash("validation", topic, raw, exc)
                continue
            items.append(Item(topic, raw, now, outcome))
        row = self.conn.execute("SELECT coalesce(max(id), 0) FROM dead_letters").fetchone()
        self.conn.commit()
        floor = int(row[0]) if row else 0
        try:
            self.writer.write(self.conn, items)
        except Exception as exc:  # the writer must dead-letter, never raise on content
            self.conn.rollback()
            self.crash("the batch writer", items[0].topic if items else "", b"", exc)
            return
        dead = self.conn.execute(
            "SELECT topic, raw, reason FROM dead_letters WHERE id > %s", (floor,)
        ).fetchall()
        self.conn.commit()
        self._account(items, dead)

    def _account(self, items: list[Item], dead: list[tuple[str, bytes, str]]) -> None:
        res = self.res
        entries = [(str(t), bytes(r), str(reason)) for t, r, reason in dead]
        used = [False] * len(entries)
        by_raw: dict[bytes, list[int]] = {}
        for i, (_, raw, _) in enumerate(entries):
            by_raw.setdefault(raw, []).append(i)

        def take(it: Item, any_topic: bool = True) -> str | None:
            """The dead letter of ``it`` (same stored topic first, else - for a rejected
            message, whose topic may have been escaped - same bytes), used once."""
            candidates = [i for i in by_raw.get(it.raw, []) if not used[i]]
            topic = clean_text(it.topic)
            same = [i for i in candidates if entries[i][0] == topic]
            pool = same or (candidates if any_topic else [])
            if not pool:
                return None
            pick = pool[0]
            used[pick] = True
            return entries[pick][2]

        # rejected ones first: an accepted copy of the same bytes must not take their letter
        ordered = sorted(items, key=lambda it: not isinstance(it.outcome, Rejected))
        for it in ordered:
            o = it.outcome
            if isinstance(o, Rejected):
                res.rejected += 1
                reason = take(it)
                if reason is None:
                    res.unaccounted += 1
                    self._example(f"rejected ({o.code}) but not dead-lettered", it)
                    continue
                res.dead_lettered += 1
                res.with_reason += bool(reason.strip())
            elif isinstance(o, Ignored):
                res.ignored += 1
            else:
                res.accepted += 1
                reason = take(it, any_topic=False)
                if reason is not None:
                    res.refused_by_db += 1
                    short = reason.split(":", 1)[-1].strip()[:80]
                    res.db_reasons[short] = res.db_reasons.get(short, 0) + 1
                    res.dead_lettered += 1
                    res.with_reason += bool(reason.strip())
                elif self._stored(o):
                    res.stored += 1
                else:
                    res.unaccounted += 1
                    self._example("accepted but neither stored nor dead-lettered", it)

    def _example(self, what: str, it: Item) -> None:
        if len(self.res.examples) < 5:
            self.res.examples.append(f"{what}: {_describe(it.topic, it.raw)}")

    def _stored(self, o: Any) -> bool:
        if isinstance(o, AcceptedReadings):
            keys = [(o.sensor_id, r.ts) for r in o.readings]
            row = self.conn.execute(
                "SELECT count(*) FROM sensor_readings WHERE (sensor_id, ts) IN "
                "(SELECT * FROM unnest(%s::text[], %s::timestamptz[]))",
                ([k[0] for k in keys], [k[1] for k in keys]),
            ).fetchone()
            self.conn.commit()
            return row is not None and int(row[0]) == len(set(keys))
        if isinstance(o, AcceptedViolation):
            row = self.conn.execute(
                "SELECT count(*) FROM violations WHERE event_id = %s", (o.violation.event_id,)
            ).fetchone()
            self.conn.commit()
            return row is not None and int(row[0]) == 1
        if isinstance(o, AcceptedStatus):
            row = self.conn.execute(
                "SELECT status_at IS NOT NULL FROM edge_boxes WHERE id = %s", (o.box_id,)
            ).fetchone()
            self.conn.commit()
            return row is not None and bool(row[0])
        return False


def fuzz_kind(db_url: str, kind: str, n_cases: int, seed: int | None = None) -> FuzzResult:
    """Run ``n_cases`` hypothesis cases of ``kind`` against the database at ``db_url``
    (migrated, with :func:`fuzz_site_file` synced)."""
    t0 = time.monotonic()
    # The writer logs each bisection; thousands of hostile cases would drown the report.
    writer_log = logging.getLogger("ingest.writer")
    level = writer_log.level
    writer_log.setLevel(logging.ERROR)
    try:
        return _fuzz_kind(db_url, kind, n_cases, seed, t0)
    finally:
        writer_log.setLevel(level)


def _fuzz_kind(db_url: str, kind: str, n_cases: int, seed: int | None, t0: float) -> FuzzResult:
    with psycopg.connect(db_url) as conn:
        checker = _Checker(conn, kind)
        strategy = cases(kind, utcnow())

        @settings(
            max_examples=n_cases,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=seed is not None,
        )
        @given(case=strategy)
        def one(case: tuple[str, bytes]) -> None:
            checker.add(*case)

        try:
            one()
        except Exception as exc:  # hypothesis itself (should not happen): reported, not hidden
            checker.res.crashes += 1
            checker.res.examples.append(
                "hypothesis: " + "".join(traceback.format_exception_only(exc)).strip()[:300]
            )
        checker.flush()
    checker.res.seconds = time.monotonic() - t0
    return checker.res


def prepare_database(db_url: str) -> None:
    """Migrate ``db_url`` and sync the fuzz registry into it."""
    from brightkitchen.db import migrate
    from brightkitchen.registry import sync_registry

    migrate(db_url)
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, fuzz_site_file())


def run_fuzz(
    n_cases: int, out: IO[str], kinds: tuple[str, ...] = KINDS, db_url: str | None = None
) -> list[dict[str, Any]]:
    """Fuzz every kind on a private PostgreSQL (or ``db_url``); return the report rows."""
    import shutil
    import tempfile
    from pathlib import Path

    from brightkitchen.chaos.servers import PrivatePostgres

    pg: PrivatePostgres | None = None
    workdir: Path | None = None
    if db_url is None:
        workdir = Path(tempfile.mkdtemp(prefix="bk-fuzz-"))
        pg = PrivatePostgres(workdir)
        pg.start()
        db_url = pg.url("bk_fuzz")
    say: Callable[[str], None] = lambda s: print(s, file=out, flush=True)  # noqa: E731
    try:
        prepare_database(db_url)
        rows = []
        for kind in kinds:
            say(f"fuzzing {kind}: {n_cases} cases ...")
            r = fuzz_kind(db_url, kind, n_cases)
            say(
                f"  {r.cases} cases, {r.stored} stored, {r.dead_lettered} dead-lettered "
                f"({r.with_reason} with a reason), {r.ignored} ignored, {r.crashes} crashes, "
                f"{r.unaccounted} unaccounted, {r.seconds:.0f} s: {'OK' if r.ok else 'FAIL'}"
            )
            for ex in r.examples:
                say(f"    {ex}")
            rows.append(r.as_dict())
        return rows
    finally:
        if pg is not None:
            pg.stop("fast")
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
