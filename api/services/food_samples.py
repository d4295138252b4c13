"""Food sample retention (留样): each dish of each meal, at least 125 g, kept at least 48 hours.

The limits are those of the catering operating code (SAMR 2018 No. 12, 8.1: "每个品种留样量
应能满足检验检测需要，且不少于125g", kept refrigerated "不少于48小时") and the school rules.
A smaller sample or a shorter keep is refused with an error naming the field, never
stored and flagged. The sample fridge, when named, must be a monitored sensor of the site
with the ``sample_fridge`` profile, so its temperature record covers the samples.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.auth.scope import SiteScope
from api.input_types import IsoDate, IsoDateTime
from api.services.duties import DutyConflictError, DutyError, require_site
from bkcommon.localtime import local_date

Conn = psycopg.Connection[Any]

MIN_WEIGHT_G = Decimal(125)
MIN_KEEP_H = 48


class DishIn(BaseModel):
    """One dish's sample."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    dish: str = Field(min_length=1, max_length=100)
    weight_g: Decimal = Field(ge=MIN_WEIGHT_G, le=10_000, decimal_places=1)


class MealSamplesIn(BaseModel):
    """The samples of one meal: every dish served, stored at the same time."""

    model_config = ConfigDict(extra="forbid")

    meal_date: IsoDate
    meal: Literal["breakfast", "lunch", "dinner", "other"]
    stored_at: IsoDateTime
    keep_hours: int = Field(default=MIN_KEEP_H, ge=MIN_KEEP_H, le=24 * 30)
    sensor_id: str | None = Field(
        default=None, min_length=1, max_length=100, description="The sample fridge."
    )
    dishes: list[DishIn] = Field(min_length=1, max_length=60)


class SamplePublic(BaseModel):
    """A stored sample."""

    id: int
    site_id: str
    meal_date: date
    meal: str
    dish: str
    weight_g: Decimal
    stored_at: datetime
    keep_until: datetime
    sensor_id: str | None
    recorded_by: str


def record_samples(
    conn: Conn,
    *,
    site_id: str,
    data: MealSamplesIn,
    scope: SiteScope,
    actor: str,
    now: datetime,
) -> list[int]:
    """Store every dish's sample of the meal, all or nothing; return the ids."""
    require_site(conn, scope, site_id)
    if data.stored_at > now + timedelta(minutes=5):
        raise DutyError("stored_at: must not be in the future")
    # samples are taken as the meal is served: a meal date days away from the storing is a
    # typo (or a record for a meal the samples cannot be from); a day either way allows a
    # schedule kept in another zone and a late dinner stored after midnight
    stored_day = local_date(data.stored_at)
    if abs((data.meal_date - stored_day).days) > 1:
        raise DutyError(
            f"meal_date: {data.meal_date} is more than a day from stored_at ({stored_day}): "
            "samples are stored when the meal is served"
        )
    dishes = [d.dish for d in data.dishes]
    for i, name in enumerate(dishes):
        if name in dishes[:i]:
            raise DutyError(f"dishes.{i}.dish: {name!r} is listed twice")
    if data.sensor_id is not None:
        row = conn.execute(
            "SELECT profile FROM sensors WHERE id = %s AND site_id = %s",
            (data.sensor_id, site_id),
        ).fetchone()
        if row is None:
            raise DutyError(f"sensor_id: no sensor {data.sensor_id} at site {site_id}")
        if row[0] != "sample_fridge":
            raise DutyError(f"sensor_id: {data.sensor_id} is a {row[0]}, not a sample fridge")
    keep_until = data.stored_at + timedelta(hours=data.keep_hours)
    ids: list[int] = []
    with conn.transaction():
        for i, d in enumerate(data.dishes):
            row = conn.execute(
                """INSERT INTO food_samples (site_id, meal_date, meal, dish, weight_g,
                       stored_at, keep_until, sensor_id, recorded_by)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (site_id, meal_date, meal, dish) DO NOTHING RETURNING id""",
                (site_id, data.meal_date, data.meal, d.dish, d.weight_g, data.stored_at,
                 keep_until, data.sensor_id, actor),
            ).fetchone()  # fmt: skip
            if row is None:
                raise DutyConflictError(
                    f"dishes.{i}.dish: {d.dish!r} of {data.meal} on {data.meal_date} "
                    "is recorded already"
                )
            ids.append(int(row[0]))
    return ids


def list_samples(
    conn: Conn, *, site_id: str, scope: SiteScope, day: date | None, limit: int
) -> list[SamplePublic]:
    """The site's samples (of one day when given), newest first."""
    require_site(conn, scope, site_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT id, site_id, meal_date, meal, dish, weight_g, stored_at, keep_until,
                      sensor_id, recorded_by
               FROM food_samples
               WHERE site_id = %(site)s AND (%(day)s::date IS NULL OR meal_date = %(day)s)
               ORDER BY meal_date DESC, stored_at DESC, id LIMIT %(limit)s""",
            {"site": site_id, "day": day, "limit": limit},
        ).fetchall()
    return [SamplePublic.model_validate(r) for r in rows]
