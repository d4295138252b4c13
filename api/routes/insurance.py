"""Insurance (食品安全责任险): policies, incidents and claims, the claim bundle, the risk record."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from api.auth.scope import Principal, Role
from api.deps import ConnDep, CurrentUser, ScopeDep, WriterUser, not_found, require_role
from api.input_types import IsoDateTime
from api.routes.downloads import spooled_download
from api.routes.inspections import StoreDep
from api.routes.risk import RiskSettingsDep
from api.schemas import ErrorPublic
from api.services.claims import ClaimEventPublic, ClaimUpdate, claim_history, update_claim
from api.services.insurance import (
    IncidentCreate,
    IncidentPublic,
    PolicyCreate,
    PolicyPublic,
    create_incident,
    create_policy,
    get_incident,
    list_incidents,
    list_policies,
    policy_in_force,
    ticket_policy,
    write_claim_bundle,
)
from api.services.insurance_risk import (
    RiskRecordPublic,
    RiskRecordsPublic,
    risk_record,
    risk_records,
    write_risk_records,
)
from api.services.risk import RiskSettings
from api.services.spreadsheet import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["insurance"])


def _own(user: Principal) -> str | None:
    """The insurer whose policies an insurer's account reads (None: every policy in scope)."""
    return user.insurer if user.role is Role.INSURER else None


PolicyAdmin = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/policies",
    response_model=PolicyPublic,
    status_code=201,
    responses={
        **not_found("site"),
        409: {"model": ErrorPublic, "description": "The policy number exists."},
    },
)
def post_policy(
    conn: ConnDep, user: PolicyAdmin, scope: ScopeDep, body: PolicyCreate
) -> PolicyPublic:
    """Register a site's liability policy (insurer, number, cover, premium, period)."""
    return create_policy(conn=conn, data=body, scope=scope)


Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/policies", response_model=list[PolicyPublic])
def get_policies(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    user: CurrentUser,
    site_id: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PolicyPublic]:
    """Policies of your sites, newest period first (an insurer: its own policies only), a
    page of ``limit`` from ``offset`` (ask for one more than a page to know of another)."""
    return list_policies(
        conn=conn, scope=scope, site_id=site_id, insurer=_own(user), limit=limit, offset=offset
    )


@router.get(
    "/policies/in-force", response_model=PolicyPublic, responses=not_found("policy in force")
)
def get_policy_in_force(
    conn: ConnDep,
    scope: ScopeDep,
    user: CurrentUser,
    site_id: str,
    at: IsoDateTime | None = None,
) -> PolicyPublic:
    """The site's policy in force at ``at`` (default now; an insurer: only if it is theirs)."""
    found = policy_in_force(
        conn=conn, site_id=site_id, at=at or utcnow(), scope=scope, insurer=_own(user)
    )
    if found is None:
        raise HTTPException(status_code=404, detail=f"no policy of {site_id} in force then")
    return found


@router.get(
    "/tickets/{ticket_id}/policy",
    response_model=PolicyPublic | None,
    responses=not_found("ticket"),
)
def get_ticket_policy(
    conn: ConnDep, scope: ScopeDep, user: CurrentUser, ticket_id: int
) -> PolicyPublic | None:
    """The policy in force when the ticket opened (null when the site was uninsured; an
    insurer: its own policy then, null if it had none)."""
    return ticket_policy(conn=conn, ticket_id=ticket_id, scope=scope, insurer=_own(user))


@router.post(
    "/incidents", response_model=IncidentPublic, status_code=201, responses=not_found("site")
)
def post_incident(
    conn: ConnDep, user: WriterUser, scope: ScopeDep, body: IncidentCreate
) -> IncidentPublic:
    """Record an incident; it links to the policy in force when it occurred."""
    return create_incident(conn=conn, data=body, scope=scope, actor=user.username)


