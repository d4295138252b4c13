"""Simulated disinfection cabinets (餐具消毒): one meal's good, short, cool and missed cycles.

A site gets four cabinets and a lunch service. After lunch each cabinet plays one
scenario, sampled every ``interval_s``:

- ``good``: a steam cabinet heats to ~105 °C and holds it 15 minutes (valid);
- ``short``: a steam cabinet reaches ~104 °C but is switched off after 6 minutes;
- ``cool``: an infrared cabinet (needs 120 °C) peaks at ~108 °C for 15 minutes;
- ``missed``: a steam cabinet stays at room temperature (it reports, nobody runs it).

The rules then judge the lunch's window: one ``done`` and three findings (two
``disinfection_failed``, one ``disinfection_missed``), a 餐具消毒不达标 or 餐具未消毒 ticket each.

Two cabinets have a smart plug (:data:`PLUGS`): ``good`` reports its power on the
project's own topic (``…/sensor/<cabinet>/power``), ``short`` as a Zigbee2MQTT plug
(``zigbee2mqtt/<site>-plug-short``, ``{"power": …, "current": …, "voltage": …,
"state": …, "energy": …}``). A plug draws :data:`HEATING_W` while its cabinet heats and
holds, :data:`STANDBY_W` otherwise. A Zigbee2MQTT state carries no time (ingest stamps it
on arrival), so that form is only meaningful published live, not replayed.

Example:
    >>> from datetime import UTC, datetime
    >>> end = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
    >>> peak = max(r.temp_c for r in scenario_readings(Scenario.GOOD, end, seed=1))
    >>> 100 < peak < 110
    True
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bkcommon.messages import PowerReading, SensorReading, encode
from bkcommon.topics import DEFAULT_PREFIX, power_topic, reading_topic, zigbee_topic
from brightkitchen.simulate.fleet import Emission


class Scenario(StrEnum):
    """What a simulated cabinet does after the meal."""

    GOOD = "good"
    SHORT = "short"
    COOL = "cool"
    MISSED = "missed"


# scenario → (cabinet type, plateau °C, minutes at the plateau)
_PLAN: dict[Scenario, tuple[str, float, float]] = {
    Scenario.GOOD: ("steam", 105.0, 15.0),
    Scenario.SHORT: ("steam", 104.0, 6.0),
    Scenario.COOL: ("infrared", 108.0, 15.0),
    Scenario.MISSED: ("steam", 0.0, 0.0),
}

ROOM_C = 24.0
START_AFTER_MEAL = timedelta(minutes=10)
HEAT_S = 8 * 60.0
COOL_S = 12 * 60.0
SPAN = timedelta(minutes=50)
HEATING_W = 1800.0
STANDBY_W = 3.0
MAINS_V = 225.0
PLUGS: dict[Scenario, str] = {Scenario.GOOD: "contract", Scenario.SHORT: "zigbee"}
"""Cabinets with a smart plug and the form their plug reports in."""


def cabinet_id(site_id: str, scenario: Scenario) -> str:
    """Sensor id of the site's cabinet playing ``scenario``."""
    return f"{site_id}-cab-{scenario.value}"


def plug_name(site_id: str, scenario: Scenario) -> str:
    """Zigbee2MQTT friendly name of the plug of the site's cabinet playing ``scenario``."""
    return f"{site_id}-plug-{scenario.value}"


def cabinet_name(scenario: Scenario) -> str:
    """The cabinet's name as a kitchen would write it (消毒柜 1 … 4, in :class:`Scenario`'s
    order): tickets and alerts quote it, so it carries no test scenario's word."""
    return f"消毒柜 {list(Scenario).index(scenario) + 1}"


