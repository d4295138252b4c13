"""Sites (canteens)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ConnDep, ScopeDep
from api.queries.sites import list_sites
from api.schemas import SitesPublic

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("", response_model=SitesPublic)
def read_sites(conn: ConnDep, scope: ScopeDep, region_id: str | None = None) -> SitesPublic:
    """List your canteens with their open and overdue tickets and their uncleared alarms."""
    return list_sites(conn=conn, scope=scope, region_id=region_id)
