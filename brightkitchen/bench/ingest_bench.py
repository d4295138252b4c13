"""``brightkitchen bench ingest``: what one ingest worker sustains, end to end, on this machine.

Throughput runs (single-reading messages, then gateway batches) and the bare-subscriber
baseline all use the same broker, QoS 1, persistent session and the same pre-published
messages: the consumer subscribes, goes away, the messages are published and queued by
the broker, then the consumer comes back and drains them. The rate is counted from the
first row (or message) to the last, so process start-up is not included and the
publisher does not compete with the consumer for the CPU. The ratio ingest / bare
subscriber shows what validation, COPY into PostgreSQL and the rule engine cost.

The latency run keeps the worker and the API (ticket engine, notification delivery)
running under a background load published by ``brightkitchen simulate sensors --rate``,
injects excursions on probe sensors and times the reading that completes each
excursion (publish) to the officer's webhook arriving at a local sink.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bkcommon.errors import BrightKitchenError, ConfigError
from bkcommon.messages import SensorReading, encode
from bkcommon.settings import load_common_settings, parse_mqtt_url
from bkcommon.sitefile import SiteFile, parse_site_file
from bkcommon.timeutil import utcnow
from bkcommon.topics import ingest_subscriptions, reading_topic
from brightkitchen.db import migrate
from brightkitchen.demo import (
    REPO_ROOT,
    Sink,
    free_port,
    http_up,
    mosquitto_path,
    private_mosquitto,
    start_sink,
    stop_process,
    wait_for,
)
from brightkitchen.registry import sync_registry
from brightkitchen.simulate.fleet import Emission, Fleet, FleetConfig, generate_site_file
from brightkitchen.simulate.publisher import Publisher, connect


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What to run and where."""

    readings: int = 200_000
    batch_size: int = 100
    latency_probes: int = 20
    background_rate: float = 5000.0
    skip: frozenset[str] = frozenset()
    mqtt_url: str | None = None
    pg_url: str | None = None
    json_path: str = "var/bench/ingest.json"
    sites: int = 100
    per_profile: int = 2


@dataclass
class RunResult:
    """One throughput run."""

    name: str
    readings: int
    messages: int
    seconds: float
    readings_per_s: float
    messages_per_s: float
    worker_peak_rss_mib: float | None = None
    worker_cpu_us_per_reading: float | None = None
    pg_cpu_us_per_reading: float | None = None
    """CPU per reading of the worker and of its PostgreSQL backends while it drained: on a
    shared machine these hold where readings/s swing with other people's load."""


@dataclass
class BenchResult:
    """Everything the benchmark measured."""

    machine: dict[str, Any] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- helpers


def _server_url(opts: BenchOptions) -> str:
    if opts.pg_url:
        return opts.pg_url.rstrip("/")
    url = load_common_settings().database_url.get_secret_value()
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "", "", "")).rstrip("/")


