"""The regulator console: static pages under ``/console/``, its CSV export and two small reads.

The pages are plain HTML, CSS and ES modules shipped in this package (no CDN, no external
fonts: the console runs on an intranet). Every data request goes to ``/api/v1`` with the
session cookie; the few reads the REST API lacks live here, scoped like every query.
Every answer of this router carries a ``Content-Security-Policy`` of ``default-src 'self'``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.auth.scope import SiteScope
from api.console import events, ticket_notice
from api.console.ledger_export import write_tickets_xlsx
from api.console.wall import WallPublic, wall_data
from api.deps import ConnDep, CurrentUser, ScopeDep
from api.input_types import IsoDateTime
from api.queries.sites import list_sites
from api.queries.tickets import list_tickets
from api.routes.complaints import Inspector, RegionPath, own_region_or_404
from api.routes.downloads import spooled_download
from api.schemas import TicketPublic, TicketSource, TicketStatus
from api.services.labels import (
    DEFAULT_ADVICE,
    FORMER_RULE_LABELS,
    INCIDENT_KIND_LABELS,
    INSPECTION_ADVICE,
    INSPECTION_RULE_PREFIX,
    INSPECTION_RULE_WORDS,
    PROFILE_LABELS,
    RULE_ADVICE,
    RULE_LABELS,
    SOURCE_LABELS,
    TIER_LABELS,
)
from api.services.publication import PublicationPublic, effective_for_region
from api.services.risk import LATEST_SQL
from api.services.spreadsheet import XLSX_MEDIA_TYPE, defuse
from bkcommon.localtime import local_today, region_zone_name
from bkcommon.timeutil import utcnow

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

_NOT_PAGES = frozenset({"static", "api", "export"})
"""First path segments that never fall back to the page (a missing asset is a 404)."""

EXPORT_PAGE = 500
EXPORT_MAX_ROWS = 100_000

CSV_COLUMNS = (
    "ticket_no",
    "site_id",
    "site_name",
    "rule",
    "subject",
    "tier",
    "status",
    "title",
    "opened_at",
    "due_at",
    "acknowledged_at",
    "closed_at",
    "escalation_level",
    "occurrences",
    "overdue",
)


class ConsoleRoute(APIRoute):
    """A route whose every answer (errors included) carries the console's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler to add CSP, nosniff, referrer and framing headers."""
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except HTTPException as exc:
                headers = {**(exc.headers or {}), **SECURITY_HEADERS}
                raise HTTPException(exc.status_code, exc.detail, headers) from exc
            response.headers.update(SECURITY_HEADERS)
            return response

        return handler


router = APIRouter(prefix="/console", tags=["console"], route_class=ConsoleRoute)
router.include_router(events.router, prefix="/api")  # live updates; starts the hub
router.include_router(ticket_notice.router, prefix="/api")  # the printed notice's people


class SiteRiskBrief(BaseModel):
    """The latest stored risk score of a site (the daily job stores them)."""

    score: float = Field(ge=0, le=100)
    computed_at: datetime


class ConsoleSummary(BaseModel):
    """What the overview needs beyond ``/api/v1/sites``: region names and latest risk scores."""

    regions: dict[str, str]
    risk: dict[str, SiteRiskBrief]


class ConsoleConfig(BaseModel):
    """What every page needs once: the region's time zone and the human labels of codes."""

    time_zone: str
    rules: dict[str, tuple[str, str]]
    former_rules: dict[str, tuple[tuple[str, str], ...]]
    inspection_rule: tuple[str, tuple[str, str]] = Field(
        description="Prefix of a checklist item's own rule and its (zh, en) words with {code}."
    )
    profiles: dict[str, tuple[str, str]]
    tiers: dict[str, tuple[str, str]]
    sources: dict[str, tuple[str, str]]
    advice: dict[str, tuple[str, str]] = Field(description="(zh, en) of what to do, by rule.")
    advice_inspection: tuple[str, str]
    advice_default: tuple[str, str]
    incident_kinds: dict[str, tuple[str, str]]


