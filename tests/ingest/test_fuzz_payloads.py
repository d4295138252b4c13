"""Hypothesis fuzzing of each MQTT payload type ingest consumes, the short CI version of
``brightkitchen chaos --fuzz`` (which runs 10 000 cases of each).

test_fuzz.py throws generic JSON at every topic at once; this drives each payload type on
its own topic with values at and beyond its bounds and the hostile encodings listed in
brightkitchen/chaos/fuzz.py, and accounts for every message: stored, or dead-lettered with
a reason, never raised.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from brightkitchen.chaos.fuzz import (
    BOX,
    KINDS,
    PREFIX,
    SENSOR,
    SITE,
    FuzzResult,
    fuzz_kind,
    fuzz_site_file,
)
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.validate import Rejected, Validator
from ingest.writer import BatchWriter, Item


@pytest.fixture
def fuzz_db(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, fuzz_site_file())
    return db_url


@pytest.mark.parametrize("kind", KINDS)
def test_every_payload_type_stores_or_dead_letters_with_a_reason(fuzz_db: str, kind: str) -> None:
    res: FuzzResult = fuzz_kind(fuzz_db, kind, 300)
    assert res.crashes == 0, res.examples
    assert res.unaccounted == 0, res.examples
    assert res.cases >= 290  # hypothesis may stop a little early when it runs out of ideas
    assert res.dead_lettered == res.rejected + res.refused_by_db
    assert res.with_reason == res.dead_lettered
    assert res.stored > 0  # valid payloads of each type really reach the database
    assert res.dead_lettered > 0
    assert res.ok


HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,  # nesting beyond the interpreter's recursion limit
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"ts": "2026-01-01T00:00:00Z", "temp_c": ' + b"9" * 5000 + b"}",  # > 4300 digits
    b'{"ts": "2026-01-01T00:00:00Z", "temp_c": NaN}',
    b'{"ts": "2026-01-01T00:00:00Z", "temp_c": Infinity}',
    b'{"ts": "2026-01-01T00:00:00Z", "temp_c": 1e400}',
    b'{"ts": "2026-01-01T00:00:00Z", "temp_c": "\xc3\x28"}',  # invalid UTF-8
    b'{"ts": "2026-01-01T00:00:00Z", "temp_c": 4, "x": "' + b"y" * (300 * 1024) + b'"}',
]
TOPICS = [
    f"{PREFIX}/{SITE}/sensor/{SENSOR}/reading",
    f"{PREFIX}/{SITE}/sensor/{SENSOR}/readings",
    f"{PREFIX}/{SITE}/edge/{BOX}/violation",
    f"{PREFIX}/{SITE}/edge/{BOX}/status",
    "zigbee2mqtt/fz_zigbee",
]


def test_known_hostile_payloads_are_dead_lettered_on_every_topic(fuzz_db: str) -> None:
    with psycopg.connect(fuzz_db) as conn:
        directory = SensorDirectory()
        directory.refresh(conn)
        conn.commit()
        validator = Validator(directory, PREFIX, "zigbee2mqtt")
        from bkcommon.timeutil import utcnow

        now = utcnow()
        items = [Item(t, raw, now, validator(t, raw, now)) for t in TOPICS for raw in HOSTILE]
        assert all(isinstance(it.outcome, Rejected) for it in items)
        BatchWriter(None, "fuzz-test").write(conn, items)
        rows: list[Any] = conn.execute(
            "SELECT topic, reason FROM dead_letters WHERE worker = 'fuzz-test'"
        ).fetchall()
    assert len(rows) == len(items)
    assert all(reason.strip() for _, reason in rows)
    assert any("not JSON" in reason for _, reason in rows)
