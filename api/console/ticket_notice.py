"""What a ticket's printed rectification notice (整改通知书) needs beyond the ticket itself.

A notice states the problem, the evidence, the deadline and who answers for putting it
right. The ticket carries the first three; the people responsible for the canteen (包保:
its food-safety officer, its director, the cadre assigned to it) and where it is live in
the registry. They are served here, to the roles that work with tickets, rather than added
to every ticket read: an insurer reads tickets too and has no need of the staff's names.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from psycopg.rows import dict_row
from pydantic import BaseModel

from api.deps import ConnDep, ScopeDep, TicketUser

router = APIRouter(tags=["console"])

ResponsibleRole = Literal["officer", "director", "regulator"]
TicketId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class ResponsiblePerson(BaseModel):
    """A person the registry names for the ticket's canteen, with the part they play."""

    name: str
    role: ResponsibleRole


class TicketNoticeContext(BaseModel):
    """The canteen's address and people, as the notice prints them."""

    ticket_id: int
    site_id: str
    site_name: str
    site_address: str
    region_name: str | None
    responsible: list[ResponsiblePerson]


_ROLE_ORDER = "CASE sp.role WHEN 'officer' THEN 0 WHEN 'director' THEN 1 ELSE 2 END"


@router.get(
    "/tickets/{ticket_id}/notice",
    response_model=TicketNoticeContext,
    include_in_schema=False,
)
def read_ticket_notice(
    ticket_id: TicketId, conn: ConnDep, scope: ScopeDep, _user: TicketUser
) -> TicketNoticeContext:
    """The canteen and its responsible people for the notice of one ticket in your scope."""
    params = {"id": ticket_id, **scope.params()}
    with conn.cursor(row_factory=dict_row) as cur:
        site = cur.execute(
            f"""SELECT t.site_id, s.name AS site_name, s.address AS site_address,
                       r.name AS region_name
                FROM tickets t JOIN sites s ON s.id = t.site_id
                LEFT JOIN regions r ON r.id = s.region_id
                WHERE t.id = %(id)s AND {scope.clause("t.site_id")}""",
            params,
        ).fetchone()
        if site is None:
            raise HTTPException(status_code=404, detail=f"ticket {ticket_id} not found")
        people = cur.execute(
            f"""SELECT p.name, sp.role FROM site_people sp JOIN people p ON p.id = sp.person_id
                WHERE sp.site_id = %(site)s AND sp.role <> 'insurer'
                ORDER BY {_ROLE_ORDER}, p.name, p.id""",
            {"site": site["site_id"]},
        ).fetchall()
    return TicketNoticeContext(
        ticket_id=ticket_id,
        site_id=site["site_id"],
        site_name=site["site_name"],
        site_address=site["site_address"] or "",
        region_name=site["region_name"],
        responsible=[ResponsiblePerson.model_validate(p) for p in people],
    )
