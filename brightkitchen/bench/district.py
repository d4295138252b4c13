"""``brightkitchen bench district``: a district's traffic through the real broker, ingest,
database and API workers on one machine, then a district-wide one-hour outage replayed.

Phase 1 (steady): every canteen has one gateway with five sensors (fridge, freezer,
prep room, sample fridge, hot holding) reading once a simulated minute, and one edge
box that publishes its status every simulated minute and violations (with an inline
evidence JPEG) at a Poisson rate. Simulated time runs ``speed`` times faster than the
clock, so a day of traffic can be compressed; the real rates are printed and stored.
Phase 2 (outage burst): the gateways of a share of the canteens kept the readings of the
hour after phase 1 while their uplink was down and now send them at once, one
``ReadingBatch`` per sensor, as fast as the broker takes them.

Alarm-to-alert latency: probe fridges (delay 0, so the reading that crosses 8 °C raises
the alarm) get one such reading at a time, spread over each phase; the latency is that
reading's publish to the officer's webhook arriving at a local HTTP sink, through the
ingest rule engine, the API's ticket engine and its notification dispatcher.

Lag: the publisher counts readings as it sends them and the worker's metrics count what
it committed; a reading published at ``t`` is stored once the committed count reaches
what had been published by ``t``, which gives lag without clock assumptions.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg

from bkcommon.errors import BrightKitchenError, ConfigError
from bkcommon.messages import EdgeStatus, Evidence, SensorReading, Violation, encode
from bkcommon.sitefile import SiteFile, parse_site_file
from bkcommon.timeutil import utcnow
from bkcommon.topics import reading_topic, status_topic, violation_topic
from brightkitchen.bench.ingest_bench import (
    _server_url,
    _spawn_cli,
    _worker_connected,
    fresh_database,
)
from brightkitchen.bench.measure import (
    Counted,
    Monitor,
    Resources,
    lag_stats,
    latency_stats,
    pids_named,
    scrape,
)
from brightkitchen.demo import (
    Sink,
    free_port,
    http_up,
    mosquitto_path,
    private_mosquitto,
    start_sink,
    stop_process,
    wait_for,
)
from brightkitchen.simulate.fleet import Emission, Fleet, FleetConfig, generate_site_file
from brightkitchen.simulate.publisher import Publisher, connect

VIOLATION_RULES = ("no_chef_hat", "no_mask", "mixed_cutting_board", "no_uniform")


@dataclass(frozen=True, slots=True)
class DistrictOptions:
    """Size, compression and outage of the simulated district."""

    canteens: int = 500
    steady_hours: float = 2.0
    speed: float = 120.0
    interval_s: float = 60.0
    violations_per_canteen_hour: float = 1.0
    status_every_s: float = 60.0
    evidence_kb: int = 30
    outage_s: float = 3600.0
    outage_share: float = 1.0
    probes: int = 20
    seed: int = 7
    mqtt_url: str | None = None
    pg_url: str | None = None
    json_path: str = "var/bench/district.json"
    drain_timeout_s: float = 600.0

    def check(self) -> None:
        """Refuse settings that cannot describe a district, naming the option."""
        if self.canteens < 1:
            raise ConfigError("--canteens must be at least 1")
        if self.steady_hours <= 0 or self.speed <= 0 or self.interval_s <= 0:
            raise ConfigError("--steady-hours, --speed and --interval must be > 0")
        if self.outage_s < self.interval_s:
            raise ConfigError("--outage-s must be at least one reading interval")
        if not 0 < self.outage_share <= 1:
            raise ConfigError("--outage-share must be in (0, 1]")
        if self.probes < 1 or self.violations_per_canteen_hour < 0 or self.evidence_kb < 0:
            raise ConfigError("--probes >= 1, --violations-per-hour >= 0, --evidence-kb >= 0")
        if self.status_every_s <= 0:
            raise ConfigError("--status-every-s must be > 0")


@dataclass
class PhaseResult:
    """What one phase sent, stored and how late."""

    name: str
    real_s: float = 0.0
    messages: int = 0
    readings: int = 0
    violations: int = 0
    statuses: int = 0
    published_readings_per_s: float = 0.0
    stored_readings_per_s: float = 0.0
    drain_s: float = 0.0
    lag_p50_s: float | None = None
    lag_p99_s: float | None = None
    lag_max_s: float | None = None
    backlog_max_readings: int = 0
    worker_lag_gauge_max_s: float = 0.0
    alert_latency: dict[str, Any] = field(default_factory=dict)


@dataclass
class DistrictResult:
    """Everything the district run measured."""

    machine: dict[str, Any] = field(default_factory=dict)
    district: dict[str, Any] = field(default_factory=dict)
    phases: list[PhaseResult] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    database: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the district


def probe_ids(n: int) -> list[str]:
    """Sensor ids of the probe fridges: one per alarm to time, in both phases."""
    return [f"probe-{i:03d}" for i in range(2 * n)]


def district_site_file(opts: DistrictOptions, hook_base: str) -> SiteFile:
    """The fleet's canteens, each with an edge box and a camera, plus the probe canteen."""
    base = generate_site_file(
        opts.canteens, 1, site_prefix="d", webhook_url=f"{hook_base}/hook/district"
    )
    data = base.model_dump(mode="json")
    for site in data["sites"]:
        site["edge_boxes"] = [
            {"id": f"{site['id']}-box", "cameras": [{"id": f"{site['id']}-cam", "url": "rtsp://x"}]}
        ]
    data["people"].append(
        {
            "id": "probe-officer",
            "name": "probe officer",
            "channels": [{"kind": "webhook", "address": f"{hook_base}/hook/probe"}],
        }
    )
    data["sites"].append(
        {
            "id": "probe-site",
            "name": "probe canteen",
            "region": data["regions"][0]["id"],
            "people": {"officer": ["probe-officer"]},
            "sensors": [
                {
                    "id": p,
                    "profile": "fridge",
                    "rules": {"delay_s": 0, "door_grace_s": 0, "offline_after_s": 86400},
                }
                for p in probe_ids(opts.probes)
            ],
        }
    )
    return parse_site_file(data, "<district>")


