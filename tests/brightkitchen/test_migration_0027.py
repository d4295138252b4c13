"""Migration 0027 on a database that already holds rows: the kinds of rapid-test and complaint
findings and tickets move from 'manual' to their own; the public page's disinfection switch
keeps what each region chose for the cold-chain switch worded "cold chain and disinfection"."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from brightkitchen.db import load_migrations, migrate
from tests.support.databases import drop

_ROWS = [
    # finding key, rule: the workflows' keys move, a ticket opened by hand stays manual
    ("rapid_test:7", "rapid_test_failed", "rapid_test"),
    ("supplier_flag:8", "supplier_flagged", "rapid_test"),
    ("complaint:9", "public_complaint", "complaint"),
    ("manual:0f3c", "rapid_test_failed", "manual"),
]


def test_existing_rows_get_their_kind_and_regions_keep_their_choice(pg_server: str) -> None:
    name = f"bk_t_{uuid.uuid4().hex[:12]}"
    url = f"{pg_server}/{name}"
    try:
        migrate(url, timescale="off", migrations=[m for m in load_migrations() if m.version < 27])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO regions VALUES ('r1', 'R1', NULL), ('r2', 'R2', NULL)")
            conn.execute("INSERT INTO sites (id, region_id, name) VALUES ('s', 'r1', 'S')")
            conn.execute(
                """INSERT INTO public_settings (region_id, enabled, show_cold_chain, updated_by)
                   VALUES ('r1', true, false, 'reg'), ('r2', true, true, 'reg')"""
            )
            for i, (key, rule, _kind) in enumerate(_ROWS):
                conn.execute(
                    """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier,
                                            title, opened_at, due_at, last_occurrence_at,
                                            details)
                       VALUES (%s, 's', 'manual', %s, %s, 2, 't', now(), now(), now(),
                               jsonb_build_object('finding_key', %s::text))""",
                    (f"T{i}", rule, f"subject {i}", key),
                )
                conn.execute(
                    """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                             occurred_at)
                       VALUES (%s, 'manual', 's', %s, %s, 2, now())""",
                    (key, f"subject {i}", rule),
                )
        result = migrate(url, timescale="off")
        assert "0027_public_disinfection_kinds" in result.applied
        with psycopg.connect(url, autocommit=True) as conn:
            findings = conn.execute("SELECT finding_key, kind FROM findings ORDER BY id").fetchall()
            tickets = conn.execute("SELECT ticket_no, source FROM tickets ORDER BY id").fetchall()
            shown = conn.execute(
                "SELECT region_id, show_disinfection FROM public_settings ORDER BY region_id"
            ).fetchall()
            # the new kinds are allowed, unknown ones still refused
            conn.execute(
                """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                         occurred_at)
                   VALUES ('complaint:10', 'complaint', 's', 'x', 'public_complaint', 2, now())"""
            )
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                             occurred_at)
                       VALUES ('x:1', 'rumour', 's', 'x', 'x', 2, now())"""
                )
        assert findings == [(key, kind) for key, _rule, kind in _ROWS]
        assert tickets == [(f"T{i}", kind) for i, (_k, _r, kind) in enumerate(_ROWS)]
        assert shown == [("r1", False), ("r2", True)]
    finally:
        drop(pg_server, name)
