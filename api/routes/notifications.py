"""The notifications outbox and its delivery log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import ConnDep, ScopeDep
from api.queries.notifications import list_notifications
from api.schemas import NotificationsPublic

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=NotificationsPublic)
def read_notifications(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    ticket_id: int | None = None,
    status: Literal["pending", "sent", "dead"] | None = None,
    channel: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> NotificationsPublic:
    """List notifications newest first, each with every delivery attempt (the delivery log).

    Query values of URL addresses (robot keys, tokens) are masked. Only notifications of
    tickets at your sites are listed.
    """
    return list_notifications(
        conn=conn,
        scope=scope,
        ticket_id=ticket_id,
        status=status,
        channel=channel,
        limit=limit,
        offset=offset,
    )
