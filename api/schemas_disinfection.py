"""HTTP models of the disinfection ledger (消毒记录): cycles and judged meal windows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

JudgedBy = Literal["temperature", "power", "power_temperature"]


class Verdict(StrEnum):
    """How a cycle was judged against its cabinet's valid cycle."""

    VALID = "valid"
    TOO_COOL = "too_cool"
    TOO_SHORT = "too_short"


class Outcome(StrEnum):
    """How a meal's disinfection window was judged once it closed."""

    DONE = "done"
    MISSED = "missed"
    FAILED = "failed"


class CyclePublic(BaseModel):
    """One disinfection cycle of one cabinet."""

    id: int
    site_id: str
    site_name: str
    sensor_id: str
    sensor_name: str
    cabinet_type: str | None = Field(description="steam, boiling, infrared or dishwasher.")
    day: date = Field(description="The local date the cycle started (the site's time zone).")
    started_at: datetime
    ended_at: datetime
    duration_s: float
    peak_c: float | None = Field(
        description="Highest temperature; null for a cycle a plug timed without any "
        "temperature reading (the probe was missing)."
    )
    held_s: float = Field(
        description="Longest continuous time at or above min_temp_c; for a cycle judged by "
        "its plug alone, the time the plug drew power."
    )
    verdict: Verdict
    min_temp_c: float = Field(description="The valid cycle the cycle was judged against.")
    min_hold_s: int
    judged_by: JudgedBy = Field(
        default="temperature",
        description="temperature (no plug), power_temperature (timed by the plug, judged by "
        "the temperature in the run), power (the plug alone: no temperature in the run).",
    )
    on_s: float | None = Field(
        default=None, description="How long the cabinet's plug drew power in the cycle, s."
    )
    peak_w: float | None = Field(default=None, description="Highest power the plug drew, W.")


class CyclesPublic(BaseModel):
    """A page of cycles, newest first."""

    data: list[CyclePublic]
    count: int = Field(description="Cycles matching the filters, over all pages.")
    limit: int
    offset: int


class CheckPublic(BaseModel):
    """One cabinet's disinfection window after one meal, as judged when it closed."""

    site_id: str
    sensor_id: str
    sensor_name: str = Field(description="The cabinet's name (its id where it has none).")
    service_date: date
    meal: str
    meal_start: datetime
    meal_end: datetime
    window_end: datetime
    outcome: Outcome
    cycle_id: int | None
    ticket_id: int | None = Field(description="The ticket a missed or failed window opened.")
    ticket_no: str | None = Field(default=None, description="That ticket's number (ZG-…).")


class ChecksPublic(BaseModel):
    """A page of judged windows, newest first."""

    data: list[CheckPublic]
    count: int
    limit: int
    offset: int
