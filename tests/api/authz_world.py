"""A small world for authorisation tests: a region tree, sites, people, users of every role.

Province ``prov`` has districts ``dist-a`` (with the town ``town-a3`` below it) and
``dist-b``. Sites ``site-a1``, ``site-a2`` (dist-a), ``site-a3`` (town-a3), ``site-b1``
(dist-b). Every site has a sensor with readings, an alarm, a ticket and a notification,
and every row carries its site id in some text, so a leak shows as a substring.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.api.conftest import make_user_token

SITES = ("site-a1", "site-a2", "site-a3", "site-b1")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# The sites each role's user may see.
EXPECTED_SCOPE: dict[str, frozenset[str]] = {
    "admin": frozenset(SITES),
    "regulator": frozenset({"site-a1", "site-a2", "site-a3"}),  # dist-a and its town
    "inspector": frozenset({"site-a1", "site-a2", "site-a3"}),  # the same region as reg-a
    "officer": frozenset({"site-a1"}),
    "director": frozenset({"site-a1"}),
    "insurer": frozenset({"site-a2"}),
    "device": frozenset({"site-a1"}),
}
ROLES = tuple(EXPECTED_SCOPE)
WRITERS = frozenset({"admin", "regulator", "officer", "director"})
# Roles that write something at all: the writers and the inspector, whose writes are the
# inspection workflow only (inspections, a ticket's check and comments, triage decisions).
ANY_WRITERS = WRITERS | {"inspector"}


@dataclass
class World:
    """Ids of what was created, by site, and a token per role."""

    alarm: dict[str, int] = field(default_factory=dict)
    ticket: dict[str, int] = field(default_factory=dict)
    notification: dict[str, int] = field(default_factory=dict)
    sensor: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    sha: dict[str, str] = field(default_factory=dict)
    extra: dict[str, dict[str, int]] = field(default_factory=dict)  # path param -> site -> id

    def headers(self, role: str) -> dict[str, str]:
        """Authorization header of ``role``'s user."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_world(conn: psycopg.Connection[Any]) -> World:
    """Create the region tree, sites, data in every site and one user of every role."""
    w = World()
    conn.execute(
        """INSERT INTO regions (id, name, parent_id) VALUES
           ('prov', 'Province', NULL), ('dist-a', 'District A', 'prov'),
           ('dist-b', 'District B', 'prov'), ('town-a3', 'Town A3', 'dist-a')"""
    )
    region = {"site-a1": "dist-a", "site-a2": "dist-a", "site-a3": "town-a3", "site-b1": "dist-b"}
    conn.execute(
        """INSERT INTO people (id, name) VALUES ('p-officer-a1', 'Officer A1'),
           ('p-director-a1', 'Director A1'), ('p-officer-b1', 'Officer B1')"""
    )
    for site in SITES:
        conn.execute(
            "INSERT INTO sites (id, region_id, name) VALUES (%s, %s, %s)",
            (site, region[site], f"canteen {site}"),
        )
    conn.execute(
        """INSERT INTO site_people (site_id, person_id, role) VALUES
           ('site-a1', 'p-officer-a1', 'officer'), ('site-a1', 'p-director-a1', 'director'),
           ('site-b1', 'p-officer-b1', 'officer'),
           ('site-a2', 'p-officer-a1', 'regulator')"""  # a non-canteen role grants nothing
    )
    for i, site in enumerate(SITES):
        sensor = f"fridge-{site}"
        w.sensor[site] = sensor
        conn.execute(
            "INSERT INTO sensors (id, site_id, name, profile, params) VALUES (%s, %s, %s, %s, %s)",
            (sensor, site, f"fridge of {site}", "fridge", Jsonb({})),
        )
        for m in range(5):
            conn.execute(
                "INSERT INTO sensor_readings (sensor_id, ts, temp_c) VALUES (%s, %s, %s)",
                (sensor, T0 + timedelta(minutes=m), 4.0 + i),
            )
        row = conn.execute(
            """INSERT INTO alarms (alarm_key, site_id, sensor_id, rule, tier, status,
                                   started_at, raised_at, details)
               VALUES (%s, %s, %s, 'temp_high', 2, 'active', %s, %s, %s) RETURNING id""",
            (f"{sensor}:temp_high:0", site, sensor, T0, T0, Jsonb({"site": site})),
        ).fetchone()
        assert row is not None
        w.alarm[site] = int(row[0])
        row = conn.execute(
            """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, title,
                                   opened_at, due_at, last_occurrence_at)
               VALUES (%s, %s, 'alarm', 'temp_high', %s, 2, %s, %s, %s, %s) RETURNING id""",
            (
                f"T-{site}",
                site,
                sensor,
                f"too warm at {site}",
                T0,
                T0 + timedelta(days=3),
                T0,
            ),
        ).fetchone()
        assert row is not None
        w.ticket[site] = int(row[0])
        row = conn.execute(
            """INSERT INTO notifications (dedupe_key, ticket_id, channel, address, subject, body)
               VALUES (%s, %s, 'email', %s, %s, 'body') RETURNING id""",
            (f"n-{site}", w.ticket[site], f"officer@{site}.example", f"ticket at {site}"),
        ).fetchone()
        assert row is not None
        w.notification[site] = int(row[0])
        _insurance_and_inspections(conn, w, site)

    w.tokens["admin"] = make_user_token(conn, username="root", role="admin")
    w.tokens["regulator"] = make_user_token(
        conn, username="reg-a", role="regulator", region_id="dist-a"
    )
    w.tokens["inspector"] = make_user_token(
        conn, username="insp-a", role="inspector", region_id="dist-a"
    )
    w.tokens["officer"] = make_user_token(
        conn, username="off-a1", role="officer", person_id="p-officer-a1"
    )
    w.tokens["director"] = make_user_token(
        conn, username="dir-a1", role="director", person_id="p-director-a1"
    )
    w.tokens["insurer"] = make_user_token(
        conn,
        username="ins-a2",
        role="insurer",
        insurer="PICC",  # site-a2 by its policy
    )
    w.tokens["device"] = make_user_token(
        conn, username="box-a1", role="device", site_ids=("site-a1",)
    )
    make_user_token(conn, username="victim", role="officer", person_id="p-officer-b1")
    return w