@contextlib.contextmanager
def fresh_database(server: str, site_file: SiteFile) -> Iterator[str]:
    """A new migrated database with the fleet registered; dropped afterwards."""
    name = f"bk_bench_{uuid.uuid4().hex[:10]}"
    url = f"{server}/{name}"
    migrate(url)
    with psycopg.connect(url) as conn:
        sync_registry(conn, site_file)
    try:
        yield url
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM sensor_readings").fetchone()
    return int(row[0]) if row else 0


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a running process, MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _spawn_cli(args: list[str], env: dict[str, str], log: Path) -> Any:
    import subprocess

    with log.open("ab") as fh:
        return subprocess.Popen(  # noqa: S603 (our own CLI)
            [sys.executable, "-m", "brightkitchen.cli", *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )


def _publish_all(url: str, emissions: list[Emission]) -> float:
    """Publish pre-built messages as fast as the broker takes them; return seconds."""
    client = connect(url, client_id=f"bk-bench-pub-{uuid.uuid4().hex[:6]}")
    try:
        stats = Publisher(client, window=2000).run(emissions)
    finally:
        client.disconnect()
        client.loop_stop()
    return stats.elapsed_s


class BareSubscriber:
    """A paho v5 client with a persistent session that only counts messages."""

    def __init__(self, url: str, client_id: str, filters: list[str]) -> None:
        self.ep = parse_mqtt_url(url)
        self.client_id = client_id
        self.filters = filters
        self.count = 0
        self.first_at: float | None = None
        self.last_at = 0.0
        self.ready = threading.Event()
        self.client = self._make()

    def _make(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(65535)

        def on_connect(cl: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
            cl.subscribe([(t, 1) for t in self.filters])

        def on_subscribe(*_a: object) -> None:
            self.ready.set()

        def on_message(_c: object, _u: object, _m: mqtt.MQTTMessage) -> None:
            now = time.perf_counter()
            if self.first_at is None:
                self.first_at = now
            self.count += 1
            self.last_at = now

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_message = on_message
        return c

    def connect(self) -> None:
        """Connect with a session that outlives the connection, and subscribe."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = 65535
        self.ready.clear()
        self.client.connect(self.ep.host, self.ep.port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise BrightKitchenError("bare subscriber: no SUBACK")

    def disconnect(self) -> None:
        """Go away, leaving the session (and its queue) at the broker."""
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------- runs


def _emissions(opts: BenchOptions, prefix: str, batch: int) -> list[Emission]:
    sensors = (
        opts.sites * len(Fleet(FleetConfig(sites=1, per_profile=1)).sensors) * opts.per_profile
    )
    ticks = max(1, opts.readings // sensors)
    cfg = FleetConfig(
        sites=opts.sites,
        per_profile=opts.per_profile,
        duration_s=(ticks - 1) * 60.0,
        interval_s=60.0,
        seed=1,
        faults=frozenset(),
        batch_every=batch,
        prefix=prefix,
        start=utcnow() - timedelta(seconds=ticks * 60.0 + 600),
    )
    return list(Fleet(cfg).emissions())


def _throughput(
    name: str,
    opts: BenchOptions,
    *,
    server: str,
    mqtt_url: str,
    site_file: SiteFile,
    batch: int,
    logs: Path,
    out: IO[str],
) -> RunResult:
    prefix = f"bench/{uuid.uuid4().hex[:6]}"
    ems = _emissions(opts, prefix, batch)
    n_readings = sum(e.n_readings for e in ems)
    with fresh_database(server, site_file) as db:
        env = dict(os.environ)
        env.update(
            {
                "BK_DATABASE_URL": db,
                "BK_MQTT_URL": mqtt_url,
                "BK_MQTT_PREFIX": prefix,
                "BK_INGEST_CLIENT_ID": f"bk-bench-{name}-{uuid.uuid4().hex[:6]}",
                "BK_LOG_LEVEL": "INFO",
            }
        )
        # 1. The worker subscribes (creating its persistent session), proves it with a
        #    warm-up reading, and stops.
        proc = _spawn_cli(["ingest", "run"], env, logs / f"ingest-{name}.log")
        warm = Emission(utcnow(), reading_topic("bench-warm", "x", prefix), b"{}", 1, "x", False)
        try:
            wait_for(
                lambda: _worker_connected(logs / f"ingest-{name}.log"),
                60,
                "the ingest worker to subscribe",
                proc,
            )
            _publish_all(mqtt_url, [warm])
            time.sleep(1.0)
        finally:
            stop_process(proc, "ingest")
        # 2. Publish everything while it is away; the broker queues it in the session.
        pub_s = _publish_all(mqtt_url, ems)
        print(
            f"  {name}: published {len(ems)} messages ({n_readings} readings) in "
            f"{pub_s:.1f} s ({n_readings / pub_s:.0f} readings/s); draining...",
            file=out,
            flush=True,
        )
        # 3. The worker comes back and drains the queue into PostgreSQL.
        proc = _spawn_cli(["ingest", "run"], env, logs / f"ingest-{name}.log")
        peak: float | None = None
        try:
            first_at: float | None = None
            n = 0
            deadline = time.monotonic() + 600
            cpu0: tuple[float, float] = (0.0, 0.0)
            while n < n_readings:
                if proc.poll() is not None:
                    raise BrightKitchenError(f"ingest worker exited ({proc.returncode})")
                if time.monotonic() > deadline:
                    raise BrightKitchenError(f"{name}: only {n}/{n_readings} rows after 600 s")
                n = _count(db)
                if n and first_at is None:
                    first_at = time.perf_counter()
                    n0 = n
                    cpu0 = _worker_cpu(proc.pid, db)
                peak = peak_rss_mib(proc.pid) or peak
                time.sleep(0.02)
            done_at = time.perf_counter()
            cpu1 = _worker_cpu(proc.pid, db)
        finally:
            stop_process(proc, "ingest")
    assert first_at is not None
    secs = max(done_at - first_at, 1e-6)
    rate = (n_readings - n0) / secs
    msg_rate = rate / (n_readings / len(ems))
    drained = max(n_readings - n0, 1)
    return RunResult(
        name,
        n_readings,
        len(ems),
        round(secs, 3),
        round(rate),
        round(msg_rate),
        None if peak is None else round(peak, 1),
        round((cpu1[0] - cpu0[0]) / drained * 1e6, 2),
        round((cpu1[1] - cpu0[1]) / drained * 1e6, 2),
    )


def _worker_cpu(pid: int, db: str) -> tuple[float, float]:
    """CPU seconds so far of the worker process and of its database's other backends
    (the worker's; this benchmark's own counting connection is left out)."""
    from brightkitchen.bench.measure import cpu_s

    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return cpu_s(pid) or 0.0, sum(cpu_s(int(r[0])) or 0.0 for r in rows)


def _worker_connected(log: Path) -> bool:
    with contextlib.suppress(OSError):
        return "subscribed to" in log.read_text(errors="replace")
    return False


def _bare(opts: BenchOptions, mqtt_url: str, batch: int, group: str, out: IO[str]) -> RunResult:
    prefix = f"bench/{uuid.uuid4().hex[:6]}"
    ems = _emissions(opts, prefix, batch)
    n_readings = sum(e.n_readings for e in ems)
    sub = BareSubscriber(
        mqtt_url,
        f"bk-bench-bare-{uuid.uuid4().hex[:6]}",
        ingest_subscriptions(prefix, group or None),
    )
    sub.connect()
    sub.disconnect()
    _publish_all(mqtt_url, ems)
    sub.connect()
    wait_for(lambda: sub.count >= len(ems), 600, "the bare subscriber to drain")
    sub.client.disconnect()
    sub.client.loop_stop()
    assert sub.first_at is not None
    secs = max(sub.last_at - sub.first_at, 1e-6)
    name = "bare subscriber, " + ("batches" if batch else "single")
    print(f"  {name}: {len(ems)} messages in {secs:.2f} s", file=out, flush=True)
    return RunResult(
        name, n_readings, len(ems), round(secs, 3), round(n_readings / secs), round(len(ems) / secs)
    )


def _latency(
    opts: BenchOptions, server: str, mqtt_url: str, logs: Path, out: IO[str]
) -> dict[str, Any]:
    prefix = f"bench/{uuid.uuid4().hex[:6]}"
    hook_port = free_port()
    hook = f"http://127.0.0.1:{hook_port}/hook/officer"
    # Background readings are stamped in simulated time that starts ``history`` seconds in
    # the past and catches up with the clock; the offline rule judges when readings
    # arrive, not their stamps, so the background fleet keeps the default offline limit.
    span_s = 40 + opts.latency_probes * 2.0
    n_sensors = opts.sites * 5 * opts.per_profile
    history = span_s * opts.background_rate / n_sensors * 60
    bg = generate_site_file(
        opts.sites,
        opts.per_profile,
        site_prefix="bg",
        webhook_url=None,
    )
    probes = [f"probe-{i:03d}" for i in range(opts.latency_probes)]
    data = bg.model_dump(mode="json")
    data["people"].append(
        {
            "id": "probe-officer",
            "name": "probe officer",
            "channels": [{"kind": "webhook", "address": hook}],
        }
    )
    for p in probes:
        data["sites"].append(
            {
                "id": f"{p}-site",
                "name": f"probe canteen {p}",
                "region": "bg-region",
                "people": {"officer": ["probe-officer"]},
                "sensors": [
                    {"id": p, "profile": "fridge", "rules": {"delay_s": 60, "door_grace_s": 0}}
                ],
            }
        )
    site_file = parse_site_file(data, "<bench>")
    sink = Sink(echo=False)
    srv = start_sink(hook_port, sink)
    api_port = free_port()
    sent_at: dict[str, float] = {}
    with fresh_database(server, site_file) as db:
        env = dict(os.environ)
        env.update(
            {
                "BK_DATABASE_URL": db,
                "BK_MQTT_URL": mqtt_url,
                "BK_MQTT_PREFIX": prefix,
                "BK_INGEST_CLIENT_ID": f"bk-bench-lat-{uuid.uuid4().hex[:6]}",
            }
        )
        procs = []
        try:
            ingest = _spawn_cli(["ingest", "run"], env, logs / "ingest-latency.log")
            procs.append(("ingest", ingest))
            api = _spawn_cli(
                ["api", "run", "--host", "127.0.0.1", "--port", str(api_port)],
                env,
                logs / "api-latency.log",
            )
            procs.append(("api", api))
            wait_for(
                lambda: _worker_connected(logs / "ingest-latency.log"),
                60,
                "the ingest worker",
                ingest,
            )
            wait_for(lambda: http_up(f"http://127.0.0.1:{api_port}/healthz"), 60, "the API", api)
            # Background: the simulator at a fixed rate, long enough to outlast the probes.
            sim = _spawn_cli(
                [
                    "simulate",
                    "sensors",
                    "--sites",
                    str(opts.sites),
                    "--per-profile",
                    str(opts.per_profile),
                    "--site-prefix",
                    "bg",
                    "--scenario",
                    "none",
                    "--speed",
                    "0",
                    "--rate",
                    str(opts.background_rate),
                    "--duration",
                    str(history),
                ],
                env,
                logs / "simulator-latency.log",
            )
            procs.append(("simulator", sim))
            time.sleep(5)  # let the load settle
            client = connect(mqtt_url, client_id=f"bk-bench-probe-{uuid.uuid4().hex[:6]}")
            try:
                for p in probes:
                    now = utcnow()
                    t0 = SensorReading(ts=now - timedelta(seconds=80), seq=1, temp_c=11.0)
                    t1 = SensorReading(ts=now - timedelta(seconds=10), seq=2, temp_c=11.5)
                    topic = reading_topic(f"{p}-site", p, prefix)
                    client.publish(topic, encode(t0), qos=1).wait_for_publish(5)
                    sent_at[p] = time.time()
                    client.publish(topic, encode(t1), qos=1)
                    time.sleep(1.5)
            finally:
                client.disconnect()
                client.loop_stop()

            def _all_arrived() -> bool:
                return len(_arrivals(sink, probes)) >= len(probes)

            with contextlib.suppress(BrightKitchenError):
                wait_for(_all_arrived, 60, "the probe webhooks")
            published = _count(db)
            stages = _stages(db, probes)
            peak = peak_rss_mib(ingest.pid)
        finally:
            for name, proc in reversed(procs):
                stop_process(proc, name)
            srv.shutdown()
    arrived = _arrivals(sink, probes)
    lat = sorted(arrived[p] - sent_at[p] for p in arrived if p in sent_at)
    res: dict[str, Any] = {
        "probes": len(probes),
        "received": len(lat),
        "background_rate_readings_per_s": opts.background_rate,
        "readings_stored_during_run": published,
        "worker_peak_rss_mib": None if peak is None else round(peak, 1),
        "median_stage_s": stages,
    }
    if lat:
        res.update(
            {
                "p50_s": round(statistics.median(lat), 3),
                "p99_s": round(lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))], 3),
                "max_s": round(lat[-1], 3),
                "min_s": round(lat[0], 3),
            }
        )
    return res


def _stages(db: str, probes: list[str]) -> dict[str, Any]:
    """Median and worst seconds between the pipeline's steps for the probes, from the database.

    The worst probe's stages are kept too, so a slow outlier says where its time went
    (a webhook retry shows as notification_to_sent, a queued reading as reading_to_finding).
    """
    q = """
    SELECT f.subject, n.attempts, extract(epoch FROM f.created_at - r.received_at),
           extract(epoch FROM f.processed_at - f.created_at),
           extract(epoch FROM n.created_at - f.processed_at),
           extract(epoch FROM n.sent_at - n.created_at)
    FROM findings f
    JOIN LATERAL (SELECT max(received_at) AS received_at FROM sensor_readings
                  WHERE sensor_id = f.subject) r ON true
    JOIN notifications n ON n.ticket_id = f.ticket_id
    WHERE f.kind = 'alarm_raised' AND f.subject = ANY(%s) AND n.sent_at IS NOT NULL"""
    with psycopg.connect(db) as conn:
        rows = conn.execute(q, (probes,)).fetchall()
    names = (
        "reading_to_finding",
        "finding_to_ticket",
        "ticket_to_notification",
        "notification_to_sent",
    )
    if not rows:
        return {}
    out: dict[str, Any] = {
        n: round(statistics.median(float(r[i + 2]) for r in rows), 3) for i, n in enumerate(names)
    }
    worst = max(rows, key=lambda r: sum(float(x) for x in r[2:]))
    out["worst_probe"] = {
        "sensor": worst[0],
        "delivery_attempts": int(worst[1]),
        **{n: round(float(worst[i + 2]), 3) for i, n in enumerate(names)},
    }
    return out


def _arrivals(sink: Sink, probes: list[str]) -> dict[str, float]:
    """First webhook arrival time per probe sensor (matched by its id in the payload)."""
    out: dict[str, float] = {}
    with sink.lock:
        items = list(sink.received)
    for item in items:
        text = json.dumps(item["payload"], ensure_ascii=False)
        for p in probes:
            if p in text and p not in out:
                out[p] = float(item["at"])
    return out


# ---------------------------------------------------------------- entry point


def run_bench(opts: BenchOptions, out: IO[str]) -> int:
    """Run the selected parts, print a table, write JSON; 0 when everything ran."""
    if opts.readings < 1000 or opts.batch_size < 1:
        raise ConfigError("--readings must be >= 1000 and --batch-size >= 1")
    server = _server_url(opts)
    result = BenchResult(
        machine={
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "date": utcnow().isoformat(timespec="seconds"),
        }
    )
    site_file = generate_site_file(
        opts.sites, opts.per_profile, site_prefix="sim", webhook_url=None
    )
    group = os.environ.get("BK_INGEST_GROUP", "ingest")
    with contextlib.ExitStack() as stack:
        logs = Path(tempfile.mkdtemp(prefix="bk-bench-"))
        if opts.mqtt_url:
            mqtt_url = opts.mqtt_url
            result.machine["broker"] = mqtt_url
        else:
            binary = mosquitto_path()
            if binary is None:
                raise ConfigError("no mosquitto binary: install it or pass --mqtt-url")
            mqtt_url = stack.enter_context(private_mosquitto(binary, logs / "mqtt", logs))
            result.machine["broker"] = "private Mosquitto, deploy/mosquitto/mosquitto.conf"
        print(
            f"bench ingest: broker {mqtt_url}, PostgreSQL {server.split('@')[-1]}, logs in {logs}",
            file=out,
            flush=True,
        )
        parts = [("single", 0), ("batch", opts.batch_size)]
        for name, batch in parts:
            if name in opts.skip:
                continue
            run = _throughput(
                name,
                opts,
                server=server,
                mqtt_url=mqtt_url,
                site_file=site_file,
                batch=batch,
                logs=logs,
                out=out,
            )
            result.runs.append(run)
            print(f"  {name}: {run.readings_per_s:,.0f} readings/s", file=out, flush=True)
            result.runs.append(_bare(opts, mqtt_url, batch, group, out))
        if "latency" not in opts.skip:
            result.latency = _latency(opts, server, mqtt_url, logs, out)
    _print_table(result, out)
    path = Path(opts.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"results written to {path}", file=out)
    return 0


def _print_table(result: BenchResult, out: IO[str]) -> None:
    print("", file=out)
    print(
        f"{'run':34} {'readings':>9} {'messages':>9} {'seconds':>8} {'readings/s':>11} "
        f"{'peak RSS MiB':>12} {'worker µs/r':>11} {'PG µs/r':>8}",
        file=out,
    )
    for r in result.runs:
        rss = "" if r.worker_peak_rss_mib is None else f"{r.worker_peak_rss_mib:.0f}"
        wcpu = "" if r.worker_cpu_us_per_reading is None else f"{r.worker_cpu_us_per_reading}"
        pcpu = "" if r.pg_cpu_us_per_reading is None else f"{r.pg_cpu_us_per_reading}"
        print(
            f"{r.name:34} {r.readings:9d} {r.messages:9d} {r.seconds:8.2f} "
            f"{r.readings_per_s:11,.0f} {rss:>12} {wcpu:>11} {pcpu:>8}",
            file=out,
        )
    by = {r.name: r for r in result.runs}
    for kind in ("single", "batches"):
        ing = by.get("single" if kind == "single" else "batch")
        bare = by.get(f"bare subscriber, {kind}")
        if ing and bare:
            print(
                f"ratio ingest / bare subscriber ({kind}): "
                f"{ing.readings_per_s / bare.readings_per_s:.2f}",
                file=out,
            )
    if result.latency:
        lat = result.latency
        print(
            f"latency excursion-completing reading → webhook under "
            f"{lat['background_rate_readings_per_s']:.0f} readings/s: "
            f"p50 {lat.get('p50_s')} s, p99 {lat.get('p99_s')} s "
            f"({lat['received']}/{lat['probes']} received)",
            file=out,
        )
