"""A deterministic, physics-ish model of a fleet of kitchen sensors and its faults.

Each sensor follows its equipment profile (a fridge cycles its compressor between
3 and 5 °C, a freezer defrosts every 6-8 h, doors open and the air warms and
recovers) and a seeded schedule of faults plays out on top: one fridge's
compressor fails (the temperature climbs past its limit and stays), one sensor
goes offline (stops publishing), and one gateway loses its uplink for an hour and
then replays the buffered readings as batches. Readings are stamped with
simulated time that starts in the past (``now - duration``), so accelerated time
catches up with the clock and is never in the future.

Example:
    >>> from datetime import UTC, datetime
    >>> cfg = FleetConfig(sites=1, per_profile=1, duration_s=600, seed=1,
    ...                   start=datetime(2026, 1, 1, tzinfo=UTC))
    >>> sum(e.n_readings for e in Fleet(cfg).emissions()) > 0
    True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bkcommon.messages import MAX_BATCH_READINGS, ReadingBatch, SensorReading, encode
from bkcommon.profiles import Profile
from bkcommon.sitefile import SiteFile, parse_site_file
from bkcommon.timeutil import utcnow
from bkcommon.topics import DEFAULT_PREFIX, reading_topic, readings_topic

SIM_PROFILES: tuple[Profile, ...] = (
    Profile.FRIDGE,
    Profile.FREEZER,
    Profile.PREP_ROOM,
    Profile.SAMPLE_FRIDGE,
    Profile.HOT_HOLDING,
)
"""Profiles the simulator models; every site gets ``per_profile`` sensors of each."""


class Fault(StrEnum):
    """Scheduled faults a scenario can include."""

    COMPRESSOR = "compressor"  # one fridge's compressor fails: temperature climbs and stays
    OFFLINE = "offline"  # one sensor stops publishing
    REPLAY = "replay"  # one gateway (a whole site) is cut off, then replays its buffer


ALL_FAULTS: frozenset[Fault] = frozenset(Fault)


@dataclass(frozen=True, slots=True)
class FaultSchedule:
    """When each fault starts, in simulated seconds after the start of the run."""

    compressor_fail_s: float = 600.0
    offline_s: float = 1200.0
    outage_start_s: float = 900.0
    outage_len_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Size, timing and scenario of a simulated fleet."""

    sites: int = 2
    per_profile: int = 1
    duration_s: float = 6 * 3600.0
    interval_s: float = 60.0
    seed: int = 42
    start: datetime | None = None  # default: now - duration (so time never runs ahead)
    faults: frozenset[Fault] = ALL_FAULTS
    schedule: FaultSchedule = field(default_factory=FaultSchedule)
    batch_every: int = 0  # >0: every sensor publishes batches of this many readings
    prefix: str = DEFAULT_PREFIX
    site_prefix: str = "sim"

    def resolved_start(self) -> datetime:
        """Start of simulated time: the configured start or ``now - duration``."""
        if self.start is not None:
            return self.start
        return utcnow() - timedelta(seconds=self.duration_s)


@dataclass(frozen=True, slots=True)
class Emission:
    """One MQTT message the fleet sends at simulated time ``sim_ts``."""

    sim_ts: datetime
    topic: str
    payload: bytes
    n_readings: int
    sensor_id: str
    batch: bool


@dataclass(frozen=True, slots=True)
class SimSensor:
    """Identity of one simulated sensor."""

    site_id: str
    sensor_id: str
    profile: Profile
    index: int  # position in the fleet, for seeding


def site_id_for(prefix: str, i: int) -> str:
    """Id of the i-th simulated site."""
    return f"{prefix}-site-{i:03d}"


def sensor_id_for(prefix: str, i: int, profile: Profile, k: int) -> str:
    """Id of the k-th sensor of ``profile`` at the i-th simulated site."""
    return f"{prefix}-{i:03d}-{profile.value.replace('_', '')}-{k}"


