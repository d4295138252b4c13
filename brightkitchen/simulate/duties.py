"""The officer's daily duties (日管控) played through the HTTP API, for the demo and for load.

A canteen's day of duties is people with a phone: the officer answers the daily checklist
before its deadline, takes the staff's morning health check (晨检: anyone with a symptom is
off duty that day) and records the food samples of each meal (留样). ``plan_duties`` makes
a seeded plan of such days for many sites (some checks never done, some staff sick, some
meals without samples); ``play_duties`` records it through the same routes and checks as
the console, so the API's deadline worker turns every check not done into a
``daily_check_missed`` ticket and the escalation ladder takes it from there. Nothing is
written to the database directly.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from bkcommon.errors import BrightKitchenError
from bkcommon.localtime import local_date, region_zone

Call = Callable[[str, str, "dict[str, Any] | None"], tuple[int, Any]]
"""``call(method, path, json_body)`` → (HTTP status, decoded JSON answer)."""

STAFF = ("张师傅", "李阿姨", "王师傅", "赵师傅", "陈阿姨", "刘师傅", "周阿姨", "吴师傅")
"""Kitchen staff names the simulator uses (synthetic)."""

DISHES = {
    "breakfast": ("小米粥", "鸡蛋", "馒头"),
    "lunch": ("青菜", "红烧鸡块", "米饭", "番茄蛋汤"),
    "dinner": ("面条", "炒豆芽"),
}
"""Dishes sampled per meal (each ≥ 125 g, the operating code's minimum)."""

MEAL_TIMES = {"breakfast": time(7, 40), "lunch": time(12, 30), "dinner": time(18, 10)}
"""When a meal's samples are put in the sample fridge (China time) unless a plan says."""

SYMPTOMS = ("hand_wound", "diarrhoea", "sore_throat", "fever")


@dataclass(frozen=True, slots=True)
class StaffCheck:
    """One staff member's morning check."""

    name: str
    temperature_c: float
    symptoms: tuple[str, ...] = ()

    @property
    def off_duty(self) -> bool:
        """A symptom (or a temperature ≥ 37.3 °C) keeps the person off duty that day."""
        return bool(self.symptoms) or self.temperature_c >= 37.3


@dataclass(frozen=True, slots=True)
class SiteDay:
    """What one site's people record on one (China) day."""

    site_id: str
    day: date
    check_done: bool
    staff: tuple[StaffCheck, ...]
    sampled: dict[str, datetime] = field(default_factory=dict)  # meal → stored at
    unsampled: tuple[str, ...] = ()  # meals served without a sample
    sample_day: date | None = None
    """The date the meals are served on by the site's meal schedule, which the samples are
    recorded under (default ``day``; differs where the schedule's zone is not the region's)."""

    @property
    def meal_day(self) -> date:
        """The date the day's samples are recorded under."""
        return self.sample_day or self.day

    @property
    def off_duty(self) -> tuple[str, ...]:
        """Names of the staff off duty that day."""
        return tuple(s.name for s in self.staff if s.off_duty)


def china_day(at: datetime) -> date:
    """The region's calendar day (``BK_TIME_ZONE``) of an aware instant."""
    return local_date(at)


def _meal_at(day: date, meal: str) -> datetime:
    return datetime.combine(day, MEAL_TIMES[meal], region_zone())


def plan_duties(
    site_ids: Sequence[str],
    days: Sequence[date],
    *,
    now: datetime,
    seed: int = 42,
    miss_rate: float = 0.1,
    sick_rate: float = 0.05,
    unsampled_rate: float = 0.05,
    meals: Sequence[str] = ("breakfast", "lunch"),
    staff: int = 4,
) -> list[SiteDay]:
    """A deterministic plan: per site and day whether the check is done, each staff
    member's morning check and the meals sampled. Meals not yet served at ``now`` are left
    out (neither sampled nor missing)."""
    plan: list[SiteDay] = []
    for site in site_ids:
        for day in days:
            rng = random.Random(f"{seed}:{site}:{day.isoformat()}")
            checks = []
            for name in STAFF[: max(1, min(staff, len(STAFF)))]:
                sick = rng.random() < sick_rate
                symptom = (rng.choice(SYMPTOMS),) if sick else ()
                temp = 37.8 if symptom == ("fever",) else round(rng.uniform(36.1, 36.9), 1)
                checks.append(StaffCheck(name, temp, symptom))
            sampled: dict[str, datetime] = {}
            unsampled: list[str] = []
            for meal in meals:
                skipped = rng.random() < unsampled_rate  # drawn first: the plan of a day
                at = _meal_at(day, meal)  # does not depend on the hour it is made
                if at > now:
                    continue
                if skipped:
                    unsampled.append(meal)
                else:
                    sampled[meal] = at
            plan.append(
                SiteDay(
                    site_id=site,
                    day=day,
                    check_done=rng.random() >= miss_rate,
                    staff=tuple(checks),
                    sampled=sampled,
                    unsampled=tuple(unsampled),
                )
            )
    return plan


@dataclass
class Played:
    """What ``play_duties`` recorded (and what it left undone on purpose)."""

    sites: int = 0
    checks: int = 0
    checks_missed: list[tuple[str, date]] = field(default_factory=list)
    staff_checked: int = 0
    off_duty: list[tuple[str, date, str]] = field(default_factory=list)
    meals_sampled: int = 0
    unsampled: list[tuple[str, date, str]] = field(default_factory=list)
    recorded_before: int = 0


def play_duties(
    call: Call,
    plan: Sequence[SiteDay],
    *,
    deadline_local: str = "10:00",
    business_type: str = "school_canteen",
    sample_fridge: Callable[[str], str | None] | None = None,
    set_duties: bool = True,
) -> Played:
    """Record ``plan`` through the API: duties settings, daily checks, 晨检 and 留样.

    Every site keeps its duties from its first planned day (``PUT /sites/{id}/duties``,
    skipped with ``set_duties=False`` for sites set up already). A record the API answers
    409 for (recorded by an earlier run) is counted in ``recorded_before`` and left as it is.
    """
    out = Played()
    first: dict[str, date] = {}
    for d in plan:
        first[d.site_id] = min(first.get(d.site_id, d.day), d.day)
    checklists: dict[str, list[str]] = {}
    for site, since in first.items():
        if set_duties:
            setting = {
                "business_type": business_type,
                "deadline_local": deadline_local,
                "since": since.isoformat(),
            }
            settings = _ok(call("PUT", f"/api/v1/sites/{site}/duties", setting), site)
        else:
            settings = _ok(call("GET", f"/api/v1/sites/{site}/duties", None), site)
        checklists[site] = [str(i["key"]) for i in settings["checklist"]["items"]]
        out.sites += 1
    for d in plan:
        base = f"/api/v1/sites/{d.site_id}"
        if d.check_done:
            answers = [{"item": key, "ok": True} for key in checklists[d.site_id]]
            if _post(call, out, f"{base}/daily-checks", {"check_date": d.day.isoformat(),
                                                          "answers": answers}):  # fmt: skip
                out.checks += 1
        else:
            out.checks_missed.append((d.site_id, d.day))
        staff = [
            {
                "staff_name": s.name,
                "temperature_c": s.temperature_c,
                "symptoms": list(s.symptoms),
            }
            for s in d.staff
        ]
        if _post(call, out, f"{base}/health-checks", {"check_date": d.day.isoformat(),
                                                       "staff": staff}):  # fmt: skip
            out.staff_checked += len(staff)
        out.off_duty.extend((d.site_id, d.day, name) for name in d.off_duty)
        fridge = sample_fridge(d.site_id) if sample_fridge else None
        for meal, stored_at in d.sampled.items():
            samples: dict[str, Any] = {
                "meal_date": d.meal_day.isoformat(),
                "meal": meal,
                "stored_at": stored_at.isoformat(),
                "dishes": [{"dish": dish, "weight_g": 150} for dish in DISHES[meal]],
            }
            if fridge:
                samples["sensor_id"] = fridge
            if _post(call, out, f"{base}/food-samples", samples):
                out.meals_sampled += 1
        out.unsampled.extend((d.site_id, d.meal_day, meal) for meal in d.unsampled)
    return out


class DutyPlayError(BrightKitchenError):
    """The API refused a record of the plan (other than "recorded already")."""


def _ok(answer: tuple[int, Any], what: str) -> Any:
    status, body = answer
    if status >= 400:
        raise DutyPlayError(f"{what}: the API answered {status}: {body}")
    return body


def _post(call: Call, out: Played, path: str, body: dict[str, Any]) -> bool:
    """POST; False (counted) when the API says it is recorded already (409)."""
    status, answer = call("POST", path, body)
    if status == 409:
        out.recorded_before += 1
        return False
    _ok((status, answer), path)
    return True


def http_caller(base: str, token: str, timeout_s: float = 30.0) -> Call:
    """A ``Call`` over HTTP with a bearer token (the demo's admin, or any writer)."""

    def call(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        req = urllib.request.Request(  # noqa: S310 (the operator's own API URL)
            f"{base.rstrip('/')}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
                return int(resp.status), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                return exc.code, json.loads(text)
            except json.JSONDecodeError:
                return exc.code, text

    return call


def days_back(now: datetime, days: int) -> list[date]:
    """The last ``days`` China days up to and including today, oldest first."""
    today = china_day(now)
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