def _camera_events(
    opts: DistrictOptions, prefix: str, start: datetime, duration_s: float
) -> Iterator[Emission]:
    """Edge-box statuses and violations of every canteen, in simulated-time order."""
    rng = random.Random(opts.seed)
    sites = [f"d-site-{i:03d}" for i in range(opts.canteens)]
    heap: list[tuple[float, int, str, str]] = []
    rate = opts.violations_per_canteen_hour / 3600.0
    for i, site in enumerate(sites):
        heap.append((rng.uniform(0, opts.status_every_s), i, site, "status"))
        if rate > 0:
            heap.append((rng.expovariate(rate), i, site, "violation"))
    heapq.heapify(heap)
    n = 0
    while heap:
        t_s, i, site, kind = heapq.heappop(heap)
        if t_s > duration_s:
            continue
        ts = start + timedelta(seconds=t_s)
        box = f"{site}-box"
        if kind == "status":
            status = EdgeStatus(box_id=box, ts=ts, online=True)
            yield Emission(ts, status_topic(site, box, prefix), encode(status), 0, box, False)
            heapq.heappush(heap, (t_s + opts.status_every_s, i, site, kind))
            continue
        n += 1
        payload = _violation(opts, rng, site, ts, n)
        yield Emission(ts, violation_topic(site, box, prefix), payload, 0, box, False)
        heapq.heappush(heap, (t_s + rng.expovariate(rate), i, site, kind))


def _violation(opts: DistrictOptions, rng: random.Random, site: str, ts: datetime, n: int) -> bytes:
    evidence = None
    if opts.evidence_kb:
        import base64

        jpeg = b"\xff\xd8" + rng.randbytes(opts.evidence_kb * 1024) + b"\xff\xd9"
        evidence = Evidence(jpeg_b64=base64.b64encode(jpeg).decode(), width_px=640, height_px=360)
    v = Violation(
        event_id=f"dist-{opts.seed}-{n:08d}",
        rule=VIOLATION_RULES[n % len(VIOLATION_RULES)],
        camera_id=f"{site}-cam",
        started_at=ts,
        ended_at=ts + timedelta(seconds=5),
        confidence=0.8,
        evidence=evidence,
    )
    return encode(v)