def console_config() -> ConsoleConfig:
    """The region's time zone (``BK_TIME_ZONE``, default Asia/Shanghai) and (zh, en) labels."""
    return ConsoleConfig(
        time_zone=console_time_zone(),
        rules=RULE_LABELS,
        former_rules=FORMER_RULE_LABELS,
        inspection_rule=(INSPECTION_RULE_PREFIX, INSPECTION_RULE_WORDS),
        profiles=PROFILE_LABELS,
        tiers={str(k): v for k, v in TIER_LABELS.items()},
        sources=SOURCE_LABELS,
        advice=RULE_ADVICE,
        advice_inspection=INSPECTION_ADVICE,
        advice_default=DEFAULT_ADVICE,
        incident_kinds=INCIDENT_KIND_LABELS,
    )


def console_time_zone() -> str:
    """The region's IANA time zone (``BK_TIME_ZONE``, see bkcommon.localtime)."""
    return region_zone_name()


class OverviewSite(BaseModel):
    """One canteen of the overview: what is wrong there now and its latest stored risk."""

    id: str
    region_id: str
    name: str
    address: str
    open_tickets: int
    overdue_tickets: int
    active_alarms: int
    risk: float | None


class ConsoleOverview(BaseModel):
    """Every canteen in scope, region names: all the overview and wall screen draw."""

    data: list[OverviewSite]
    regions: dict[str, str]


def console_overview(*, conn: ConnDep, scope: SiteScope) -> ConsoleOverview:
    """Counts per canteen by three grouped scans (not a sub-query per canteen), one round trip.

    Open and overdue tickets, active alarms and the risk score now of each site in scope
    (``risk_current``, refreshed by the risk-score job); the same definitions as
    ``/api/v1/sites`` and ``/console/api/summary``.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""WITH t AS (
                    SELECT site_id, count(*) AS open_n,
                           count(*) FILTER (WHERE due_at < now()) AS overdue_n
                    FROM tickets WHERE status <> 'closed' AND {scope.clause("site_id")}
                    GROUP BY site_id),
                a AS (
                    SELECT site_id, count(*) AS n FROM alarms
                    WHERE status <> 'cleared' AND {scope.clause("site_id")} GROUP BY site_id),
                r AS ({LATEST_SQL.format(scope=scope.clause("s.id"))})
                SELECT s.id, s.region_id, s.name, s.address, rg.name AS region_name,
                       coalesce(t.open_n, 0) AS open_tickets,
                       coalesce(t.overdue_n, 0) AS overdue_tickets,
                       coalesce(a.n, 0) AS active_alarms, r.score AS risk
                FROM sites s JOIN regions rg ON rg.id = s.region_id
                LEFT JOIN t ON t.site_id = s.id LEFT JOIN a ON a.site_id = s.id
                LEFT JOIN r ON r.site_id = s.id
                WHERE {scope.clause("s.id")} ORDER BY s.id""",
            scope.params(),
        ).fetchall()
    return ConsoleOverview(
        data=[OverviewSite.model_validate(r) for r in rows],
        regions={str(r["region_id"]): str(r["region_name"]) for r in rows},
    )


class SensorBrief(BaseModel):
    """A sensor of a site with its effective rule parameters (limits).

    ``last_reading_at`` is the newest reading's own time; ``last_received_at`` when the
    newest reading arrived (what the offline rule judges).
    """

    id: str
    name: str
    profile: str
    active: bool
    last_reading_at: datetime | None
    last_received_at: datetime | None
    params: dict[str, Any]


