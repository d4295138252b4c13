"""Rectification tickets (整改单).

The list and the detail are the console's hottest reads, so they are ``async`` routes
that make exactly one hop to the thread pool for their (blocking) queries: FastAPI runs a
plain ``def`` route in the pool and then hops there a second time to validate its
answer, and under 50 concurrent clients each hop is a measurable share of the
request's CPU (docs/benchmarks.md, console section).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.auth.scope import Role
from api.deps import ConnDep, CurrentUser, ScopeDep, SettingsDep, not_found
from api.input_types import IsoDateTime
from api.queries.tickets import get_ticket, list_tickets
from api.schemas import TicketDetailPublic, TicketSource, TicketsPublic, TicketStatus
from api.services.lifecycle import close_confirmable_from

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.get("", response_model=TicketsPublic)
async def read_tickets(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str | None = None,
    status: TicketStatus | None = None,
    rule: str | None = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    source: Annotated[
        TicketSource | None,
        Query(description="Only tickets opened by this kind of finding (alarm, violation, ...)."),
    ] = None,
    opened_from: Annotated[
        IsoDateTime | None, Query(description="Only tickets opened at or after this time.")
    ] = None,
    closed: Annotated[
        bool | None,
        Query(description="false: only tickets not closed (any other status); true: only closed."),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(description="true: only tickets past their deadline, not closed; false: the others."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TicketsPublic:
    """List tickets of your sites, newest opened first.

    Filtered by site, status, rule, tier, source, the time they were opened from, whether
    they are closed (``closed=false``: every ticket still open, whatever its status) and
    whether they are overdue (``overdue=true``, in SQL, so ``count`` and the pages are exact).
    """
    return await run_in_threadpool(
        list_tickets,
        conn=conn,
        scope=scope,
        site_id=site_id,
        status=status,
        rule=rule,
        tier=tier,
        limit=limit,
        offset=offset,
        opened_from=opened_from,
        source=source,
        closed=closed,
        overdue=overdue,
    )


@router.get("/{ticket_id}", response_model=TicketDetailPublic, responses=not_found("ticket"))
async def read_ticket(
    conn: ConnDep, scope: ScopeDep, settings: SettingsDep, user: CurrentUser, ticket_id: int
) -> TicketDetailPublic:
    """One ticket with its timeline (opened, occurrences, alarm cleared...) and findings; an
    insurer sees its own policy of the canteen, not a rival's."""
    insurer = user.insurer if user.role is Role.INSURER else None
    ticket = await run_in_threadpool(
        get_ticket, conn=conn, scope=scope, ticket_id=ticket_id, insurer=insurer
    )
    if ticket is None:
        raise HTTPException(status_code=404, detail=f"ticket {ticket_id} not found")
    if ticket.close_proposed_at is not None and ticket.status != "closed":
        ready = close_confirmable_from(ticket.close_proposed_at, settings)
        ticket = ticket.model_copy(update={"close_confirmable_at": ready})
    return ticket
