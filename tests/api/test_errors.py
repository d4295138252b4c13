"""The API's refusals are BrightKitchenErrors, answered once by the app with their status."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.users import AuthError, UserError
from api.services.acklink import AckLinkError
from api.services.evidence import (
    EvidenceError,
    TooLargeError,
    TooManyPixelsError,
    UnsupportedMediaError,
)
from api.services.inspections import ConflictError, NotFoundError, UnprocessableError
from api.services.lifecycle import (
    LifecycleError,
    MissingInputError,
    RoleNotAllowedError,
    TicketNotFoundError,
    TransitionNotAllowedError,
)
from api.services.reviews import ReviewError, ReviewNotFoundError
from api.services.tickets import process_findings
from api.services.triage import set_triage_mode
from api.settings import ApiSettings
from bkcommon.errors import BrightKitchenError, RequestError
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.conftest import T0, insert_finding
from tests.api.loop_support import loop_client, loop_registry, loop_settings, png_bytes, tid, who

__all__ = ["loop_client", "loop_registry", "loop_settings", "tid", "who"]

H = dict[str, dict[str, str]]

# (class, HTTP status, the builtin a caller may still catch it as)
REFUSALS: list[tuple[type[RequestError], int, type[Exception]]] = [
    (LifecycleError, 400, Exception),
    (TicketNotFoundError, 404, Exception),
    (TransitionNotAllowedError, 409, Exception),
    (RoleNotAllowedError, 403, Exception),
    (MissingInputError, 422, Exception),
    (EvidenceError, 422, ValueError),
    (UnsupportedMediaError, 415, ValueError),
    (TooLargeError, 413, ValueError),
    (TooManyPixelsError, 422, UnsupportedMediaError),
    (ReviewError, 409, Exception),
    (ReviewNotFoundError, 404, Exception),
    (NotFoundError, 404, LookupError),
    (ConflictError, 409, Exception),
    (UnprocessableError, 422, Exception),
    (AckLinkError, 403, ValueError),
    (UserError, 422, ValueError),
]
_IDS = [cls.__name__ for cls, _, _ in REFUSALS]


@pytest.mark.parametrize(("cls", "status", "builtin"), REFUSALS, ids=_IDS)
def test_each_refusal_is_in_the_error_tree(
    cls: type[RequestError], status: int, builtin: type[Exception]
) -> None:
    err = cls("why not")
    assert isinstance(err, BrightKitchenError)
    assert isinstance(err, RequestError)
    assert isinstance(err, builtin)  # an older ``except ValueError`` / ``LookupError`` still works
    assert err.status_code == status
    assert str(err) == "why not"


def test_a_refused_sign_in_is_ours_but_never_answered_with_its_reason() -> None:
    err = AuthError("wrong password for wang")
    assert isinstance(err, BrightKitchenError)
    assert not isinstance(err, RequestError)  # the login route answers a generic 401
    assert err.reason == "wrong password for wang"


@pytest.fixture
def probed(db_url: str, loop_settings: ApiSettings) -> Iterator[tuple[FastAPI, TestClient]]:
    """The real app (its pool on the test database) plus one route that raises on demand;
    a server fault comes back as the 500 a caller sees, not as an exception."""
    app = create_app(loop_settings, common=CommonSettings(database_url=db_url))
    raised: dict[str, Exception] = {}

    def probe() -> None:
        raise raised["next"]

    app.add_api_route("/probe", probe, methods=["GET"])
    app.state.raised = raised
    with TestClient(app, raise_server_exceptions=False) as c:
        yield app, c


@pytest.mark.parametrize(("cls", "status", "builtin"), REFUSALS, ids=_IDS)
def test_the_app_answers_each_refusal_with_its_status_and_message(
    probed: tuple[FastAPI, TestClient],
    cls: type[RequestError],
    status: int,
    builtin: type[Exception],
) -> None:
    app, c = probed
    app.state.raised["next"] = cls(f"{cls.__name__}: 拒绝 refused")
    r = c.get("/probe")
    assert r.status_code == status
    assert r.json() == {"detail": f"{cls.__name__}: 拒绝 refused"}
    assert r.headers["content-type"] == "application/json"


def test_routes_answer_refusals_as_before(
    loop_client: TestClient, who: H, tid: int, conn: psycopg.Connection[Any]
) -> None:
    """One refusal per route family that used to map its own errors; same status, same body."""
    c = loop_client
    admin, officer = who["admin"], who["officer"]

    def answer(r: Any) -> tuple[int, Any]:
        return r.status_code, r.json()

    base = f"/api/v1/tickets/{tid}"
    assert c.post(f"{base}/acknowledge", headers=officer).status_code == 200
    assert answer(c.post(f"{base}/acknowledge", headers=officer)) == (
        409,
        {"detail": "cannot acknowledge a ticket that is acknowledged; "
                   "allowed from acknowledged: rectify, close, confirm_close"},
    )  # fmt: skip
    assert answer(c.post(f"{base}/close", headers=officer, json={"note": "n"})) == (
        403,
        {"detail": "role officer may not close; allowed roles: admin, regulator"},
    )
    assert answer(c.post("/api/v1/tickets/999999/acknowledge", headers=officer)) == (
        404,
        {"detail": "ticket 999999 not found"},
    )
    assert answer(c.post(f"{base}/rectify", headers=officer, data={"note": "done"})) == (
        422,
        {"detail": "a rectification needs at least one photo of the fix"},
    )
    gif = {"file": ("x.gif", b"GIF89a....", "application/octet-stream")}  # the bytes refuse
    assert answer(c.post(f"{base}/evidence", headers=officer, files=gif)) == (
        415,
        {"detail": "only JPEG and PNG images are accepted"},
    )
    assert answer(c.post("/api/v1/reviews/999999/confirm", headers=admin)) == (
        404,
        {"detail": "review 999999 not found"},
    )
    assert answer(c.post("/api/v1/inspections/999999/sign", headers=admin, json={})) == (
        404,
        {"detail": "inspection 999999 not found"},
    )
    assert answer(c.get("/api/v1/tickets/999999/policy", headers=admin)) == (
        404,
        {"detail": "ticket 999999 not found"},
    )
    user = {"username": "wang", "password": "long enough", "role": "regulator", "region_id": "d1"}
    assert answer(c.post("/api/v1/users", headers=admin, json=user)) == (
        422,
        {"detail": "username 'wang' is taken"},
    )
    assert c.post("/api/v1/ack/not.a-token").status_code == 403  # an HTML page, as before


def test_service_refusals_pass_through_routes_with_the_same_answer(
    loop_client: TestClient, who: H, tid: int, conn: psycopg.Connection[Any]
) -> None:
    """Refusals the services raise and the routes used to map by hand: same status, same body,
    and nothing stored by the refused request."""
    c = loop_client
    admin, officer, stranger = who["admin"], who["officer"], who["stranger"]

    def answer(r: Any) -> tuple[int, Any]:
        return r.status_code, r.json()

    # A real photo for an unknown ticket, or one outside the caller's sites: 404, same body.
    png = {"file": ("p.png", png_bytes(), "image/png")}
    assert answer(c.post("/api/v1/tickets/999999/evidence", headers=officer, files=png)) == (
        404,
        {"detail": "ticket 999999 not found"},
    )
    assert answer(c.post(f"/api/v1/tickets/{tid}/evidence", headers=stranger, files=png)) == (
        404,
        {"detail": f"ticket {tid} not found"},
    )
    rectify = c.post(
        "/api/v1/tickets/999999/rectify", headers=officer, data={"note": "done"}, files=png
    )
    assert answer(rectify) == (404, {"detail": "ticket 999999 not found"})
    assert conn.execute("SELECT count(*) FROM ticket_evidence").fetchone() == (0,)

    # A policy number that is taken: 409.
    policy = {
        "site_id": "school-001",
        "insurer": "PICC",
        "policy_no": "PICC-2026-001",
        "cover_cny": "5000000.00",
        "premium_cny": "3200.00",
        "starts_on": "2026-01-01",
        "ends_on": "2026-12-31",
    }
    assert c.post("/api/v1/policies", headers=admin, json=policy).status_code == 201
    again = {**policy, "site_id": "school-002", "starts_on": "2027-01-01", "ends_on": "2027-12-31"}
    assert answer(c.post("/api/v1/policies", headers=admin, json=again)) == (
        409,
        {"detail": "policy number PICC-2026-001 already exists"},
    )
    assert conn.execute("SELECT count(*) FROM policies").fetchone() == (1,)

    # Inspections that do not fit their template or their earlier inspection: 422.
    template = {
        "name": "日常检查",
        "kind": "routine",
        "items": [{"code": "c1", "text_zh": "冷藏柜温度记录完整"}],
    }
    tpl = c.post("/api/v1/checklist-templates", headers=admin, json=template)
    assert tpl.status_code == 201, tpl.text
    tpl_id = tpl.json()["id"]
    base = {
        "site_id": "school-001",
        "kind": "routine",
        "template_id": tpl_id,
        "inspectors": ["张三"],
        "started_at": T0.isoformat(),
        "items": [{"code": "c1", "result": "fail"}],
    }
    unknown_tpl = {**base, "template_id": 999999}
    assert answer(c.post("/api/v1/inspections", headers=admin, json=unknown_tpl)) == (
        422,
        {"detail": "checklist template 999999 does not exist"},
    )
    stray = {**base, "items": [{"code": "zz", "result": "pass"}]}
    assert answer(c.post("/api/v1/inspections", headers=admin, json=stray)) == (
        422,
        {"detail": f"item 'zz' is not in template {tpl_id}"},
    )
    first = c.post("/api/v1/inspections", headers=admin, json=base)
    assert first.status_code == 201, first.text
    elsewhere = {**base, "site_id": "school-002", "follow_up_of": first.json()["id"]}
    assert answer(c.post("/api/v1/inspections", headers=admin, json=elsewhere)) == (
        422,
        {"detail": "a follow-up inspection must be of the same site"},
    )
    assert conn.execute("SELECT site_id FROM inspections").fetchall() == [("school-001",)]


def test_a_stored_snapshot_that_is_no_image_is_left_out_of_the_export(
    probed: tuple[FastAPI, TestClient],
    who: H,
    conn: psycopg.Connection[Any],
    loop_settings: ApiSettings,
) -> None:
    """The VOC export checks bytes an edge box sent: a broken capture is left out (no 415)."""
    _, c = probed
    set_triage_mode(conn, mode="review", rule="no_mask", camera_id=None)
    blob = b"MZ not a jpeg at all"
    sha = hashlib.sha256(blob).hexdigest()
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        (sha, blob),
    )
    conn.execute(
        """INSERT INTO violations (event_id, site_id, box_id, camera_id, rule, started_at,
                                   confidence, model_version, evidence_sha256)
           VALUES ('evt-broken', 'school-001', 'box-1', 'cam-1', 'no_mask', %s, 0.8, 'v1', %s)""",
        (T0, sha),
    )
    payload = {"event_id": "evt-broken", "camera_id": "cam-1", "evidence_sha256": sha}
    insert_finding(
        conn, key="violation:evt-broken", kind="violation", subject="cam-1", rule="no_mask",
        payload=payload, notify=False,
    )  # fmt: skip
    process_findings(conn, now=utcnow(), settings=loop_settings)
    row = conn.execute("SELECT id FROM capture_reviews WHERE event_id = 'evt-broken'").fetchone()
    assert row is not None
    dismissed = c.post(
        f"/api/v1/reviews/{row[0]}/dismiss", headers=who["officer"], json={"reason": "glare"}
    )
    assert dismissed.status_code == 200, dismissed.text
    window = {
        "from": (utcnow() - timedelta(hours=1)).isoformat(),
        "to": (utcnow() + timedelta(hours=1)).isoformat(),
    }
    r = c.get("/api/v1/reviews/export.zip", params=window, headers=who["officer"])
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = zf.namelist()
    assert not any("evt-broken" in n for n in names)