EQUIPMENT_NAMES: dict[Profile, str] = {
    Profile.FRIDGE: "冷藏柜",
    Profile.FREEZER: "冷冻柜",
    Profile.PREP_ROOM: "专间",
    Profile.SAMPLE_FRIDGE: "留样柜",
    Profile.HOT_HOLDING: "保温柜",
}
"""What a canteen calls each simulated sensor's equipment: the name (冷藏柜 1, 冷藏柜 2 …) is
what tickets, alerts and the console show, so it reads like a real kitchen's."""


def fleet_sensors(sites: int, per_profile: int, site_prefix: str = "sim") -> list[SimSensor]:
    """All sensors of a fleet, in a stable order."""
    out: list[SimSensor] = []
    for i in range(sites):
        for prof in SIM_PROFILES:
            for k in range(per_profile):
                out.append(
                    SimSensor(
                        site_id_for(site_prefix, i),
                        sensor_id_for(site_prefix, i, prof, k),
                        prof,
                        len(out),
                    )
                )
    return out


def generate_site_file(
    n_sites: int,
    per_profile: int,
    *,
    site_prefix: str = "sim",
    webhook_url: str | None = "http://127.0.0.1:8765/hook/officer-1",
) -> SiteFile:
    """Build the site file registering exactly the simulated fleet (sync it before publishing)."""
    channels: list[dict[str, object]] = []
    if webhook_url:
        channels.append({"kind": "webhook", "address": webhook_url})
    region = f"{site_prefix}-region"
    sites: list[dict[str, object]] = []
    by_site: dict[str, list[dict[str, object]]] = {}
    for s in fleet_sensors(n_sites, per_profile, site_prefix):
        mine = by_site.setdefault(s.site_id, [])
        same = sum(1 for e in mine if e["profile"] == s.profile.value)
        entry: dict[str, object] = {
            "id": s.sensor_id,
            "name": f"{EQUIPMENT_NAMES[s.profile]} {same + 1}",
            "profile": s.profile.value,
        }
        mine.append(entry)
    for i in range(n_sites):
        sid = site_id_for(site_prefix, i)
        sites.append(
            {
                "id": sid,
                "name": f"模拟学校食堂 {i + 1} (simulated canteen)",
                "region": region,
                "people": {
                    "officer": [f"{site_prefix}-officer"],
                    "director": [f"{site_prefix}-director"],
                    "regulator": [f"{site_prefix}-cadre"],  # the 包保 cadre
                },
                "sensors": by_site.get(sid, []),
            }
        )
    data = {
        "version": 1,
        "regions": [{"id": region, "name": "模拟区 (simulated district)"}],
        "people": [
            {"id": f"{site_prefix}-officer", "name": "模拟食安员 (officer)", "channels": channels},
            {"id": f"{site_prefix}-director", "name": "模拟食安总监 (director)"},
            {"id": f"{site_prefix}-cadre", "name": "模拟包保干部 (cadre)"},
        ],
        "sites": sites,
    }
    return parse_site_file(data, "<simulated fleet>")


def site_file_yaml(site_file: SiteFile) -> str:
    """Render a site file as YAML (for ``--write-site-file``)."""
    import yaml

    data = site_file.model_dump(mode="json", exclude_defaults=True)
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


