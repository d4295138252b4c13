"""Comments on a ticket (``POST /tickets/{id}/comments``): a remark added to its timeline.

Anyone who may see the ticket and write (admin, regulator, inspector, officer, director) may
comment;
insurers and devices are read-only and get 403. A comment changes no state and sends no
notice; it shows in the ticket's timeline as an event of kind ``comment``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import ConnDep, ScopeDep, TicketUser, not_found
from api.routes.ticket_actions import actor_of
from api.schemas import ErrorPublic, TicketEventPublic
from api.services.ticket_comments import add_comment
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/tickets", tags=["tickets"])

COMMENT_MAX_CHARS = 2000


class CommentIn(BaseModel):
    """A comment: 1 to 2000 characters of text (surrounding blanks are dropped)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=COMMENT_MAX_CHARS, description="The remark.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("text is blank")
        return stripped


_ANSWERS: dict[int | str, dict[str, Any]] = {
    **not_found("ticket"),
    422: {"model": ErrorPublic, "description": "The text is missing, blank or too long."},
}


@router.post(
    "/{ticket_id}/comments",
    response_model=TicketEventPublic,
    status_code=201,
    responses=_ANSWERS,
)
def comment_ticket(
    ticket_id: int, body: CommentIn, conn: ConnDep, scope: ScopeDep, user: TicketUser
) -> TicketEventPublic:
    """Add a comment to the ticket's timeline; answers the timeline entry it wrote."""
    now = utcnow()
    actor = actor_of(user)
    event_id = add_comment(
        conn, ticket_id=ticket_id, text=body.text, actor=actor, scope=scope, now=now
    )
    row = conn.execute(
        "SELECT id, at, actor, kind, note, data FROM ticket_events WHERE id = %s", (event_id,)
    ).fetchone()
    assert row is not None  # just written in a committed transaction
    return TicketEventPublic(
        id=int(row[0]), at=row[1], actor=str(row[2]), kind=str(row[3]), note=str(row[4]),
        data=dict(row[5]),
    )  # fmt: skip
