"""The ticket engine against a real PostgreSQL: open, occurrences, clear, errors, concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from tests.api.conftest import T0, HookServer, insert_finding, site_data

pytestmark = pytest.mark.usefixtures("registry")

NOW = T0 + timedelta(minutes=1)


def _tickets(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, ticket_no, site_id, source, rule, subject, tier, status, title, opened_at, "
        "due_at, occurrences, last_occurrence_at, close_proposed_at FROM tickets ORDER BY id"
    ).fetchall()


def _events(conn: psycopg.Connection[Any], ticket_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT kind FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_alarm_opens_ticket_and_queues_officer_notifications(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    fid = insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1, "temp_c": 11.5})
    assert process_findings(conn, now=NOW, settings=settings) == 1

    [t] = _tickets(conn)
    tid, no, site, source, rule, subject, tier, status, title, opened, due, occ, last, prop = t
    assert no == f"ZG-20260302-{tid}"
    assert (site, source, rule, subject, tier, status) == (
        "school-001",
        "alarm",
        "temp_high",
        "fridge-1",
        2,
        "open",
    )
    assert title == "冷藏温度超标 fridge over temperature limit: 冷藏柜 1"
    assert opened == NOW
    assert due == NOW + timedelta(hours=72)  # tier 2 default
    assert (occ, last, prop) == (1, T0, None)
    assert _events(conn, tid) == ["opened"]

    f = conn.execute(
        "SELECT processed_at, ticket_id, error FROM findings WHERE id = %s", (fid,)
    ).fetchone()
    assert f == (NOW, tid, None)

    notes = conn.execute(
        "SELECT person_id, channel, address, status, dedupe_key, payload, body, max_attempts "
        "FROM notifications ORDER BY id"
    ).fetchall()
    # The officer's two channels; the director is not alerted first.
    assert [(n[0], n[1], n[3]) for n in notes] == [
        ("officer-1", "webhook", "pending"),
        ("officer-1", "email", "pending"),
    ]
    assert notes[0][4].startswith(f"ticket:{tid}:opened:officer-1:")
    payload = notes[0][5]
    assert payload["ticket_no"] == no
    assert payload["tier"] == 2
    assert payload["due_at"] == "2026-03-05T08:01:00Z"
    assert payload["link"] == f"https://bk.example/console/tickets/{tid}"
    assert "整改通知" in notes[1][6]
    assert "Rectification notice" in notes[1][6]
    assert notes[0][7] == settings.max_attempts


def test_deadline_follows_the_tier_settings(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    quick = settings.model_copy(update={"deadline_tier1_h": 4.0})
    insert_finding(conn, key="f1", rule="pest", kind="violation", subject="cam-1", tier=1)
    process_findings(conn, now=NOW, settings=quick)
    [t] = _tickets(conn)
    assert t[3] == "violation"
    assert t[8] == "鼠患 pest in kitchen: 凉菜专间"
    assert t[10] == NOW + timedelta(hours=4)


def test_repeat_becomes_occurrence_not_new_ticket(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1})
    process_findings(conn, now=NOW, settings=settings)
    later = T0 + timedelta(hours=3)
    insert_finding(conn, key="alarm:2:raised", occurred_at=later, payload={"alarm_id": 2})
    insert_finding(conn, key="alarm:3:raised", subject="freezer-1", rule="temp_high")
    assert process_findings(conn, now=NOW + timedelta(hours=3), settings=settings) == 2

    tickets = _tickets(conn)
    assert len(tickets) == 2
    fridge = tickets[0]
    assert fridge[11] == 2  # occurrences
    assert fridge[12] == later
    assert _events(conn, fridge[0]) == ["opened", "occurrence"]
    assert tickets[1][8].startswith("冷冻温度超标 freezer")
    # The occurrence does not alert again: 2 notifications per opened ticket only.
    n = conn.execute("SELECT count(*) FROM notifications").fetchone()
    assert n == (4,)


def test_processing_twice_changes_nothing(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    insert_finding(conn, key="alarm:1:raised")
    assert process_findings(conn, now=NOW, settings=settings) == 1
    assert process_findings(conn, now=NOW, settings=settings) == 0
    assert len(_tickets(conn)) == 1
    assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (2,)


def test_alarm_cleared_proposes_close_but_keeps_ticket_open(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1})
    insert_finding(conn, key="alarm:1:cleared", kind="alarm_cleared", payload={"alarm_id": 1})
    assert process_findings(conn, now=NOW, settings=settings) == 2
    [t] = _tickets(conn)
    assert t[7] == "open"
    assert t[13] == NOW
    assert _events(conn, t[0]) == ["opened", "alarm_cleared"]
    data = conn.execute("SELECT data FROM ticket_events WHERE kind = 'alarm_cleared'").fetchone()
    assert data is not None
    assert data[0]["alarm_id"] == 1

    # The problem comes back: the proposal is withdrawn.
    insert_finding(conn, key="alarm:2:raised", payload={"alarm_id": 2})
    process_findings(conn, now=NOW + timedelta(hours=1), settings=settings)
    [t] = _tickets(conn)
    assert t[13] is None
    assert t[11] == 2


def test_clear_without_ticket_is_processed_quietly(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    fid = insert_finding(conn, key="alarm:9:cleared", kind="alarm_cleared")
    assert process_findings(conn, now=NOW, settings=settings) == 1
    row = conn.execute(
        "SELECT processed_at, ticket_id, error FROM findings WHERE id = %s", (fid,)
    ).fetchone()
    assert row == (NOW, None, None)
    assert _tickets(conn) == []


def test_a_failing_finding_is_recorded_and_does_not_block_the_rest(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    # A real database error inside the engine's transaction for one subject only.
    conn.execute(
        """CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.subject = 'freezer-1' THEN RAISE EXCEPTION 'disk on fire'; END IF;
           RETURN NEW; END $$"""
    )
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION boom()"
    )
    bad = insert_finding(conn, key="bad", subject="freezer-1")
    good = insert_finding(conn, key="good")
    assert process_findings(conn, now=NOW, settings=settings) == 2
    rows = dict(
        (r[0], r[1:])
        for r in conn.execute(
            "SELECT id, processed_at, ticket_id, error FROM findings ORDER BY id"
        ).fetchall()
    )
    assert rows[bad][0] == NOW
    assert rows[bad][1] is None
    assert "disk on fire" in rows[bad][2]
    assert rows[good][1] is not None
    assert rows[good][2] is None
    # Nothing of the failed finding's work survived (no half-made ticket or notification).
    assert [t[5] for t in _tickets(conn)] == ["fridge-1"]
    assert process_findings(conn, now=NOW, settings=settings) == 0


def test_site_without_officer_gets_ticket_and_no_notification(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    conn.execute(
        "INSERT INTO sensors (id, site_id, profile, params) "
        "VALUES ('s2-fridge', 'school-002', 'fridge', '{}')"
    )
    insert_finding(conn, key="k", site_id="school-002", subject="s2-fridge")
    assert process_findings(conn, now=NOW, settings=settings) == 1
    assert len(_tickets(conn)) == 1
    assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (0,)


def test_concurrent_engines_open_exactly_one_ticket(
    db_url: str, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    subjects = ["fridge-1", "freezer-1", "cam-1"]
    n_each = 15
    for i in range(n_each):
        for s in subjects:
            insert_finding(conn, key=f"{s}:{i}", subject=s, notify=False)
    total = n_each * len(subjects)
    done: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def engine() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                start.wait()
                n = 0
                while True:
                    k = process_findings(c, now=NOW, settings=settings, limit=3)
                    if k == 0:
                        break
                    n += k
                done.append(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=engine) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(done) == total  # every finding processed exactly once
    tickets = _tickets(conn)
    assert sorted(t[5] for t in tickets) == sorted(subjects)
    assert all(t[11] == n_each for t in tickets)
    unprocessed = conn.execute(
        "SELECT count(*) FROM findings WHERE processed_at IS NULL OR ticket_id IS NULL"
    ).fetchone()
    assert unprocessed == (0,)
    assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (2 * len(subjects),)
    events = conn.execute(
        "SELECT kind, count(*) FROM ticket_events GROUP BY kind ORDER BY kind"
    ).fetchall()
    assert events == [("occurrence", total - len(subjects)), ("opened", len(subjects))]


def test_clear_waits_for_a_raise_still_in_flight(
    db_url: str, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    raised = insert_finding(conn, key="alarm:1:raised", notify=False)
    cleared = insert_finding(conn, key="alarm:1:cleared", kind="alarm_cleared", notify=False)
    # Another engine holds the raise (its transaction is open).
    with psycopg.connect(db_url) as other:
        other.execute("SELECT id FROM findings WHERE id = %s FOR UPDATE", (raised,))
        assert process_findings(conn, now=NOW, settings=settings) == 0
        row = conn.execute("SELECT processed_at FROM findings WHERE id = %s", (cleared,))
        assert row.fetchone() == (None,)
        other.rollback()
    assert process_findings(conn, now=NOW, settings=settings) == 2
    [t] = _tickets(conn)
    assert t[13] == NOW


def test_the_ticket_number_carries_the_regions_date_not_utcs(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    # 17:30 UTC on 2 March is 01:30 on 3 March in China: the people reading the number live
    # by the second date
    late = T0.replace(hour=17, minute=30)
    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1, "temp_c": 11.5})
    assert process_findings(conn, now=late, settings=settings) == 1
    [(tid, no)] = conn.execute("SELECT id, ticket_no FROM tickets").fetchall()
    assert no == f"ZG-20260303-{tid}"


def test_a_camera_capture_reaches_the_officer_and_the_regulator(
    conn: psycopg.Connection[Any], settings: ApiSettings, hook: HookServer
) -> None:
    """双推送: a camera violation's opening notice goes to the canteen's officer (who acts, with
    an acknowledge link) and to its regulator (told, no link); a fridge alarm to the officer."""
    data = site_data(hook.url)
    data["people"].append(
        {
            "id": "cadre-1",
            "name": "赵包保",
            "channels": [{"kind": "webhook", "address": f"{hook.url}/hook/cadre-1"}],
        }
    )
    data["sites"][0]["people"]["regulator"] = ["cadre-1"]
    sync_registry(conn, parse_site_file(data))
    links = settings.model_copy(update={"secret_key": SecretStr("k" * 32)})
    insert_finding(conn, key="violation:ev-1", kind="violation", subject="cam-1", rule="no_mask")
    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1})
    assert process_findings(conn, now=NOW, settings=links) == 2

    rows = conn.execute(
        """SELECT t.source, n.person_id, n.channel, n.payload ? 'ack_link', n.dedupe_key
           FROM notifications n JOIN tickets t ON t.id = n.ticket_id ORDER BY n.id"""
    ).fetchall()
    assert [r[:4] for r in rows] == [
        ("violation", "officer-1", "webhook", True),
        ("violation", "officer-1", "email", True),
        ("violation", "cadre-1", "webhook", False),
        ("alarm", "officer-1", "webhook", True),
        ("alarm", "officer-1", "email", True),
    ]
    assert ":opened-regulator:cadre-1:" in rows[2][4]
    assert process_findings(conn, now=NOW, settings=links) == 0  # nothing queued twice

    # turned off: the officer alone, as for any other source
    insert_finding(conn, key="violation:ev-2", kind="violation", subject="cam-1", rule="smoking")
    process_findings(conn, now=NOW, settings=links.model_copy(update={"dual_push_sources": []}))
    (n,) = conn.execute(
        "SELECT count(*) FROM notifications n JOIN tickets t ON t.id = n.ticket_id "
        "WHERE t.rule = 'smoking' AND n.person_id = 'cadre-1'"
    ).fetchone() or (None,)
    assert n == 0


def test_a_silent_edge_box_opens_a_camera_offline_ticket_that_its_return_proposes_to_close(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    """The ingest sweep's camera_offline alarm reaches the officer as a ticket naming the
    camera; when the box reports again the ticket is proposed for closing, and the alarm's
    span is the camera downtime of the risk record."""
    from ingest.rules.cameras import sweep_cameras  # the sweep ingest runs

    conn.execute(
        "UPDATE edge_boxes SET online = true, status_at = %s, status_received_at = %s,"
        " status = %s WHERE id = 'box-1'",
        (T0, T0, '{"cameras": [{"camera_id": "cam-1", "online": true}]}'),
    )
    conn.commit()
    assert sweep_cameras(conn, T0 + timedelta(minutes=3), 120) == 1
    assert process_findings(conn, now=NOW, settings=settings) == 1
    [t] = _tickets(conn)
    assert t[3:7] == ("alarm", "camera_offline", "cam-1", 2)
    assert t[8] == "视频离线 camera offline: 凉菜专间"
    back = T0 + timedelta(hours=2)
    conn.execute("UPDATE edge_boxes SET status_received_at = %s WHERE id = 'box-1'", (back,))
    conn.commit()
    assert sweep_cameras(conn, back + timedelta(seconds=10), 120) == 1
    assert process_findings(conn, now=back, settings=settings) == 1
    [t] = _tickets(conn)
    assert t[7] == "open"  # proposed for closing, still open
    assert t[13] == back
    minutes = conn.execute(
        "SELECT extract(epoch FROM cleared_at - started_at) / 60 FROM alarms"
        " WHERE rule = 'camera_offline'"
    ).fetchone()
    assert minutes == (120,)


def test_an_older_clear_after_a_newer_raise_does_not_propose_closing(
    conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    """Engines working off a backlog: alarm 1 raised and cleared, alarm 2 raised, and the
    second raise is counted before the first clear comes through. The problem is back: the
    clear must not propose closing the ticket (nor leave alarm 2's excursion unticketed)."""
    from api.services.tickets import process_one

    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1})
    clear = insert_finding(
        conn, key="alarm:1:cleared", kind="alarm_cleared", payload={"alarm_id": 1}
    )
    insert_finding(conn, key="alarm:2:raised", payload={"alarm_id": 2})
    for _ in range(2):  # the two raises, the clear held by another engine meanwhile
        out = process_one(conn, now=NOW, settings=settings, skip=[clear])
        assert out is not None
    out = process_one(conn, now=NOW, settings=settings)
    assert out is not None
    assert (out.finding_id, out.action) == (clear, "stale_clear")
    [t] = _tickets(conn)
    assert t[11] == 2  # two occurrences
    assert t[13] is None  # not proposed for closing