class _Physics:
    """Temperature, door and battery state of one sensor, advanced tick by tick."""

    def __init__(self, sensor: SimSensor, seed: int, interval_s: float) -> None:
        self.s = sensor
        self.rng = random.Random(f"{seed}:{sensor.sensor_id}")
        self.interval_s = interval_s
        p = sensor.profile
        base = {
            Profile.FRIDGE: 4.0,
            Profile.SAMPLE_FRIDGE: 3.0,
            Profile.FREEZER: -19.0,
            Profile.PREP_ROOM: 21.0,
            Profile.HOT_HOLDING: 67.0,
        }
        self.setpoint_c = base.get(p, 4.0) + self.rng.uniform(-0.5, 0.5)
        self.cycle_s = self.rng.uniform(1500, 2400)  # compressor / heater cycle
        self.phase = self.rng.uniform(0, 2 * math.pi)
        self.amp_c = {Profile.PREP_ROOM: 0.6, Profile.HOT_HOLDING: 2.0}.get(p, 1.0)
        self.bump_c = 0.0  # door-opening warm bump, decays
        self.door_left_s = 0.0
        self.next_door_s = self.rng.expovariate(1 / 3600.0)
        self.next_defrost_s = self.rng.uniform(1800, 6 * 3600)
        self.defrost_left_s = 0.0
        self.failed_since_s: float | None = None
        self.fail_temp_c = self.setpoint_c
        self.battery_pct = self.rng.uniform(55, 100)
        self.humidity_pct = self.rng.uniform(50, 80)

    def step(self, t_s: float) -> tuple[float, bool, float, float]:
        """Advance to simulated second ``t_s``; return (temp_c, door_open, battery, humidity)."""
        dt = self.interval_s
        p = self.s.profile
        # Door openings (not on freezers' sealed lids less often; hot holding has no door).
        door_open = False
        if p in (Profile.FRIDGE, Profile.SAMPLE_FRIDGE, Profile.FREEZER, Profile.PREP_ROOM):
            if self.door_left_s > 0:
                door_open = True
                self.door_left_s -= dt
                self.bump_c = min(self.bump_c + self.rng.uniform(0.5, 1.0), 3.0)
            elif t_s >= self.next_door_s:
                door_open = True
                self.door_left_s = self.rng.uniform(60, 180) - dt
                self.bump_c = self.rng.uniform(1.5, 2.5)
                self.next_door_s = t_s + self.rng.expovariate(1 / 3600.0) + 300
        if not door_open:
            self.bump_c *= math.exp(-dt / 180.0)  # the air recovers in a few minutes
        # Defrost: a freezer warms a few degrees for ~20 minutes every 6-8 hours.
        defrost_c = 0.0
        if p is Profile.FREEZER:
            if self.defrost_left_s > 0:
                done = 1200 - self.defrost_left_s
                defrost_c = 3.5 * math.sin(math.pi * max(done, 0) / 1200)
                self.defrost_left_s -= dt
            elif t_s >= self.next_defrost_s:
                self.defrost_left_s = 1200.0
                self.next_defrost_s = t_s + self.rng.uniform(6 * 3600, 8 * 3600)
        cycle_c = self.amp_c * math.sin(2 * math.pi * t_s / self.cycle_s + self.phase)
        temp = self.setpoint_c + cycle_c + self.bump_c + defrost_c
        if self.failed_since_s is not None:
            # Compressor dead: the cabinet warms toward the kitchen (25 °C), time constant 30 min.
            gone = t_s - self.failed_since_s
            temp = 25.0 + (self.fail_temp_c - 25.0) * math.exp(-gone / 1800.0)
        temp += self.rng.gauss(0, 0.08)
        self.battery_pct = max(0.0, self.battery_pct - dt * 0.5 / 86400)  # ~0.5 %/day
        self.humidity_pct = min(95.0, max(30.0, self.humidity_pct + self.rng.gauss(0, 0.3)))
        return round(temp, 2), door_open, round(self.battery_pct, 1), round(self.humidity_pct, 1)

    def fail_compressor(self, t_s: float) -> None:
        """Start the compressor failure at simulated second ``t_s``."""
        self.failed_since_s = t_s
        self.fail_temp_c = self.setpoint_c


@dataclass(frozen=True, slots=True)
class FaultTargets:
    """Which sensors and site the scheduled faults hit."""

    compressor_sensor: str | None
    offline_sensor: str | None
    replay_site: str | None


