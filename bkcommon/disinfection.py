"""Tableware disinfection (餐具消毒): cabinet types, valid-cycle thresholds and meal schedules.

The default thresholds are those of the national catering operating code
(餐饮服务食品安全操作规范, 2018, 餐用具清洗消毒): steam or boiling at 100 °C or more for
10 minutes or more, infrared cabinets at 120 °C or more for 10 minutes or more, and the
hot-water final rinse of a dishwasher at 85 °C or more for 40 seconds or more. A region
may tighten them (``regions[].disinfection``) and a cabinet may override them
(``sensors[].cabinet``); the most specific value wins.
"""

from __future__ import annotations

import re
from datetime import date, time
from enum import StrEnum

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)


class CabinetType(StrEnum):
    """How a cabinet or machine disinfects; each has its own valid cycle."""

    STEAM = "steam"  # 蒸汽
    BOILING = "boiling"  # 煮沸
    INFRARED = "infrared"  # 红外线
    DISHWASHER = "dishwasher"  # 洗碗机 (final rinse)


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

    @model_validator(mode="after")
    def _order(self) -> CycleSpec:
        if self.start_temp_c > self.min_temp_c:
            raise ValueError(
                f"start_temp_c ({self.start_temp_c}) must not be above min_temp_c "
                f"({self.min_temp_c})"
            )
        return self


CYCLE_DEFAULTS: dict[CabinetType, CycleSpec] = {
    CabinetType.STEAM: CycleSpec(min_temp_c=100.0, min_hold_s=600, start_temp_c=60.0),
    CabinetType.BOILING: CycleSpec(min_temp_c=100.0, min_hold_s=600, start_temp_c=60.0),
    CabinetType.INFRARED: CycleSpec(min_temp_c=120.0, min_hold_s=600, start_temp_c=60.0),
    CabinetType.DISHWASHER: CycleSpec(min_temp_c=85.0, min_hold_s=40, start_temp_c=60.0),
}
"""The operating code's values per cabinet type (see the module docstring)."""


class CycleOverrides(BaseModel):
    """Partial :class:`CycleSpec` (region or cabinet level); unset fields inherit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_temp_c: float | None = Field(default=None, ge=40, le=300)
    min_hold_s: int | None = Field(default=None, ge=1, le=7200)
    start_temp_c: float | None = Field(default=None, ge=30, le=300)


class CabinetConfig(CycleOverrides):
    """A disinfection sensor's cabinet: its type, and any threshold it overrides."""

    type: CabinetType = CabinetType.STEAM


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

    timezone: str = Field(default="Asia/Shanghai", description="IANA zone of the local times")
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