def console_summary(*, conn: ConnDep, scope: SiteScope) -> ConsoleSummary:
    """Region names of the sites in scope, and each site's risk score now (``LATEST_SQL``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        regions = cur.execute(
            f"""SELECT DISTINCT r.id, r.name FROM regions r JOIN sites s ON s.region_id = r.id
                WHERE {scope.clause("s.id")}""",
            scope.params(),
        ).fetchall()
        risk = cur.execute(LATEST_SQL.format(scope=scope.clause("s.id")), scope.params()).fetchall()
    return ConsoleSummary(
        regions={str(r["id"]): str(r["name"]) for r in regions},
        risk={
            str(r["site_id"]): SiteRiskBrief(score=r["score"], computed_at=r["computed_at"])
            for r in risk
            if r["score"] is not None  # no score yet
        },
    )


def site_sensors(*, conn: ConnDep, scope: SiteScope, site_id: str) -> list[SensorBrief] | None:
    """The sensors of one site in scope (None when the site is absent or out of scope)."""
    params = {"site": site_id, **scope.params()}
    with conn.cursor(row_factory=dict_row) as cur:
        site = cur.execute(
            f"SELECT 1 FROM sites s WHERE s.id = %(site)s AND {scope.clause('s.id')}", params
        ).fetchone()
        if site is None:
            return None
        rows = cur.execute(
            f"""SELECT id, name, profile, active, last_reading_at, last_received_at, params
                FROM sensors
                WHERE site_id = %(site)s AND {scope.clause("site_id")} ORDER BY id""",
            params,
        ).fetchall()
    return [SensorBrief.model_validate(r) for r in rows]


class CameraBrief(BaseModel):
    """A camera of a site: its box's last report and the latest evidence it produced.

    ``state`` is ``online`` or ``offline`` from the box's own report (``unknown`` before
    the first one), ``frozen`` when an open ``camera_blurred`` alarm says the picture
    is covered or stuck, ``offline`` too when a ``camera_offline`` alarm is active.
    """

    id: str
    name: str
    box_id: str
    state: str
    status_at: datetime | None
    last_violation_at: datetime | None
    last_evidence_sha256: str | None


def site_cameras(*, conn: ConnDep, scope: SiteScope, site_id: str) -> list[CameraBrief] | None:
    """The cameras of one site in scope (None when the site is absent or out of scope)."""
    params = {"site": site_id, **scope.params()}
    with conn.cursor(row_factory=dict_row) as cur:
        site = cur.execute(
            f"SELECT 1 FROM sites s WHERE s.id = %(site)s AND {scope.clause('s.id')}", params
        ).fetchone()
        if site is None:
            return None
        rows = cur.execute(
            f"""SELECT c.id, c.name, c.box_id, b.online, b.status_at,
                       (SELECT array_agg(DISTINCT a.rule) FROM alarms a
                         WHERE a.camera_id = c.id AND a.status <> 'cleared') AS open_rules,
                       v.started_at AS last_violation_at, v.evidence_sha256
                FROM cameras c JOIN edge_boxes b ON b.id = c.box_id
                LEFT JOIN LATERAL (
                    SELECT started_at, evidence_sha256 FROM violations
                    WHERE camera_id = c.id ORDER BY started_at DESC LIMIT 1) v ON true
                WHERE c.site_id = %(site)s AND {scope.clause("c.site_id")} ORDER BY c.id""",
            params,
        ).fetchall()
    return [
        CameraBrief(
            id=r["id"],
            name=r["name"],
            box_id=r["box_id"],
            state=camera_state(r["online"], r["open_rules"] or []),
            status_at=r["status_at"],
            last_violation_at=r["last_violation_at"],
            last_evidence_sha256=r["evidence_sha256"],
        )
        for r in rows
    ]


def camera_state(box_online: bool | None, open_rules: list[str]) -> str:
    """``offline`` / ``frozen`` / ``online`` / ``unknown`` from the box and open alarms.

    Example:
        >>> camera_state(True, ["camera_blurred"])
        'frozen'
    """
    if box_online is False or "camera_offline" in open_rules:
        return "offline"
    if "camera_blurred" in open_rules:
        return "frozen"
    return "unknown" if box_online is None else "online"


def matching_tickets(
    *,
    conn: ConnDep,
    scope: SiteScope,
    site_id: str | None,
    status: TicketStatus | None,
    rule: str | None,
    tier: int | None,
    overdue: bool,
    max_rows: int = EXPORT_MAX_ROWS,
    opened_from: IsoDateTime | None = None,
    source: TicketSource | None = None,
) -> Iterator[TicketPublic]:
    """Every ticket of the filters (through the API's own query, page by page), newest first;
    ``overdue`` filters in SQL like the API's ``overdue=true``."""
    offset = 0
    yielded = 0
    while yielded < max_rows:
        page = list_tickets(
            conn=conn,
            scope=scope,
            site_id=site_id,
            status=status,
            rule=rule,
            tier=tier,
            limit=EXPORT_PAGE,
            offset=offset,
            opened_from=opened_from,
            source=source,
            overdue=True if overdue else None,
        )
        for ticket in page.data:
            yield ticket
            yielded += 1
            if yielded >= max_rows:
                return
        if len(page.data) < EXPORT_PAGE:
            return
        offset += EXPORT_PAGE


def csv_cell(value: object) -> str:
    """A CSV cell; text starting like a spreadsheet formula is quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(defuse(str(value)))


def write_tickets_csv(
    out: IO[bytes], tickets: Iterator[TicketPublic], site_names: dict[str, str]
) -> None:
    """The rectification ledger as CSV into ``out``: a BOM (spreadsheet programs then read
    UTF-8 Chinese right), the header row, a row per ticket as it is read."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        text.write("\ufeff")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for t in tickets:
            row = t.model_dump()
            row["site_name"] = site_names.get(t.site_id, "")
            row["status"] = t.status.value
            writer.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
        text.flush()
    finally:
        text.detach()  # ``out`` stays open for the download


_NO_STORE = {"Cache-Control": "no-store"}


def _ledger_tickets(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str | None = None,
    status: TicketStatus | None = None,
    rule: str | None = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    overdue: bool = False,
    opened_from: IsoDateTime | None = None,
    source: TicketSource | None = None,
) -> Iterator[TicketPublic]:
    """The tickets of the ledger's filter (the query of both exports), read as written."""
    return matching_tickets(
        conn=conn,
        scope=scope,
        site_id=site_id or None,
        status=status,
        rule=rule or None,
        tier=tier,
        overdue=overdue,
        opened_from=opened_from,
        source=source,
    )


LedgerTickets = Annotated[Iterator[TicketPublic], Depends(_ledger_tickets)]


@router.get("/export/tickets.csv", include_in_schema=False)
def export_tickets(conn: ConnDep, scope: ScopeDep, tickets: LedgerTickets) -> StreamingResponse:
    """The rectification ledger (整改台账) of the current filter as CSV, only your sites
    (written to a spooled file, then streamed: up to 100,000 tickets)."""
    names = {s.id: s.name for s in list_sites(conn=conn, scope=scope).data}
    logger.info("ticket ledger exported as CSV")
    return spooled_download(
        lambda out: write_tickets_csv(out, tickets, names),
        filename="tickets.csv",
        media_type="text/csv; charset=utf-8",
        headers=_NO_STORE,
    )


@router.get("/export/tickets.xlsx", include_in_schema=False)
def export_tickets_xlsx(
    conn: ConnDep,
    scope: ScopeDep,
    tickets: LedgerTickets,
    lang: Literal["zh-CN", "en"] = "zh-CN",
) -> StreamingResponse:
    """The ledger of the current filter as XLSX: words, local times, only your sites."""
    names = {s.id: s.name for s in list_sites(conn=conn, scope=scope).data}
    logger.info("ticket ledger exported as XLSX")
    stamp = local_today().strftime("%Y%m%d")
    return spooled_download(
        lambda out: write_tickets_xlsx(
            out, tickets, names, lang=lang, time_zone=console_time_zone()
        ),
        filename=f"ledger-{stamp}.xlsx",
        media_type=XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="ledger-{stamp}.xlsx"; '
            f"filename*=UTF-8''%E6%95%B4%E6%94%B9%E5%8F%B0%E8%B4%A6-{stamp}.xlsx",
            **_NO_STORE,
        },
    )


