"""The risk score of a site: current value, components and history (docs/risk-score.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from api.auth.scope import Principal, Role
from api.deps import ConnDep, ScopeDep, not_found, require_role
from api.services.risk import (
    RiskScore,
    RiskSettings,
    SiteRiskPublic,
    compute,
    site_risk,
    store,
    store_current,
)
from bkcommon.timeutil import utcnow

router = APIRouter(tags=["risk"])


def get_risk_settings(request: Request) -> RiskSettings:
    """Risk settings of the app (``app.state.risk_settings``), else from ``BK_RISK_*``."""
    found = getattr(request.app.state, "risk_settings", None)
    if isinstance(found, RiskSettings):
        return found
    settings = RiskSettings()
    request.app.state.risk_settings = settings
    return settings


RiskSettingsDep = Annotated[RiskSettings, Depends(get_risk_settings)]


@router.get("/sites/{site_id}/risk", response_model=SiteRiskPublic, responses=not_found("site"))
def get_site_risk(
    conn: ConnDep, scope: ScopeDep, risk: RiskSettingsDep, site_id: str
) -> SiteRiskPublic:
    """The site's risk score now (0 good .. 100 bad), its components and its stored history."""
    found = site_risk(conn=conn, site_id=site_id, scope=scope, now=utcnow(), settings=risk)
    if found is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} not found")
    return found


@router.post("/risk/compute", response_model=list[RiskScore])
def post_compute(
    conn: ConnDep,
    user: Annotated[Principal, Depends(require_role(Role.ADMIN))],
    scope: ScopeDep,
    risk: RiskSettingsDep,
) -> list[RiskScore]:
    """Compute and store every site's score now (the daily job does this on its own); it
    is also each site's score now on the overview."""
    scores = compute(conn=conn, now=utcnow(), scope=scope, settings=risk)
    with conn.transaction():
        store(conn, scores)
        store_current(conn, scores)
    return scores
