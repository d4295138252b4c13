"""The ticket state machine against a real PostgreSQL: the whole life, rejection, reopening."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.auth.scope import Role
from api.services.evidence import LocalDirStore, attach_photo
from api.services.lifecycle import (
    TRANSITIONS,
    Action,
    MissingInputError,
    RoleNotAllowedError,
    TicketNotFoundError,
    TransitionNotAllowedError,
    actions_now,
    allowed_actions,
    apply_action,
    create_manual_ticket,
    decide,
)
from api.services.tickets import process_findings
from api.settings import ApiSettings
from tests.api.conftest import T0, insert_finding
from tests.api.loop_support import (
    ALL,
    DIRECTOR,
    INSURER,
    OFFICER,
    REGULATOR,
    SCHOOL2,
    events,
    jpeg_bytes,
    loop_registry,
    loop_settings,
    notices,
)

__all__ = ["loop_registry", "loop_settings"]


NOW = T0 + timedelta(minutes=1)


def _open_ticket(conn: psycopg.Connection[Any], settings: ApiSettings) -> int:
    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1}, notify=False)
    process_findings(conn, now=NOW, settings=settings)
    row = conn.execute("SELECT id FROM tickets").fetchone()
    assert row is not None
    return int(row[0])


def _status(conn: psycopg.Connection[Any], ticket_id: int) -> str:
    row = conn.execute("SELECT status FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("status", "action", "role", "expected"),
    [
        ("open", Action.ACKNOWLEDGE, Role.OFFICER, "acknowledged"),
        ("acknowledged", Action.RECTIFY, Role.OFFICER, "rectified"),
        ("rejected", Action.RECTIFY, Role.OFFICER, "rectified"),
        ("rectified", Action.VERIFY, Role.DIRECTOR, "closed"),
        ("rectified", Action.REJECT, Role.REGULATOR, "rejected"),
        ("closed", Action.REOPEN, Role.REGULATOR, "open"),
        ("acknowledged", Action.CLOSE, Role.REGULATOR, "closed"),
        ("rectified", Action.VERIFY, Role.OFFICER, RoleNotAllowedError),
        ("open", Action.VERIFY, Role.DIRECTOR, TransitionNotAllowedError),
        ("closed", Action.ACKNOWLEDGE, Role.ADMIN, TransitionNotAllowedError),
        ("open", Action.ACKNOWLEDGE, Role.INSURER, RoleNotAllowedError),
        ("open", Action.CLOSE, Role.OFFICER, RoleNotAllowedError),
    ],
)
def test_transition_table(status: str, action: Action, role: Role, expected: object) -> None:
    if isinstance(expected, str):
        assert decide(status, action, role).to == expected
    else:
        assert isinstance(expected, type)
        with pytest.raises(expected) as err:
            decide(status, action, role)
        assert "allowed" in str(err.value)


def test_every_state_has_a_way_out_and_officer_buttons() -> None:
    states = {s for s, _ in TRANSITIONS}
    assert states == {"open", "acknowledged", "rectified", "rejected", "closed"}
    assert allowed_actions("open", Role.OFFICER) == [
        Action.ACKNOWLEDGE,
        Action.RECTIFY,
        Action.CONFIRM_CLOSE,
    ]
    assert allowed_actions("rectified", Role.INSURER) == []


@pytest.mark.usefixtures("loop_registry")
def test_whole_life_with_rejection_and_reopen(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings, tmp_path: Path
) -> None:
    settings = loop_settings
    store = LocalDirStore(tmp_path / "ev")
    tid = _open_ticket(conn, settings)
    officer_notices = notices(conn, tid)
    assert {n[0] for n in officer_notices} == {"officer-1"}
    body = conn.execute("SELECT body FROM notifications WHERE ticket_id = %s", (tid,)).fetchone()
    assert body is not None
    assert "/api/v1/ack/" in body[0]

    def act(action: Action, actor: Any, note: str = "", **kw: Any) -> str:
        res = apply_action(
            conn,
            ticket_id=tid,
            action=action,
            actor=actor,
            scope=ALL,
            now=NOW + timedelta(hours=1),
            settings=settings,
            note=note,
            **kw,
        )
        return res.status

    assert act(Action.ACKNOWLEDGE, OFFICER) == "acknowledged"
    with pytest.raises(TransitionNotAllowedError, match="allowed from acknowledged: rectify"):
        act(Action.ACKNOWLEDGE, OFFICER)
    with pytest.raises(MissingInputError, match="note"):
        act(Action.RECTIFY, OFFICER)
    with pytest.raises(MissingInputError, match="photo"):
        act(Action.RECTIFY, OFFICER, "moved food to the spare fridge")
    assert _status(conn, tid) == "acknowledged"  # a refused action changes nothing

    photo = attach_photo(
        conn, store, ticket_id=tid, data=jpeg_bytes(seed=1), filename="fix.jpg",
        uploaded_by=OFFICER.name, scope=ALL, now=NOW,
    )  # fmt: skip
    assert act(Action.RECTIFY, OFFICER, "moved food; compressor repaired") == "rectified"
    with pytest.raises(RoleNotAllowedError, match="director"):
        act(Action.VERIFY, OFFICER)
    with pytest.raises(MissingInputError):
        act(Action.REJECT, DIRECTOR)
    assert act(Action.REJECT, DIRECTOR, "door seal still broken") == "rejected"
    assert ("officer-1", "ticket_rejected") in {(n[0], n[1]) for n in notices(conn, tid)}

    # Back to the officer: the old photo is used up, a new one is needed.
    with pytest.raises(MissingInputError, match="photo"):
        act(Action.RECTIFY, OFFICER, "seal replaced")
    second = attach_photo(
        conn, store, ticket_id=tid, data=jpeg_bytes(seed=2), filename="seal.jpg",
        uploaded_by=OFFICER.name, scope=ALL, now=NOW,
    )  # fmt: skip
    with pytest.raises(MissingInputError, match="not uploaded"):
        act(Action.RECTIFY, OFFICER, "seal replaced", evidence=["0" * 64])
    assert act(Action.RECTIFY, OFFICER, "seal replaced", evidence=[second.sha256]) == "rectified"
    assert act(Action.VERIFY, DIRECTOR) == "closed"
    with pytest.raises(TransitionNotAllowedError):
        act(Action.REJECT, DIRECTOR, "too late")

    before = conn.execute("SELECT due_at FROM tickets WHERE id = %s", (tid,)).fetchone()
    assert act(Action.REOPEN, REGULATOR, "found again at the spot check") == "open"
    row = conn.execute(
        "SELECT reopened_count, due_at, acknowledged_at, closed_at, verified_by, rectified_by "
        "FROM tickets WHERE id = %s",
        (tid,),
    ).fetchone()
    assert row is not None
    assert before is not None
    assert row[0] == 1
    assert row[1] > before[0]
    assert row[2] is None
    assert row[3] is None
    assert (row[4], row[5]) == ("director-user", "officer-user")

    timeline = events(conn, tid)
    assert [k for k, _, _ in timeline] == [
        "opened", "acknowledged", "rectified", "rejected", "rectified", "verified", "reopened",
    ]  # fmt: skip
    assert timeline[3] == ("rejected", "director-user", "door seal still broken")
    # the officer's notice of a rejection has no acknowledge link (a rejected ticket is
    # rectified again, not acknowledged: the link led to a page with nothing to press);
    # the notice of a reopened ticket has one
    links = dict(
        conn.execute(
            "SELECT split_part(dedupe_key, ':', 3), bool_or(body LIKE '%%/api/v1/ack/%%')"
            " FROM notifications WHERE ticket_id = %s"
            " AND split_part(dedupe_key, ':', 3) IN ('rejected', 'reopened') GROUP BY 1",
            (tid,),
        ).fetchall()
    )
    assert links == {"rejected": False, "reopened": True}
    attached = conn.execute(
        "SELECT sha256, e.kind FROM ticket_evidence te JOIN ticket_events e ON e.id = te.event_id "
        "WHERE te.ticket_id = %s ORDER BY te.id",
        (tid,),
    ).fetchall()
    assert attached == [(photo.sha256, "rectified"), (second.sha256, "rectified")]
    data = conn.execute(
        "SELECT data FROM ticket_events WHERE ticket_id = %s AND kind = 'rectified' ORDER BY id",
        (tid,),
    ).fetchall()
    assert [d[0]["evidence"] for d in data] == [[photo.sha256], [second.sha256]]

    # Nothing is ever deleted or rewritten.
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM ticket_events WHERE ticket_id = %s", (tid,))
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM tickets WHERE id = %s", (tid,))
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE ticket_events SET note = 'x' WHERE ticket_id = %s", (tid,))


@pytest.mark.usefixtures("loop_registry")
def test_out_of_scope_and_read_only_roles(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    tid = _open_ticket(conn, loop_settings)
    with pytest.raises(TicketNotFoundError):
        apply_action(
            conn, ticket_id=tid, action=Action.ACKNOWLEDGE, actor=OFFICER, scope=SCHOOL2,
            now=NOW, settings=loop_settings,
        )  # fmt: skip
    with pytest.raises(RoleNotAllowedError):
        apply_action(
            conn, ticket_id=tid, action=Action.ACKNOWLEDGE, actor=INSURER, scope=ALL,
            now=NOW, settings=loop_settings,
        )  # fmt: skip
    assert _status(conn, tid) == "open"


@pytest.mark.usefixtures("loop_registry")
def test_sensor_ticket_proposes_close_and_a_person_confirms_after_stable_time(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    tid = _open_ticket(conn, loop_settings)

    def confirm(at_min: float) -> str:
        return apply_action(
            conn, ticket_id=tid, action=Action.CONFIRM_CLOSE, actor=OFFICER, scope=ALL,
            now=NOW + timedelta(minutes=at_min), settings=loop_settings,
        ).status  # fmt: skip

    def offered(at_min: float) -> list[Action]:  # the console's buttons for the officer then
        proposed = conn.execute(
            "SELECT close_proposed_at FROM tickets WHERE id = %s", (tid,)
        ).fetchone()
        return actions_now(
            "open", Role.OFFICER, close_proposed_at=proposed[0], settings=loop_settings,
            now=NOW + timedelta(minutes=at_min),
        )  # fmt: skip

    with pytest.raises(TransitionNotAllowedError, match="no close was proposed"):
        confirm(5)
    assert offered(5) == [Action.ACKNOWLEDGE, Action.RECTIFY]  # no button that is refused
    insert_finding(conn, key="alarm:1:cleared", kind="alarm_cleared", notify=False)
    process_findings(conn, now=NOW + timedelta(minutes=10), settings=loop_settings)
    with pytest.raises(TransitionNotAllowedError, match="can be confirmed from"):
        confirm(20)  # back in range only 10 minutes; 30 needed
    assert Action.CONFIRM_CLOSE not in offered(20)
    assert offered(41) == [Action.ACKNOWLEDGE, Action.RECTIFY, Action.CONFIRM_CLOSE]
    assert confirm(41) == "closed"
    assert events(conn, tid)[-1][:2] == ("close_confirmed", "officer-user")


@pytest.mark.usefixtures("loop_registry")
def test_manual_ticket_and_reopen_blocked_by_a_newer_open_ticket(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    tid, opened = create_manual_ticket(
        conn, site_id="school-001", rule="bin_uncovered", subject="back door", tier=2,
        note="seen at lunch", actor=REGULATOR, scope=ALL, now=NOW, settings=loop_settings,
    )  # fmt: skip
    assert opened
    row = conn.execute(
        "SELECT source, created_by, status FROM tickets WHERE id = %s", (tid,)
    ).fetchone()
    assert row == ("manual", "regulator-user", "open")
    assert [k for k, _, _ in events(conn, tid)] == ["opened", "manual_entry"]
    with pytest.raises(TicketNotFoundError):
        create_manual_ticket(
            conn, site_id="school-001", rule="x", subject="y", tier=2, note="",
            actor=REGULATOR, scope=SCHOOL2, now=NOW, settings=loop_settings,
        )  # fmt: skip

    apply_action(
        conn, ticket_id=tid, action=Action.CLOSE, actor=REGULATOR, scope=ALL, now=NOW,
        settings=loop_settings, note="lid replaced on the spot",
    )  # fmt: skip
    again, opened2 = create_manual_ticket(
        conn, site_id="school-001", rule="bin_uncovered", subject="back door", tier=2,
        note="again", actor=REGULATOR, scope=ALL, now=NOW, settings=loop_settings,
    )  # fmt: skip
    assert opened2
    assert again != tid
    same, opened3 = create_manual_ticket(
        conn, site_id="school-001", rule="bin_uncovered", subject="back door", tier=2,
        note="still", actor=OFFICER, scope=ALL, now=NOW, settings=loop_settings,
    )  # fmt: skip
    assert (same, opened3) == (again, False)  # a repeat while open is an occurrence
    with pytest.raises(TransitionNotAllowedError, match="another ticket is open"):
        apply_action(
            conn, ticket_id=tid, action=Action.REOPEN, actor=REGULATOR, scope=ALL, now=NOW,
            settings=loop_settings, note="why not",
        )  # fmt: skip
    assert _status(conn, tid) == "closed"


@pytest.mark.parametrize(
    "module",
    [
        "api.services.lifecycle",
        "api.services.evidence",
        "api.services.acklink",
        "api.services.notify.sms",
    ],
)
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
