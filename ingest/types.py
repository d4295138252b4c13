"""Data passed between the ingest pipeline and the rule engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from bkcommon.profiles import Profile, RuleParams


class NewReading(NamedTuple):
    """A reading that was just inserted (not a redelivered duplicate); drives the rules.

    A named tuple, not a dataclass: the writer makes one per reading (100,000 a second),
    and ``tuple.__new__(NewReading, values)`` costs a fraction of a frozen dataclass's
    ``__init__``.

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
class NewPower:
    """A smart-plug sample of a disinfection cabinet that was just inserted; drives the
    cycle detector. ``sensor_id`` is the cabinet's sensor (the plug is its channel)."""

    sensor_id: str
    ts: datetime
    power_w: float | None
    current_a: float | None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What ingest knows of a registered sensor: its site, profile and effective rule params."""

    sensor_id: str
    site_id: str
    profile: Profile
    params: RuleParams
    zigbee_name: str | None = None
    has_plug: bool = False
    """A disinfection cabinet with a smart plug (its power / current is accepted)."""
    plug_zigbee_name: str | None = None
