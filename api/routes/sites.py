"""Sites (canteens)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ConnDep
from api.queries.sites import list_sites
from api.schemas import SitesPublic

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("", response_model=SitesPublic)
def read_sites(conn: ConnDep, region_id: str | None = None) -> SitesPublic:
    """List every canteen with its open and overdue tickets and its uncleared alarms."""
    return list_sites(conn=conn, region_id=region_id)
