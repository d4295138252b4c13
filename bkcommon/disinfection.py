"""Tableware disinfection (餐具消毒): cabinet types, valid-cycle thresholds and meal schedules.

The default thresholds are those of the national catering operating code
(餐饮服务食品安全操作规范, 2018, 餐用具清洗消毒): steam or boiling at 100 °C or more for
10 minutes or more, infrared cabinets at 120 °C or more for 10 minutes or more, and the
hot-water final rinse of a dishwasher at 85 °C or more for 40 seconds or more. A region
may tighten them (``regions[].disinfection``) and a cabinet may override them
(``sensors[].cabinet``); the most specific value wins.

A cabinet may also have a smart plug (``sensors[].cabinet.plug``) reporting its power or
current. Its cycles are then timed by the plug: a cycle runs while the plug draws at least
``on_w`` watts (or, from a plug that reports only current, ``on_a`` amperes). These
thresholds are not in the operating code; the defaults (:data:`POWER_ON_DEFAULTS`) sit far
above what an idle cabinet draws (a controller and display, an ozone or UV lamp of the
low-temperature compartment: a few to about 60 W) and far below its heating (an infrared
cabinet's smallest tubes draw about 600 W; steam generators and dishwasher boosters
kilowatts). The current threshold defaults to ``on_w`` at China's 220 V mains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from bkcommon.localtime import region_zone_name


class CabinetType(StrEnum):
    """How a cabinet or machine disinfects; each has its own valid cycle."""

    STEAM = "steam"  # 蒸汽
    BOILING = "boiling"  # 煮沸
    INFRARED = "infrared"  # 红外线
    DISHWASHER = "dishwasher"  # 洗碗机 (final rinse)


MAINS_V = 220.0
"""Nominal mains voltage in China (GB/T 156): turns a power threshold into a current one."""

POWER_MAX_W = 50_000.0
"""Largest power a kitchen appliance on one supply draws (a big conveyor dishwasher is
about 40 kW); a plug reporting more is broken or mis-scaled."""

CURRENT_MAX_A = 250.0
"""Largest current of one kitchen supply (three-phase 40 kW is about 65 A per phase)."""

VOLTAGE_MAX_V = 500.0
"""Above any single- or three-phase supply voltage in a kitchen (220 / 380 V)."""

ENERGY_MAX_KWH = 1e9
"""A plug's cumulative energy counter: larger is a broken counter."""

POWER_ON_MIN_W = 5.0
POWER_ON_MIN_A = 0.02
"""Lowest on thresholds a site file may set: below them standby would count as a cycle."""


class CycleSpec(BaseModel):
    """What makes a valid cycle: held at ``min_temp_c`` or above for ``min_hold_s``.

    A cycle starts when the temperature rises to ``start_temp_c`` and ends when it falls
    below it; only readings at or above ``min_temp_c`` count towards the hold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_temp_c: float = Field(ge=40, le=300, description="Lowest temperature that disinfects, °C")
    min_hold_s: int = Field(ge=1, le=7200, description="Continuous time at min_temp_c needed, s")
    start_temp_c: float = Field(
        ge=30, le=300, description="A cycle starts above this and ends below it, °C"
    )
    on_w: float = Field(
        default=200.0,
        ge=POWER_ON_MIN_W,
        le=POWER_MAX_W,
        description="A plug drawing at least this is a cabinet switched on, W",
    )
    on_a: float | None = Field(
        default=None,
        ge=POWER_ON_MIN_A,
        le=CURRENT_MAX_A,
        description="The same for a plug reporting current only, A (default on_w / 220 V)",
    )

    @property
    def on_current_a(self) -> float:
        """The current threshold: ``on_a``, else ``on_w`` at the nominal mains voltage."""
        return self.on_a if self.on_a is not None else round(self.on_w / MAINS_V, 3)

    @model_validator(mode="after")
    def _order(self) -> CycleSpec:
        if self.start_temp_c > self.min_temp_c:
            raise ValueError(
                f"start_temp_c ({self.start_temp_c}) must not be above min_temp_c "
                f"({self.min_temp_c})"
            )
        return self


POWER_ON_DEFAULTS: dict[CabinetType, float] = {
    CabinetType.STEAM: 300.0,
    CabinetType.BOILING: 300.0,
    CabinetType.INFRARED: 200.0,
    CabinetType.DISHWASHER: 500.0,
}
"""Watts from which a cabinet's plug says it is switched on, per type (module docstring):
an infrared cabinet's smallest heating tubes draw about 600 W, a steam generator or a
boiling tank 1.5 kW and more, a dishwasher's wash pump alone 0.5 kW and more, while an
idle cabinet (controller, display, ozone / UV lamp) draws a few to about 60 W."""

CYCLE_DEFAULTS: dict[CabinetType, CycleSpec] = {
    t: CycleSpec(min_temp_c=temp, min_hold_s=hold, start_temp_c=60.0, on_w=POWER_ON_DEFAULTS[t])
    for t, temp, hold in (
        (CabinetType.STEAM, 100.0, 600),
        (CabinetType.BOILING, 100.0, 600),
        (CabinetType.INFRARED, 120.0, 600),
        (CabinetType.DISHWASHER, 85.0, 40),
    )
}
"""The operating code's values per cabinet type (see the module docstring), with the
plug's on threshold of :data:`POWER_ON_DEFAULTS`."""