def steady_emissions(opts: DistrictOptions, prefix: str, start: datetime) -> Iterator[Emission]:
    """Phase 1: the fleet's readings and the edge boxes' events, merged in time order."""
    duration = opts.steady_hours * 3600.0
    fleet = Fleet(
        FleetConfig(
            sites=opts.canteens,
            per_profile=1,
            duration_s=duration - opts.interval_s,
            interval_s=opts.interval_s,
            seed=opts.seed,
            start=start,
            faults=frozenset(),
            prefix=prefix,
            site_prefix="d",
        )
    )
    return heapq.merge(
        fleet.emissions(), _camera_events(opts, prefix, start, duration), key=lambda e: e.sim_ts
    )


def outage_emissions(opts: DistrictOptions, prefix: str, start: datetime) -> list[Emission]:
    """Phase 2: one batch per sensor of the canteens whose uplink was down for the outage."""
    n_sites = max(1, round(opts.canteens * opts.outage_share))
    ticks = int(opts.outage_s // opts.interval_s)
    fleet = Fleet(
        FleetConfig(
            sites=n_sites,
            per_profile=1,
            duration_s=(ticks - 1) * opts.interval_s,
            interval_s=opts.interval_s,
            seed=opts.seed + 1,
            start=start,
            faults=frozenset(),
            batch_every=ticks,
            prefix=prefix,
            site_prefix="d",
        )
    )
    return list(fleet.emissions())


# ---------------------------------------------------------------- running


class District:
    """One district run: services up, phase 1, phase 2, numbers out."""

    def __init__(self, opts: DistrictOptions, out: IO[str]) -> None:
        self.opts = opts
        self.out = out
        self.prefix = f"district/{uuid.uuid4().hex[:6]}"
        self.sink = Sink(echo=False)
        self.probes = probe_ids(opts.probes)
        self.result = DistrictResult()

    def say(self, text: str) -> None:
        """Progress line."""
        print(text, file=self.out, flush=True)

    def run(self) -> DistrictResult:
        """Start everything, run both phases, stop everything; return the numbers."""
        opts = self.opts
        opts.check()
        logs = Path(tempfile.mkdtemp(prefix="bk-district-"))
        hook_port = free_port()
        srv = start_sink(hook_port, self.sink)
        site_file = district_site_file(opts, f"http://127.0.0.1:{hook_port}")
        steady_s = opts.steady_hours * 3600.0
        # Simulated time: phase 1, then the outage hour, both in the past so no reading is
        # ever stamped ahead of the clock however fast the simulation runs.
        start = utcnow() - timedelta(seconds=steady_s + opts.outage_s + 120)
        self._describe(site_file, steady_s)
        with contextlib.ExitStack() as stack:
            stack.callback(srv.shutdown)
            mqtt_url = opts.mqtt_url or self._broker(stack, logs)
            db = stack.enter_context(fresh_database(_server_url_of(opts), site_file))
            procs = self._start(stack, db, mqtt_url, logs)
            res = Resources(procs)
            monitor = Monitor(self._metrics_port)
            monitor.db_url = db
            monitor.start()
            stack.callback(monitor.stop)
            self.say("phase 1: steady district traffic")
            steady = self._phase(
                "steady",
                Counted(steady_emissions(opts, self.prefix, start)),
                mqtt_url,
                monitor,
                speed=opts.speed,
                probes=self.probes[: opts.probes],
                expected_real_s=steady_s / opts.speed,
            )
            self.result.phases.append(steady)
            self.say("phase 2: outage burst replayed")
            outage = self._phase(
                "outage burst",
                Counted(outage_emissions(opts, self.prefix, start + timedelta(seconds=steady_s))),
                mqtt_url,
                monitor,
                speed=0.0,
                probes=self.probes[opts.probes :],
                expected_real_s=5.0,
            )
            self.result.phases.append(outage)
            self.result.resources = res.report(monitor.pg_cpu_s())
            self.result.database = _database_stats(db)
            self.result.resources["ingest_final_metrics"] = scrape(self._metrics_port)
        return self.result

    def _describe(self, site_file: SiteFile, steady_s: float) -> None:
        o = self.opts
        sensors = o.canteens * 5
        sim_rate = sensors / o.interval_s
        self.result.machine = {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "date": utcnow().isoformat(timespec="seconds"),
        }
        self.result.district = {
            "canteens": o.canteens,
            "sensors": sensors,
            "edge_boxes": o.canteens,
            "probe_sensors": len(self.probes),
            "reading_interval_s": o.interval_s,
            "steady_simulated_hours": o.steady_hours,
            "speed": o.speed,
            "steady_real_readings_per_s_target": round(sim_rate * o.speed, 1),
            "real_time_equivalent_readings_per_s": round(sim_rate, 2),
            "violations_per_canteen_hour": o.violations_per_canteen_hour,
            "evidence_kb": o.evidence_kb,
            "status_every_s": o.status_every_s,
            "outage_s": o.outage_s,
            "outage_canteens": max(1, round(o.canteens * o.outage_share)),
        }
        self.say(
            f"district: {o.canteens} canteens x 5 sensors = {sensors} sensors at one reading per "
            f"{o.interval_s:g} s ({sim_rate:.1f} readings/s in real time), {o.canteens} edge "
            f"boxes; {o.steady_hours:g} simulated h at speed {o.speed:g} = "
            f"{steady_s / o.speed:.0f} s real, {sim_rate * o.speed:.0f} readings/s; then "
            f"{self.result.district['outage_canteens']} gateways replay {o.outage_s:.0f} s at once"
        )

    def _broker(self, stack: contextlib.ExitStack, logs: Path) -> str:
        binary = mosquitto_path()
        if binary is None:
            raise ConfigError("no mosquitto binary: install it or pass --mqtt-url")
        url: str = stack.enter_context(private_mosquitto(binary, logs / "mqtt", logs))
        self._mosquitto_conf = str((logs / "mqtt" / "mosquitto.conf").resolve())
        return url

    def _start(
        self, stack: contextlib.ExitStack, db: str, mqtt_url: str, logs: Path
    ) -> dict[str, int]:
        self._metrics_port = free_port()
        api_port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "BK_DATABASE_URL": db,
                "BK_MQTT_URL": mqtt_url,
                "BK_MQTT_PREFIX": self.prefix,
                "BK_INGEST_CLIENT_ID": f"bk-district-{uuid.uuid4().hex[:6]}",
                "BK_INGEST_METRICS_PORT": str(self._metrics_port),
            }
        )
        ingest = _spawn_cli(["ingest", "run"], env, logs / "ingest.log")
        stack.callback(stop_process, ingest, "ingest")
        api = _spawn_cli(
            ["api", "run", "--host", "127.0.0.1", "--port", str(api_port)], env, logs / "api.log"
        )
        stack.callback(stop_process, api, "api")
        wait_for(lambda: _worker_connected(logs / "ingest.log"), 60, "the ingest worker", ingest)
        wait_for(lambda: http_up(f"http://127.0.0.1:{api_port}/healthz"), 60, "the API", api)
        self._ingest, self._api = ingest, api
        procs = {"ingest_worker": ingest.pid, "api_and_workers": api.pid}
        conf = getattr(self, "_mosquitto_conf", None)
        if conf:
            pids = pids_named("mosquitto", conf)
            if pids:
                procs["mosquitto"] = pids[0]
        self.say(f"services up: broker {mqtt_url}, ingest, api :{api_port}, logs in {logs}")
        return procs

    def _phase(
        self,
        name: str,
        source: Counted,
        mqtt_url: str,
        monitor: Monitor,
        *,
        speed: float,
        probes: list[str],
        expected_real_s: float,
    ) -> PhaseResult:
        opts = self.opts
        base = monitor.inserted()
        monitor.base_published = base
        monitor.source = source
        self._monitor = monitor
        first = len(monitor.samples)
        client = connect(mqtt_url, client_id=f"bk-district-pub-{uuid.uuid4().hex[:6]}")
        pub = Publisher(client, speed=speed, window=2000)
        done = threading.Event()
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                pub.run(source)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                done.set()

        sent: dict[str, float] = {}
        prober = threading.Thread(
            target=self._probe,
            args=(mqtt_url, probes, max(expected_real_s, 1.0), sent),
            name=f"district-probes-{name}",
            daemon=True,
        )
        t0 = time.monotonic()
        thread = threading.Thread(target=publish, name=f"district-{name}", daemon=True)
        thread.start()
        prober.start()
        done.wait()
        pub_s = time.monotonic() - t0
        client.disconnect()
        client.loop_stop()
        if errors:
            raise BrightKitchenError(f"{name}: publishing failed: {errors[0]}")
        # Stored = committed count reached everything published (probe readings included).
        deadline = time.monotonic() + opts.drain_timeout_s
        while (n := monitor.inserted()) < monitor.base_published + source.readings:
            if self._ingest.poll() is not None:
                raise BrightKitchenError(f"the ingest worker exited ({self._ingest.returncode})")
            if time.monotonic() > deadline:
                raise BrightKitchenError(f"{name}: {n - base}/{source.readings} readings stored")
            time.sleep(0.05)
        drained = time.monotonic() - t0
        prober.join()
        time.sleep(1.0)  # one more monitor sample after the drain
        with contextlib.suppress(BrightKitchenError):
            wait_for(lambda: latency_stats(sent, self.sink)["received"] >= len(sent), 60, "alerts")
        lags = lag_stats(monitor.samples[first:])
        res = PhaseResult(
            name=name,
            real_s=round(pub_s, 1),
            messages=source.messages,
            readings=source.readings,
            violations=source.violations,
            statuses=source.statuses,
            published_readings_per_s=round(source.readings / pub_s),
            stored_readings_per_s=round(source.readings / drained),
            drain_s=round(drained, 2),
            lag_p50_s=lags["p50"],
            lag_p99_s=lags["p99"],
            lag_max_s=lags["max"],
            backlog_max_readings=int(lags["backlog"] or 0),
            worker_lag_gauge_max_s=float(lags["gauge"] or 0.0),
            alert_latency=latency_stats(sent, self.sink),
        )
        self.say(
            f"  {name}: {res.readings} readings, {res.violations} violations, {res.statuses} "
            f"statuses in {res.real_s} s; stored {res.stored_readings_per_s}/s; lag p50 "
            f"{res.lag_p50_s} s p99 {res.lag_p99_s} s (worker's own lag gauge at most "
            f"{res.worker_lag_gauge_max_s} s); alarm->alert {_latency_line(res)}"
        )
        return res

    def _probe(
        self, mqtt_url: str, probes: list[str], span_s: float, sent: dict[str, float]
    ) -> None:
        """Send one threshold-crossing reading per probe fridge, spread over ``span_s``."""
        client = connect(mqtt_url, client_id=f"bk-district-probe-{uuid.uuid4().hex[:6]}")
        gap = span_s / (len(probes) + 1)
        try:
            for p in probes:
                time.sleep(gap)
                reading = SensorReading(ts=utcnow() - timedelta(seconds=1), seq=1, temp_c=11.0)
                topic = reading_topic("probe-site", p, self.prefix)
                sent[p] = time.time()
                self._monitor.base_published += 1  # the probe's reading is one to store too
                client.publish(topic, encode(reading), qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()


def _latency_line(res: PhaseResult) -> str:
    a = res.alert_latency
    return (
        f"p50 {a.get('p50_s')} s, p99 {a.get('p99_s')} s, max {a.get('max_s')} s, "
        f"{a.get('over_1s')} over 1 s ({a['received']}/{a['probes']} received)"
    )


def _server_url_of(opts: DistrictOptions) -> str:
    from brightkitchen.bench.ingest_bench import BenchOptions

    return _server_url(BenchOptions(pg_url=opts.pg_url))


def _database_stats(db: str) -> dict[str, Any]:
    """Rows and bytes the run left: readings, violations, evidence, tickets, notifications."""
    q = {
        "readings": "SELECT count(*) FROM sensor_readings",
        "violations": "SELECT count(*) FROM violations",
        "findings": "SELECT count(*) FROM findings",
        "tickets": "SELECT count(*) FROM tickets",
        "notifications_sent": "SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL",
        "notifications_pending": "SELECT count(*) FROM notifications WHERE sent_at IS NULL",
        "dead_letters": "SELECT count(*) FROM dead_letters",
        "readings_bytes": "SELECT pg_total_relation_size('sensor_readings')",
        "rollup_bytes": "SELECT pg_total_relation_size('readings_5m_store') "
        "+ pg_total_relation_size('readings_1h_store')",
        "evidence_bytes": "SELECT pg_total_relation_size('evidence_blobs')",
        "database_bytes": "SELECT pg_database_size(current_database())",
    }
    out: dict[str, Any] = {}
    with psycopg.connect(db) as conn:
        for key, sql in q.items():
            try:
                row = conn.execute(sql.encode()).fetchone()
                out[key] = int(row[0]) if row and row[0] is not None else 0
            except psycopg.Error:
                conn.rollback()  # the plain-path rollup tables do not exist on Timescale
                out[key] = None
    if out.get("readings") and out.get("readings_bytes"):
        out["bytes_per_reading"] = round(out["readings_bytes"] / out["readings"], 1)
    return out


def print_summary(result: DistrictResult, out: IO[str]) -> None:
    """The table the docs quote."""
    print("", file=out)
    print(
        f"{'phase':14} {'real s':>7} {'readings':>9} {'viol.':>6} {'stored/s':>9} "
        f"{'drain s':>8} {'lag p50':>8} {'lag p99':>8} {'backlog':>8} {'alert p50':>10} "
        f"{'alert p99':>10} {'alerts':>7}",
        file=out,
    )
    for p in result.phases:
        a = p.alert_latency
        print(
            f"{p.name:14} {p.real_s:7.1f} {p.readings:9d} {p.violations:6d} "
            f"{p.stored_readings_per_s:9,.0f} {p.drain_s:8.1f} {p.lag_p50_s!s:>8} "
            f"{p.lag_p99_s!s:>8} {p.backlog_max_readings:8d} {a.get('p50_s')!s:>10} "
            f"{a.get('p99_s')!s:>10} {a.get('received')}/{a.get('probes')}",
            file=out,
        )
    r = result.resources
    for name in ("ingest_worker", "api_and_workers", "mosquitto", "postgresql_backends"):
        if name in r:
            v = r[name]
            rss = f", peak RSS {v['peak_rss_mib']} MiB" if v.get("peak_rss_mib") else ""
            print(f"{name}: {v['cpu_s']} CPU s ({v['cores']} cores){rss}", file=out)
    print(f"load average {r.get('load_before')} -> {r.get('load_after')}", file=out)
    d = result.database
    print(
        f"database: {d.get('readings')} readings, {d.get('bytes_per_reading')} B/reading "
        f"(heap + indexes), {d.get('violations')} violations, {d.get('tickets')} tickets, "
        f"{d.get('notifications_sent')} notifications sent, {d.get('dead_letters')} dead letters",
        file=out,
    )


def run_district(opts: DistrictOptions, out: IO[str]) -> int:
    """Run the district simulation, print the table, write JSON; 0 when every alert came."""
    result = District(opts, out).run()
    print_summary(result, out)
    path = Path(opts.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"results written to {path}", file=out)
    missing = [p.name for p in result.phases if p.alert_latency.get("received") != opts.probes]
    if missing:
        print(f"alerts missing in: {', '.join(missing)}", file=out)
        return 1
    return 0