def _insurance_and_inspections(conn: psycopg.Connection[Any], w: World, site: str) -> None:
    """An inspection, an incident and a policy at ``site`` (PICC insures site-a2 only)."""
    row = conn.execute(
        """INSERT INTO inspections (site_id, kind, started_at, notes)
           VALUES (%s, 'routine', %s, %s) RETURNING id""",
        (site, T0, f"inspection of {site}"),
    ).fetchone()
    assert row is not None
    w.extra.setdefault("inspection_id", {})[site] = int(row[0])
    row = conn.execute(
        """INSERT INTO incidents (site_id, occurred_at, kind, description)
           VALUES (%s, %s, 'complaint', %s) RETURNING id""",
        (site, T0, f"incident at {site}"),
    ).fetchone()
    assert row is not None
    w.extra.setdefault("incident_id", {})[site] = int(row[0])
    conn.execute(
        """INSERT INTO policies (site_id, insurer, policy_no, cover_cny, premium_cny,
                                 starts_on, ends_on)
           VALUES (%s, %s, %s, 5000000, 3000, '2026-01-01', '2026-12-31')""",
        (site, "PICC" if site == "site-a2" else "Other Mutual", f"P-{site}"),
    )
    # a capture waiting for review, and a photo on the site's ticket
    row = conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 processed_at)
           VALUES (%s, 'violation', %s, %s, 'no_mask', 2, %s, %s) RETURNING id""",
        (f"v-{site}", site, f"cam-{site}", T0, T0),
    ).fetchone()
    assert row is not None
    row = conn.execute(
        """INSERT INTO capture_reviews (finding_id, event_id, site_id, camera_id, rule)
           VALUES (%s, %s, %s, %s, 'no_mask') RETURNING id""",
        (row[0], f"ev-{site}", site, f"cam-{site}"),
    ).fetchone()
    assert row is not None
    w.extra.setdefault("review_id", {})[site] = int(row[0])
    sha = hashlib.sha256(site.encode()).hexdigest()
    conn.execute(
        """INSERT INTO ticket_evidence (ticket_id, sha256, kind, media_type, size_bytes,
                                        uploaded_by)
           VALUES (%s, %s, 'photo', 'image/jpeg', 10, 'test')""",
        (w.ticket[site], sha),
    )
    w.sha[site] = sha
    _rapid_tests_and_complaints(conn, w, site)


def _rapid_tests_and_complaints(conn: psycopg.Connection[Any], w: World, site: str) -> None:
    """A delivery, a passed rapid test and a received complaint at ``site``; its region."""
    conn.execute(
        "INSERT INTO suppliers (licence_no, name) VALUES ('JY-world', 'supplier') "
        "ON CONFLICT DO NOTHING"
    )
    row = conn.execute(
        """INSERT INTO purchases (site_id, supplier_licence, product, batch_no, delivered_on,
                                  quantity, received_by)
           VALUES (%s, 'JY-world', %s, 'B1', '2026-03-01', 10, 'receiver') RETURNING id""",
        (site, f"cabbage for {site}"),
    ).fetchone()
    assert row is not None
    w.extra.setdefault("purchase_id", {})[site] = int(row[0])
    row = conn.execute(
        """INSERT INTO rapid_tests (site_id, purchase_id, sample_no, product, supplier_licence,
                                    item, method, result, tester, tested_at)
           VALUES (%s, %s, %s, 'cabbage', 'JY-world', 'pesticide_enzyme', 'enzyme', 'pass',
                   'tester', %s) RETURNING id""",
        (site, w.extra["purchase_id"][site], f"S-{site}", T0),
    ).fetchone()
    assert row is not None
    w.extra.setdefault("test_id", {})[site] = int(row[0])
    row = conn.execute(
        """INSERT INTO complaints (tracking_code, site_id, body, client_hash, created_at)
           VALUES (%s, %s, %s, 'x', %s) RETURNING id""",
        (f"WRLD-{SITES.index(site):04d}-TEST", site, f"complaint about {site}", T0),
    ).fetchone()
    assert row is not None
    w.extra.setdefault("complaint_id", {})[site] = int(row[0])
    region = conn.execute("SELECT region_id FROM sites WHERE id = %s", (site,)).fetchone()
    assert region is not None
    w.extra.setdefault("region_id", {})[site] = region[0]