@router.get("/api/wall", response_model=WallPublic, include_in_schema=False)
def read_wall(
    conn: ConnDep, scope: ScopeDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> WallPublic:
    """The wall screen's counts and tickets per day by kind over the last ``days`` days."""
    return wall_data(conn=conn, scope=scope, now=utcnow(), days=days, tz=console_time_zone())


@router.get("/api/overview", response_model=ConsoleOverview, include_in_schema=False)
def read_overview(conn: ConnDep, scope: ScopeDep) -> ConsoleOverview:
    """Every canteen of yours with its counts and risk, in one query (overview, wall)."""
    return console_overview(conn=conn, scope=scope)


@router.get("/api/summary", response_model=ConsoleSummary, include_in_schema=False)
def read_summary(conn: ConnDep, scope: ScopeDep) -> ConsoleSummary:
    """Region names and latest risk scores of your sites (the overview table)."""
    return console_summary(conn=conn, scope=scope)


@router.get("/api/config", response_model=ConsoleConfig, include_in_schema=False)
def read_config(_user: CurrentUser) -> ConsoleConfig:
    """The time zone and labels every page uses (signed-in users only)."""
    return console_config()


@router.get(
    "/api/sites/{site_id}/sensors", response_model=list[SensorBrief], include_in_schema=False
)
def read_site_sensors(conn: ConnDep, scope: ScopeDep, site_id: str) -> list[SensorBrief]:
    """The sensors of one of your sites (the site page draws their last 24 h)."""
    found = site_sensors(conn=conn, scope=scope, site_id=site_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} not found")
    return found


class CameraName(BaseModel):
    """A camera's name and the site it watches: what the capture review calls it."""

    id: str
    name: str
    site_id: str


@router.get("/api/cameras", response_model=list[CameraName], include_in_schema=False)
def read_camera_names(conn: ConnDep, scope: ScopeDep) -> list[CameraName]:
    """Every camera of your sites by name (one read, however many canteens: the capture
    review names the cameras of its queue and of its false-alarm rates)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT c.id, c.name, c.site_id FROM cameras c
                WHERE {scope.clause("c.site_id")} ORDER BY c.site_id, c.id""",
            scope.params(),
        ).fetchall()
    return [CameraName.model_validate(r) for r in rows]