class CycleOverrides(BaseModel):
    """Partial :class:`CycleSpec` (region or cabinet level); unset fields inherit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_temp_c: float | None = Field(default=None, ge=40, le=300)
    min_hold_s: int | None = Field(default=None, ge=1, le=7200)
    start_temp_c: float | None = Field(default=None, ge=30, le=300)
    on_w: float | None = Field(default=None, ge=POWER_ON_MIN_W, le=POWER_MAX_W)
    on_a: float | None = Field(default=None, ge=POWER_ON_MIN_A, le=CURRENT_MAX_A)


class PlugConfig(BaseModel):
    """A cabinet's smart plug: reports its power / current on the cabinet's own reading
    topics, or as a Zigbee2MQTT device named ``zigbee_name``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zigbee_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="Zigbee2MQTT friendly name"
    )


class CabinetConfig(CycleOverrides):
    """A disinfection sensor's cabinet: its type, any threshold it overrides, its plug."""

    type: CabinetType = CabinetType.STEAM
    plug: PlugConfig | None = Field(
        default=None, description="Smart plug reporting the cabinet's power or current"
    )


def cycle_spec(cabinet_type: CabinetType, *layers: CycleOverrides | None) -> CycleSpec:
    """The effective valid cycle: the type's defaults, then each layer (region, cabinet).

    Example:
        >>> cycle_spec(CabinetType.INFRARED, CycleOverrides(min_hold_s=900)).min_hold_s
        900
    """
    base = CYCLE_DEFAULTS[cabinet_type].model_dump()
    for layer in layers:
        if layer is not None:
            base.update(layer.model_dump(include=set(CycleSpec.model_fields), exclude_none=True))
    return CycleSpec.model_validate(base)


class Meal(StrEnum):
    """Meal services after which tableware must be disinfected."""

    BREAKFAST = "breakfast"
    LUNCH = "lunch"
    DINNER = "dinner"


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _parse_hhmm(value: object) -> time:
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"expected a time as HH:MM (00:00 to 23:59), got {value!r}")
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


class MealService(BaseModel):
    """One meal service: its local start and end, and the ISO weekdays it is served (1 = Monday)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meal: Meal
    start: time
    end: time
    weekdays: tuple[int, ...] = Field(default=(1, 2, 3, 4, 5), min_length=1, max_length=7)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: object) -> time:
        return _parse_hhmm(value)

    @field_serializer("start", "end")
    def _hhmm(self, value: time) -> str:
        return f"{value:%H:%M}"

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for d in value:
            if not 1 <= d <= 7:
                raise ValueError(f"weekday {d} is not 1 (Monday) to 7 (Sunday)")
        if len(set(value)) != len(value):
            raise ValueError("weekdays repeat a day")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _order(self) -> MealService:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:%H:%M}) must be after start ({self.start:%H:%M})")
        return self


class DaysOff(BaseModel):
    """Dates with no meal service (holidays, term breaks), both ends included."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _order(self) -> DaysOff:
        if self.end < self.start:
            raise ValueError(f"to ({self.end}) is before from ({self.start})")
        return self


DEFAULT_WINDOW_MIN = 60
"""Minutes after a meal service ends within which a valid cycle must complete."""


class MealSchedule(BaseModel):
    """A site's meal services, its days off and the disinfection window after each meal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(
        default_factory=region_zone_name,
        description="IANA zone of the local times; default the region's (BK_TIME_ZONE), as "
        "every other local day and deadline (with Asia/Shanghai fixed here, a region in "
        "Urumqi time had its lunch window closed two hours early)",
    )
    window_min: int = Field(default=DEFAULT_WINDOW_MIN, ge=5, le=600)
    services: list[MealService] = Field(min_length=1)
    days_off: list[DaysOff] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _distinct(self) -> MealSchedule:
        seen: set[tuple[Meal, int]] = set()
        for i, sv in enumerate(self.services):
            for day in sv.weekdays:
                if (sv.meal, day) in seen:
                    raise ValueError(
                        f"services.{i}: {sv.meal.value} is already served on weekday {day} "
                        "(a meal may appear several times on different weekdays)"
                    )
                seen.add((sv.meal, day))
        return self


@dataclass(frozen=True, slots=True)
class MealServed:
    """One meal service on one local date: its start and end as aware datetimes (UTC)."""

    day: date
    meal: str
    start: datetime
    end: datetime


def meals_served(
    tz: str,
    services: list[dict[str, Any]],
    days_off: list[dict[str, Any]],
    first: date,
    last: date,
) -> list[MealServed]:
    """Every meal the stored schedule serves from ``first`` to ``last`` (local dates).

    Takes the schedule as ``meal_schedules`` stores it (the JSON form of
    :class:`MealSchedule`), so that every rule driven by meal times (the disinfection
    window after a meal, the food sample of a meal) expands it the same way: days off
    skipped, weekdays honoured, local times placed in the schedule's zone (DST-correct).
    """
    zone = ZoneInfo(tz)
    off = [(date.fromisoformat(d["from"]), date.fromisoformat(d["to"])) for d in days_off]
    out: list[MealServed] = []
    day = first
    while day <= last:
        if not any(a <= day <= b for a, b in off):
            for sv in services:
                if day.isoweekday() not in sv["weekdays"]:
                    continue
                start = datetime.combine(day, time.fromisoformat(sv["start"]), zone)
                end = datetime.combine(day, time.fromisoformat(sv["end"]), zone)
                out.append(
                    MealServed(day, str(sv["meal"]), start.astimezone(UTC), end.astimezone(UTC))
                )
        day += timedelta(days=1)
    return out