class Fleet:
    """The simulated fleet: yields its MQTT messages in simulated-time order."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.start = config.resolved_start()
        self.sensors = fleet_sensors(config.sites, config.per_profile, config.site_prefix)
        self.targets = self._pick_targets()

    def _pick_targets(self) -> FaultTargets:
        cfg = self.config
        fridges = [s for s in self.sensors if s.profile is Profile.FRIDGE]
        comp = fridges[0].sensor_id if fridges and Fault.COMPRESSOR in cfg.faults else None
        offline = None
        if Fault.OFFLINE in cfg.faults:
            prep = [s for s in self.sensors if s.profile is Profile.SAMPLE_FRIDGE]
            offline = prep[-1].sensor_id if prep else None
        replay = None
        if Fault.REPLAY in cfg.faults and cfg.sites > 0:
            replay = site_id_for(cfg.site_prefix, cfg.sites - 1 if cfg.sites > 1 else 0)
        return FaultTargets(comp, offline, replay)

    def ticks(self) -> int:
        """Number of reading intervals in the run (-1 = endless)."""
        return int(self.config.duration_s // self.config.interval_s) + 1

    def emissions(self, follow: bool = False) -> Iterator[Emission]:
        """Yield every message in simulated-time order; ``follow`` keeps going past the end."""
        cfg = self.config
        sched = cfg.schedule
        phys = {s.sensor_id: _Physics(s, cfg.seed, cfg.interval_s) for s in self.sensors}
        seq = dict.fromkeys(phys, 0)
        buffers: dict[str, list[SensorReading]] = {s.sensor_id: [] for s in self.sensors}
        outage_end = sched.outage_start_s + sched.outage_len_s
        n = 0
        while follow or n < self.ticks():
            t_s = n * cfg.interval_s
            ts = self.start + timedelta(seconds=t_s)
            in_outage = sched.outage_start_s <= t_s < outage_end
            replay_now = (
                not in_outage and sched.outage_start_s < t_s and (t_s - cfg.interval_s < outage_end)
            )
            if replay_now:  # the uplink is back: the gateway sends what it buffered
                for s in self.sensors:
                    if s.site_id == self.targets.replay_site and buffers[s.sensor_id]:
                        yield from self._flush(s, ts, buffers[s.sensor_id])
            for s in self.sensors:
                ph = phys[s.sensor_id]
                if (
                    s.sensor_id == self.targets.compressor_sensor
                    and ph.failed_since_s is None
                    and (t_s >= sched.compressor_fail_s)
                ):
                    ph.fail_compressor(t_s)
                temp, door, batt, hum = ph.step(t_s)
                if s.sensor_id == self.targets.offline_sensor and t_s >= sched.offline_s:
                    continue
                seq[s.sensor_id] += 1
                reading = SensorReading(
                    ts=ts,
                    seq=seq[s.sensor_id],
                    temp_c=temp,
                    door_open=door,
                    battery_pct=batt,
                    humidity_pct=hum if s.profile is not Profile.HOT_HOLDING else None,
                )
                buf = buffers[s.sensor_id]
                if s.site_id == self.targets.replay_site and in_outage:
                    buf.append(reading)  # the gateway keeps it while the uplink is down
                    continue
                if cfg.batch_every > 0:
                    buf.append(reading)
                    if len(buf) >= cfg.batch_every:
                        yield from self._flush(s, ts, buf)
                    continue
                yield Emission(
                    ts,
                    reading_topic(s.site_id, s.sensor_id, cfg.prefix),
                    encode(reading),
                    1,
                    s.sensor_id,
                    False,
                )
            n += 1
        for s in self.sensors:
            if buffers[s.sensor_id]:
                last = buffers[s.sensor_id][-1].ts
                yield from self._flush(s, last, buffers[s.sensor_id])

    def _flush(self, s: SimSensor, ts: datetime, buf: list[SensorReading]) -> Iterator[Emission]:
        topic = readings_topic(s.site_id, s.sensor_id, self.config.prefix)
        for i in range(0, len(buf), MAX_BATCH_READINGS):
            chunk = buf[i : i + MAX_BATCH_READINGS]
            yield Emission(
                ts, topic, encode(ReadingBatch(readings=chunk)), len(chunk), s.sensor_id, True
            )
        buf.clear()
