"""Data passed between the ingest pipeline and the rule engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bkcommon.profiles import Profile, RuleParams


@dataclass(frozen=True, slots=True)
class NewReading:
    """A reading that was just inserted (not a redelivered duplicate); drives the rules."""

    sensor_id: str
    ts: datetime
    temp_c: float
    door_open: bool | None
    battery_pct: float | None


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What ingest knows of a registered sensor: its site, profile and effective rule params."""

    sensor_id: str
    site_id: str
    profile: Profile
    params: RuleParams
    zigbee_name: str | None = None
