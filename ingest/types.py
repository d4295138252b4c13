"""Data passed between the ingest pipeline and the rule engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bkcommon.profiles import Profile, RuleParams


@dataclass(frozen=True, slots=True)
class NewReading:
    """A reading that was just inserted (not a redelivered duplicate); drives the rules.

    ``ts`` is the sensor's own time (excursions are judged on it); ``received_at`` is when
    the ingest worker received it (the offline rule is judged on it: a late or back-dated
    reading still proves the sensor is heard from). None: the batch's write time.
    """

    sensor_id: str
    ts: datetime
    temp_c: float
    door_open: bool | None
    battery_pct: float | None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What ingest knows of a registered sensor: its site, profile and effective rule params."""

    sensor_id: str
    site_id: str
    profile: Profile
    params: RuleParams
    zigbee_name: str | None = None