@router.get(
    "/api/sites/{site_id}/cameras", response_model=list[CameraBrief], include_in_schema=False
)
def read_site_cameras(conn: ConnDep, scope: ScopeDep, site_id: str) -> list[CameraBrief]:
    """The cameras of one of your sites with state and latest evidence (site and kitchen pages)."""
    found = site_cameras(conn=conn, scope=scope, site_id=site_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} not found")
    return found


@router.get(
    "/api/publication/{region_id}",
    response_model=PublicationPublic | None,
    include_in_schema=False,
)
def read_publication_setting(
    region_id: RegionPath, conn: ConnDep, user: Inspector
) -> PublicationPublic | None:
    """The publication setting that applies to a region of yours, null where none does (the
    REST read answers that with 404, which the browser would log as an error on the page)."""
    own_region_or_404(conn, user, region_id)
    return effective_for_region(conn, region_id)


@router.get("", include_in_schema=False)
def console_root() -> RedirectResponse:
    """``/console`` → ``/console/``."""
    return RedirectResponse("/console/", status_code=308)


def static_file(name: str, folder: Path = STATIC_DIR) -> Path | None:
    """The file ``<folder>/<name>`` of this package, never anything outside it."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = folder / name
    if path.suffix not in _MEDIA_TYPES or not path.is_file():
        return None
    return path


@router.get("/static/vendor/{name}", include_in_schema=False)
def console_vendor(name: str) -> FileResponse:
    """A vendored library file (static/vendor/, see its README for source and version)."""
    path = static_file(name, VENDOR_DIR)
    if path is None:
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(
        path, media_type=_MEDIA_TYPES[path.suffix], headers={"Cache-Control": "max-age=86400"}
    )


@router.get("/static/{name}", include_in_schema=False)
def console_static(name: str) -> FileResponse:
    """A script, style sheet or image of the console."""
    path = static_file(name)
    if path is None:
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(
        path, media_type=_MEDIA_TYPES[path.suffix], headers={"Cache-Control": "no-cache"}
    )


@router.get("/", include_in_schema=False)
@router.get("/{page:path}", include_in_schema=False)
def console_page(page: str = "") -> FileResponse:
    """The console's one HTML page; the script shows the view the path names."""
    if page.split("/", 1)[0] in _NOT_PAGES:
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type=_MEDIA_TYPES[".html"],
        headers={"Cache-Control": "no-cache"},
    )
