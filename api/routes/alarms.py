"""Alarms raised by the cold-chain and camera rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import ConnDep, ScopeDep, WriterUser, not_found
from api.queries.alarms import acknowledge_alarm, list_alarms
from api.schemas import AlarmAcknowledge, AlarmPublic, AlarmsPublic, AlarmStatus, ErrorPublic
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/alarms", tags=["alarms"])


@router.get("", response_model=AlarmsPublic)
def read_alarms(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    site_id: str | None = None,
    status: AlarmStatus | None = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlarmsPublic:
    """List alarms, newest raised first, filtered by site, status and rule.

    Each alarm names the rectification ticket it opened or added an occurrence to.
    Only alarms of your sites are listed.
    """
    return list_alarms(
        conn=conn,
        scope=scope,
        site_id=site_id,
        status=status,
        rule=rule,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{alarm_id}/acknowledge",
    response_model=AlarmPublic,
    responses={
        **not_found("alarm"),
        409: {"model": ErrorPublic, "description": "The alarm has already cleared."},
    },
)
def acknowledge(
    conn: ConnDep, user: WriterUser, scope: ScopeDep, alarm_id: int, body: AlarmAcknowledge
) -> AlarmPublic:
    """Acknowledge an active alarm (someone is on it); repeating it changes nothing.

    The signed-in user is recorded and the acknowledgement written to the audit log.
    A cleared alarm cannot be acknowledged. Insurers and devices may not acknowledge.
    """
    alarm, _changed = acknowledge_alarm(
        conn=conn,
        scope=scope,
        alarm_id=alarm_id,
        by=user.person_id or user.username,
        actor=user.username,
        note=body.note,
        now=utcnow(),
    )
    if alarm is None:
        raise HTTPException(status_code=404, detail=f"alarm {alarm_id} not found")
    if alarm.status is AlarmStatus.CLEARED:
        raise HTTPException(status_code=409, detail=f"alarm {alarm_id} has already cleared")
    return alarm
