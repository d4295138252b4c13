"""Ticket actions: open by hand, acknowledge, rectify (note + photos), verify, reject, reopen.

Every action is one transition of ``api.services.lifecycle`` and writes one timeline entry.
Answers: 404 (no such ticket in your sites), 403 (your role may not), 409 (not from the
ticket's current state; the message says what is allowed), 422 (note or photo missing).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from api.auth.scope import Principal
from api.deps import (
    ConnDep,
    CurrentUser,
    ScopeDep,
    SettingsDep,
    TicketUser,
    WriterUser,
    not_found,
)
from api.routes.evidence import (
    LimitedBodyRoute,
    StoreDep,
    max_upload_bytes,
    read_upload,
    store_photo,
)
from api.schemas import ErrorPublic
from api.schemas_loop import ActionIn, ActionResultPublic, TicketCreate, TicketCreatedPublic
from api.services.lifecycle import (
    Action,
    Actor,
    actions_now,
    apply_action,
    create_manual_ticket,
)
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/tickets", tags=["tickets"], route_class=LimitedBodyRoute)

_ANSWERS: dict[int | str, dict[str, object]] = {
    **not_found("ticket"),
    409: {"model": ErrorPublic, "description": "Not allowed from the ticket's current state."},
    422: {"model": ErrorPublic, "description": "A note or a photo is missing."},
}


def actor_of(user: Principal) -> Actor:
    """The timeline actor of a signed-in user."""
    return Actor(user.username, user.role, user_id=user.user_id, person_id=user.person_id)


@router.post("", response_model=TicketCreatedPublic, status_code=201, responses=_ANSWERS)
def create_ticket(
    body: TicketCreate, conn: ConnDep, scope: ScopeDep, user: WriterUser, settings: SettingsDep
) -> TicketCreatedPublic:
    """Open a ticket by hand (source ``manual``); a repeat while one is open is an occurrence."""
    ticket_id, opened = create_manual_ticket(
        conn,
        site_id=body.site_id,
        rule=body.rule,
        subject=body.subject,
        tier=body.tier,
        note=body.note,
        actor=actor_of(user),
        scope=scope,
        now=utcnow(),
        settings=settings,
    )
    return TicketCreatedPublic(ticket_id=ticket_id, opened=opened)


def _act(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    user: Principal,
    settings: SettingsDep,
    ticket_id: int,
    action: Action,
    note: str,
    evidence: list[str] | None = None,
) -> ActionResultPublic:
    res = apply_action(
        conn,
        ticket_id=ticket_id,
        action=action,
        actor=actor_of(user),
        scope=scope,
        now=utcnow(),
        settings=settings,
        note=note,
        evidence=evidence,
    )
    proposed = conn.execute(
        "SELECT close_proposed_at FROM tickets WHERE id = %s", (res.ticket_id,)
    ).fetchone()
    next_actions = actions_now(
        res.status,
        user.role,
        close_proposed_at=proposed[0] if proposed else None,
        now=utcnow(),
        settings=settings,
    )
    return ActionResultPublic(
        ticket_id=res.ticket_id,
        previous=res.previous,
        status=res.status,
        event_id=res.event_id,
        allowed_actions=[a.value for a in next_actions],
    )


def _simple_action(action: Action, summary: str) -> None:
    """Register ``POST /tickets/{id}/<action>`` taking an optional note."""

    def endpoint(
        *,
        ticket_id: int,
        conn: ConnDep,
        scope: ScopeDep,
        user: TicketUser,  # the lifecycle decides which action each role may take
        settings: SettingsDep,
        body: ActionIn | None = None,
    ) -> ActionResultPublic:
        return _act(
            conn=conn,
            scope=scope,
            user=user,
            settings=settings,
            ticket_id=ticket_id,
            action=action,
            note=body.note if body else "",
        )

    endpoint.__doc__ = summary
    router.add_api_route(
        f"/{{ticket_id}}/{action.value.replace('_', '-')}",
        endpoint,
        methods=["POST"],
        response_model=ActionResultPublic,
        responses=_ANSWERS,
        name=f"ticket_{action.value}",
        summary=summary.split(".", maxsplit=1)[0],
        description=summary,
    )


_simple_action(Action.ACKNOWLEDGE, "Acknowledge the ticket (officer, director, regulator).")
_simple_action(
    Action.VERIFY,
    "Verify the rectification and close the ticket (director, regulator, inspector).",
)
_simple_action(Action.REJECT, "Reject the rectification with a reason; back to the officer.")
_simple_action(Action.REOPEN, "Reopen a closed ticket with a reason; a new deadline starts.")
_simple_action(Action.CLOSE, "Close without rectification, with a reason (regulator, admin).")
_simple_action(
    Action.CONFIRM_CLOSE,
    "Confirm the close the data proposed (sensor back in range for the stable time).",
)


@router.post(
    "/{ticket_id}/rectify",
    response_model=ActionResultPublic,
    responses={
        **_ANSWERS,
        413: {"description": "A photo or the request body is too large."},
        415: {"description": "A photo is not a JPEG or PNG image, or declared as something else."},
    },
)
async def rectify(
    *,
    ticket_id: int,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    settings: SettingsDep,
    store: StoreDep,
    note: Annotated[str, Form(max_length=4000, description="What was done.")] = "",
    evidence: Annotated[
        list[str] | None, Form(description="sha256 of photos uploaded to this ticket before.")
    ] = None,
    photos: Annotated[list[UploadFile] | None, File(description="Photos of the fix.")] = None,
) -> ActionResultPublic:
    """Submit the rectification: a note and at least one photo (uploaded now or before)."""
    shas = list(evidence or [])
    limit = max_upload_bytes(settings)
    for photo in photos or []:
        data = await read_upload(photo, limit)
        stored = await run_in_threadpool(  # decoding the photo: off the event loop
            store_photo,
            conn,
            store,
            ticket_id=ticket_id,
            data=data,
            filename=photo.filename,
            uploaded_by=user.username,
            scope=scope,
        )
        shas.append(stored.sha256)
    if photos and evidence is None:
        shas = list(dict.fromkeys(shas))
    return _act(
        conn=conn,
        scope=scope,
        user=user,
        settings=settings,
        ticket_id=ticket_id,
        action=Action.RECTIFY,
        note=note,
        evidence=shas or None,
    )


@router.get("/{ticket_id}/actions", response_model=list[str], responses=not_found("ticket"))
def ticket_actions(
    ticket_id: int, conn: ConnDep, scope: ScopeDep, user: CurrentUser, settings: SettingsDep
) -> list[str]:
    """The actions you may take on the ticket now (for the console's buttons).

    ``confirm_close`` only once the data has proposed the close and stayed in range for
    ``BK_API_CLOSE_STABLE_MIN``: before that the button would only lead to a refusal."""
    row = conn.execute(
        "SELECT status, close_proposed_at FROM tickets t "
        f"WHERE id = %(id)s AND {scope.clause('t.site_id')}",
        {"id": ticket_id, **scope.params()},
    ).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"ticket {ticket_id} not found")
    now = actions_now(
        str(row[0]), user.role, close_proposed_at=row[1], now=utcnow(), settings=settings
    )
    return [a.value for a in now]