@router.get("/incidents", response_model=list[IncidentPublic])
def get_incidents(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    user: CurrentUser,
    site_id: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[IncidentPublic]:
    """Incidents of your sites, newest first (an insurer: those its policies covered), a page
    of ``limit`` from ``offset`` (ask for one more than a page to know of another)."""
    return list_incidents(
        conn=conn, scope=scope, site_id=site_id, insurer=_own(user), limit=limit, offset=offset
    )


@router.get(
    "/incidents/{incident_id}", response_model=IncidentPublic, responses=not_found("incident")
)
def get_one_incident(
    conn: ConnDep, scope: ScopeDep, user: CurrentUser, incident_id: int
) -> IncidentPublic:
    """One incident (an insurer: one its policy covered)."""
    found = get_incident(conn=conn, incident_id=incident_id, scope=scope, insurer=_own(user))
    if found is None:
        raise HTTPException(status_code=404, detail=f"incident {incident_id} not found")
    return found


@router.post(
    "/incidents/{incident_id}/claim",
    response_model=ClaimEventPublic,
    status_code=201,
    responses={
        **not_found("incident"),
        409: {"model": ErrorPublic, "description": "The step does not follow the claim's state."},
    },
)
def post_claim_step(
    conn: ConnDep, user: WriterUser, scope: ScopeDep, incident_id: IncidentId, body: ClaimUpdate
) -> ClaimEventPublic:
    """Record the next step of the incident's claim: filed → accepted or rejected → paid
    (a rejected claim may be filed again). Paid needs the amount; rejected the reason."""
    return update_claim(
        conn=conn, incident_id=incident_id, data=body, scope=scope, actor=user.username
    )


@router.get(
    "/incidents/{incident_id}/claim",
    response_model=list[ClaimEventPublic],
    responses=not_found("incident"),
)
def get_claim_history(
    conn: ConnDep, scope: ScopeDep, user: CurrentUser, incident_id: IncidentId
) -> list[ClaimEventPublic]:
    """Every recorded step of the incident's claim, oldest first."""
    return claim_history(conn=conn, incident_id=incident_id, scope=scope, insurer=_own(user))


@router.get(
    "/incidents/{incident_id}/bundle.zip",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The claim evidence bundle."},
        **not_found("incident"),
    },
)
def get_bundle(
    conn: ConnDep, scope: ScopeDep, user: CurrentUser, store: StoreDep, incident_id: int
) -> StreamingResponse:
    """One zip for a claim: manifest, tickets with timelines, evidence files, sensor trace ±24 h."""
    return spooled_download(
        lambda out: write_claim_bundle(
            out,
            conn=conn,
            store=store,
            incident_id=incident_id,
            scope=scope,
            now=utcnow(),
            insurer=_own(user),
        ),
        filename=f"incident-{incident_id}.zip",
    )


@router.get("/insurance/risk-record", response_model=RiskRecordPublic, responses=not_found("site"))
def get_risk_record(
    conn: ConnDep, scope: ScopeDep, risk: RiskSettingsDep, user: CurrentUser, site_id: str
) -> RiskRecordPublic:
    """Read-only risk record of a site: open / overdue / repeated tickets, excursion minutes,
    camera and sensor uptime, inspections, incidents, policies and the score history."""
    found = risk_record(
        conn=conn, site_id=site_id, scope=scope, now=utcnow(), settings=risk, insurer=_own(user)
    )
    if found is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} not found")
    return found


@router.get("/insurance/risk-records", response_model=RiskRecordsPublic)
def get_risk_records(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    risk: RiskSettingsDep,
    user: CurrentUser,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RiskRecordsPublic:
    """A page of the risk summaries of the insured canteens you may read (an insurer: those
    it covers), the highest latest stored score first, with ``total``; the counts and score
    are computed now. The lists of one canteen are in ``/insurance/risk-record``."""
    return risk_records(
        conn=conn,
        scope=scope,
        now=utcnow(),
        settings=risk,
        insurer=_own(user),
        limit=limit,
        offset=offset,
    )


Lang = Literal["zh-CN", "en"]
_SHEET: dict[int | str, dict[str, Any]] = {
    200: {"description": "The risk records as a spreadsheet."}
}


def _risk_sheet(
    conn: ConnDep, scope: ScopeDep, risk: RiskSettings, user: Principal, *, fmt: str, lang: Lang
) -> StreamingResponse:
    """The risk records of ``/insurance/risk-records`` as a file of ``fmt``."""
    records = risk_records(conn=conn, scope=scope, now=utcnow(), settings=risk, insurer=_own(user))
    return spooled_download(
        lambda out: write_risk_records(out, records, fmt, lang),
        filename=f"risk-records.{fmt}",
        media_type=CSV_MEDIA_TYPE if fmt == "csv" else XLSX_MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/insurance/risk-records.csv", response_class=StreamingResponse, responses=_SHEET)
def export_risk_records_csv(
    conn: ConnDep, scope: ScopeDep, risk: RiskSettingsDep, user: CurrentUser, lang: Lang = "zh-CN"
) -> StreamingResponse:
    """The risk records as CSV (UTF-8 with a BOM): canteen names, rates in percent, the
    highest score first, headers in ``lang``."""
    return _risk_sheet(conn, scope, risk, user, fmt="csv", lang=lang)


@router.get("/insurance/risk-records.xlsx", response_class=StreamingResponse, responses=_SHEET)
def export_risk_records_xlsx(
    conn: ConnDep, scope: ScopeDep, risk: RiskSettingsDep, user: CurrentUser, lang: Lang = "zh-CN"
) -> StreamingResponse:
    """The risk records as an XLSX workbook, as the CSV."""
    return _risk_sheet(conn, scope, risk, user, fmt="xlsx", lang=lang)