def cabinet_entries(site_id: str, *, plugs: bool = True) -> list[dict[str, Any]]:
    """Site-file sensor entries of the four cabinets (with :data:`PLUGS` unless ``plugs``
    is False)."""
    out = []
    for sc in Scenario:
        cabinet: dict[str, Any] = {"type": _PLAN[sc][0]}
        form = PLUGS.get(sc) if plugs else None
        if form == "contract":
            cabinet["plug"] = {}
        elif form == "zigbee":
            cabinet["plug"] = {"zigbee_name": plug_name(site_id, sc)}
        out.append(
            {
                "id": cabinet_id(site_id, sc),
                "name": cabinet_name(sc),
                "profile": "disinfection",
                "cabinet": cabinet,
            }
        )
    return out


def lunch_schedule(meal_end_utc: datetime, zone: str) -> dict[str, Any]:
    """A site-file meal schedule whose lunch ends at ``meal_end_utc`` (local times in ``zone``),
    served every day."""
    end = meal_end_utc.astimezone(ZoneInfo(zone))
    start = (end - timedelta(hours=1)).time()
    return {
        "timezone": zone,
        "services": [
            {
                "meal": "lunch",
                "start": f"{start:%H:%M}",
                "end": f"{end.time().replace(second=0, microsecond=0):%H:%M}",
                "weekdays": [1, 2, 3, 4, 5, 6, 7],
            }
        ],
    }


def _temp(sc: Scenario, t_s: float, rng: random.Random) -> float:
    """Temperature ``t_s`` seconds after the cycle's start (room temperature before)."""
    _type, plateau, hold_min = _PLAN[sc]
    noise = rng.gauss(0, 0.3)
    if sc is Scenario.MISSED or t_s < 0:
        return round(ROOM_C + noise, 2)
    hold_s = hold_min * 60
    if t_s < HEAT_S:
        return round(ROOM_C + (plateau - ROOM_C) * t_s / HEAT_S + noise, 2)
    if t_s < HEAT_S + hold_s:
        return round(plateau + noise, 2)
    gone = t_s - HEAT_S - hold_s
    return round(max(ROOM_C, plateau - (plateau - ROOM_C) * gone / COOL_S) + noise, 2)


