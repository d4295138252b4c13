"""Sensors and their readings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import ConnDep, ScopeDep, not_found
from api.input_types import IsoDateTime
from api.queries.readings import sensor_exists, sensor_readings
from api.schemas import ErrorPublic, ReadingsPublic, Resolution
from bkcommon.timeutil import to_utc, utcnow

router = APIRouter(prefix="/sensors", tags=["sensors"])


@router.get(
    "/{sensor_id}/readings",
    response_model=ReadingsPublic,
    responses={
        **not_found("sensor"),
        422: {"model": ErrorPublic, "description": "Bad time range."},
    },
)
def read_readings(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    sensor_id: str,
    from_ts: Annotated[IsoDateTime | None, Query(alias="from")] = None,
    to_ts: Annotated[IsoDateTime | None, Query(alias="to")] = None,
    resolution: Resolution = Resolution.RAW,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000,
) -> ReadingsPublic:
    """Readings of a sensor in ``[from, to)`` (default: the last 24 h), oldest first.

    ``resolution`` is ``raw`` (every reading), ``5m`` or ``1h`` (rollups with average,
    minimum and maximum per bucket). Times are RFC 3339 with an offset. A sensor of a
    site outside yours answers 404.
    """
    end = to_utc(to_ts) if to_ts else utcnow()  # both carry an offset (IsoDateTime)
    start = to_utc(from_ts) if from_ts else end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(status_code=422, detail="'from' must be before 'to'")
    if not sensor_exists(conn=conn, scope=scope, sensor_id=sensor_id):
        raise HTTPException(status_code=404, detail=f"sensor {sensor_id!r} not found")
    return sensor_readings(
        conn=conn,
        scope=scope,
        sensor_id=sensor_id,
        from_ts=start,
        to_ts=end,
        resolution=resolution,
        limit=limit,
    )
