"""Equipment profiles and their default cold-chain rules (DOMAIN.md).

Defaults are defaults: every value can be overridden per sensor in the site file.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Profile(StrEnum):
    """Kinds of monitored equipment."""

    FRIDGE = "fridge"  # 冷藏
    FREEZER = "freezer"  # 冷冻
    PREP_ROOM = "prep_room"  # 专间
    SAMPLE_FRIDGE = "sample_fridge"  # 留样
    HOT_HOLDING = "hot_holding"  # 热保温
    DISINFECTION = "disinfection"  # 消毒柜


class RuleParams(BaseModel):
    """Thresholds and timings of the temperature, offline and battery rules of one sensor.

    ``low_c`` / ``high_c`` are the compliance limits; an excursion alarm is raised
    only after the reading stays beyond a limit for ``delay_s`` (door-open readings
    and the ``door_grace_s`` after a door closes do not count), and clears when the
    reading is back inside the limit by ``hysteresis_c``.

    Example:
        >>> p = RuleParams(high_c=8.0)
        >>> p.delay_s
        300
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    low_c: float | None = Field(default=None, description="Lowest compliant temperature, °C")
    high_c: float | None = Field(default=None, description="Highest compliant temperature, °C")
    delay_s: int = Field(
        default=300, ge=0, le=86400, description="Time beyond a limit before alarming"
    )
    hysteresis_c: float = Field(
        default=0.5, ge=0, le=10, description="Margin inside the limit to clear"
    )
    door_grace_s: int = Field(
        default=120, ge=0, le=3600, description="Ignore time after a door closes"
    )
    offline_after_s: int = Field(
        default=600, ge=30, le=7 * 86400, description="No reading for this long = offline"
    )
    low_battery_pct: float = Field(default=15.0, ge=0, le=100)
    excursion_tier: int = Field(default=2, ge=1, le=3)
    offline_tier: int = Field(default=2, ge=1, le=3)
    battery_tier: int = Field(default=3, ge=1, le=3)

    @model_validator(mode="after")
    def _limits(self) -> RuleParams:
        if self.low_c is None and self.high_c is None:
            raise ValueError("at least one of low_c / high_c must be set")
        if self.low_c is not None and self.high_c is not None and self.low_c >= self.high_c:
            raise ValueError(f"low_c ({self.low_c}) must be below high_c ({self.high_c})")
        return self


PROFILE_DEFAULTS: dict[Profile, RuleParams] = {
    Profile.FRIDGE: RuleParams(low_c=0.0, high_c=8.0),
    Profile.FREEZER: RuleParams(high_c=-12.0, delay_s=900),
    Profile.PREP_ROOM: RuleParams(high_c=25.0, door_grace_s=0),
    Profile.SAMPLE_FRIDGE: RuleParams(low_c=0.0, high_c=8.0, excursion_tier=1),
    Profile.HOT_HOLDING: RuleParams(low_c=60.0, hysteresis_c=1.0, door_grace_s=60),
    Profile.DISINFECTION: RuleParams(low_c=None, high_c=150.0, delay_s=0, excursion_tier=3),
}
"""Default rule parameters per profile; a sensor's ``rules`` overrides any field."""


def params_for(profile: Profile, overrides: dict[str, object] | None = None) -> RuleParams:
    """Return the profile defaults with ``overrides`` applied and re-validated.

    Example:
        >>> params_for(Profile.FRIDGE, {"delay_s": 60}).delay_s
        60
    """
    base = PROFILE_DEFAULTS[profile].model_dump()
    base.update(overrides or {})
    return RuleParams.model_validate(base)