def scenario_readings(
    sc: Scenario, meal_end: datetime, *, interval_s: float = 30.0, seed: int = 42
) -> list[SensorReading]:
    """Readings of one cabinet from the meal's end for 50 minutes."""
    rng = random.Random(f"{seed}:{sc.value}")
    start = meal_end + START_AFTER_MEAL
    out = []
    n = int(SPAN.total_seconds() // interval_s) + 1
    for i in range(n):
        ts = meal_end + timedelta(seconds=i * interval_s)
        out.append(
            SensorReading(ts=ts, seq=i + 1, temp_c=_temp(sc, (ts - start).total_seconds(), rng))
        )
    return out


def _heating(sc: Scenario, t_s: float) -> bool:
    """Whether the cabinet is switched on ``t_s`` seconds after its cycle's start."""
    _type, _plateau, hold_min = _PLAN[sc]
    return sc is not Scenario.MISSED and 0 <= t_s < HEAT_S + hold_min * 60


def scenario_power(
    sc: Scenario, meal_end: datetime, *, interval_s: float = 30.0, seed: int = 42
) -> list[PowerReading]:
    """The cabinet's plug samples from the meal's end for 50 minutes (a few watts idle,
    :data:`HEATING_W` while heating and holding), at the times of its temperature readings.

    Example:
        >>> from datetime import UTC, datetime
        >>> end = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
        >>> on = [p for p in scenario_power(Scenario.SHORT, end) if p.power_w > 100]
        >>> (on[-1].ts - on[0].ts).total_seconds() / 60
        13.5
    """
    rng = random.Random(f"{seed}:{sc.value}:plug")
    start = meal_end + START_AFTER_MEAL
    out = []
    energy = 12.0
    n = int(SPAN.total_seconds() // interval_s) + 1
    for i in range(n):
        ts = meal_end + timedelta(seconds=i * interval_s)
        on = _heating(sc, (ts - start).total_seconds())
        watts = round((HEATING_W if on else STANDBY_W) * (1 + rng.gauss(0, 0.01)), 1)
        energy += watts * interval_s / 3.6e6
        out.append(
            PowerReading(
                ts=ts,
                seq=i + 1,
                power_w=max(0.0, watts),
                current_a=round(max(0.0, watts) / MAINS_V, 3),
                voltage_v=MAINS_V,
                energy_kwh=round(energy, 4),
                switch_on=True,
            )
        )
    return out


def zigbee_plug_payload(p: PowerReading) -> bytes:
    """A plug sample as a Zigbee2MQTT smart plug publishes its state (no time in it)."""
    return json.dumps(
        {
            "power": p.power_w,
            "current": p.current_a,
            "voltage": p.voltage_v,
            "energy": p.energy_kwh,
            "state": "ON" if p.switch_on else "OFF",
            "linkquality": 120,
        }
    ).encode()


def cabinet_emissions(
    site_id: str,
    meal_end: datetime,
    *,
    prefix: str = DEFAULT_PREFIX,
    interval_s: float = 30.0,
    seed: int = 42,
    plugs: tuple[str, ...] = ("contract",),
    zigbee_base: str = "zigbee2mqtt",
) -> list[Emission]:
    """Every cabinet's MQTT messages for one meal, in time order: its temperature readings
    and the samples of the plugs whose form (:data:`PLUGS`) is in ``plugs`` (a replayed
    meal leaves out ``zigbee``: its states would be stamped on arrival)."""
    out = []
    for sc in Scenario:
        sid = cabinet_id(site_id, sc)
        topic = reading_topic(site_id, sid, prefix)
        for r in scenario_readings(sc, meal_end, interval_s=interval_s, seed=seed):
            out.append(Emission(r.ts, topic, encode(r), 1, sid, False))
        form = PLUGS.get(sc)
        if form is None or form not in plugs:
            continue
        for p in scenario_power(sc, meal_end, interval_s=interval_s, seed=seed):
            if form == "zigbee":
                ztopic = zigbee_topic(plug_name(site_id, sc), zigbee_base)
                out.append(Emission(p.ts, ztopic, zigbee_plug_payload(p), 1, sid, False))
            else:
                ptopic = power_topic(site_id, sid, prefix)
                out.append(Emission(p.ts, ptopic, encode(p), 1, sid, False))
    out.sort(key=lambda e: e.sim_ts)
    return out


def fixed_zone_at(now: datetime, local_hour: int) -> str:
    """An ``Etc/GMT±N`` zone in which ``now`` falls in ``local_hour`` (demo and tests: a meal
    schedule that has just closed whatever the time of day)."""
    n = local_hour - now.hour
    if n > 14:
        n -= 24
    if n < -12:
        n += 24
    return f"Etc/GMT{-n:+d}" if n else "Etc/GMT"


def with_cabinets(site_data: dict[str, Any], meal_end: datetime) -> dict[str, Any]:
    """Add the four cabinets and a lunch ending at ``meal_end`` (13:xx local) to the first
    site of a site-file dict (returned; the input is not changed)."""
    data = {**site_data, "sites": [dict(s) for s in site_data["sites"]]}
    site = data["sites"][0]
    # The demo plays one lunch's cycles and nothing after, so its cabinets fall silent
    # after the replay: a day without a reading is an offline cabinet here, not ten minutes
    # (the demo would otherwise open four 传感器离线 tickets that mean nothing).
    cabinets = [
        {**e, "rules": {**e.get("rules", {}), "offline_after_s": 86400}}
        for e in cabinet_entries(str(site["id"]))
    ]
    site["sensors"] = [*site.get("sensors", []), *cabinets]
    site["meals"] = lunch_schedule(meal_end, fixed_zone_at(meal_end, 13))
    return data


def publish_cabinets(url: str, emissions: list[Emission], timeout_s: float = 30.0) -> int:
    """Publish ``emissions`` at QoS 1 and wait until the broker has them all; return the count."""
    from brightkitchen.simulate.publisher import connect

    client = connect(url, client_id="")
    try:
        info = None
        for e in emissions:
            info = client.publish(e.topic, e.payload, qos=1)
        if info is not None:
            info.wait_for_publish(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(emissions)
