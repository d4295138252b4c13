"""Orchestrate a chaos run: private servers, the real services, numbered traffic, faults.

Order: a private PostgreSQL cluster and a private Mosquitto (never the machine's own
services), migrations, a one-site registry; then two ``brightkitchen ingest run`` workers
on the shared subscription, ``brightkitchen api run`` (HTTP plus ticket workers), the chaos
edge box (the edge delivery stack behind a TCP proxy that plays its uplink) and the
numbered sensors. While they flow, the faults run one after another, each followed by a
settle gap; then production stops, everything drains, and the database is reconciled
against what was produced, window by window.

The edge disk: run as root, the box's data directory is a small tmpfs of its own and the
disk-full fault fills it with a ballast file until less than the outbox's reserve is
free; otherwise the fault lowers the outbox's byte budget (the emulated quota).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg

from bkcommon.errors import BrightKitchenError
from bkcommon.sitefile import SiteFile, parse_site_file
from brightkitchen.chaos.procs import Service
from brightkitchen.chaos.reconcile import (
    Downstream,
    Tally,
    Window,
    downstream,
    event_id,
    stored_events,
    stored_readings,
    tally,
)
from brightkitchen.chaos.sensors import ChaosSensor, NumberedSensors
from brightkitchen.chaos.servers import PrivateMosquitto, PrivatePostgres, TcpProxy, free_port

logger = logging.getLogger(__name__)

PREFIX = "bk/v1"
SITE = "chaos-site"
BOX = "chaos-box"
CAMERA = "chaos-cam"


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    """Durations of a run; ``short()`` is the CI version, ``full()`` the operator's."""

    duration_s: float  # time over which the faults are spread (traffic flows throughout)
    down_s: float  # how long a killed service / broker / database stays down
    uplink_cut_s: float
    disk_full_s: float
    disk_budget_kb: float
    drain_timeout_s: float
    disk_reserve_kb: float = 1024.0  # free space the box's outbox keeps (tmpfs of 64 MB)
    reading_rate_hz: float = 5.0  # per sensor
    event_rate_hz: float = 2.0
    keep_dir: bool = False
    fuzz_cases: int = 0

    @classmethod
    def short(cls, duration_s: float | None = None) -> ChaosOptions:
        """Seconds per fault: fits a CI job on a loaded 2-core machine."""
        return cls(
            duration_s=duration_s or 30.0,
            down_s=1.0,
            uplink_cut_s=6.0,
            disk_full_s=6.0,
            disk_budget_kb=96.0,
            drain_timeout_s=90.0,
        )

    @classmethod
    def full(cls, duration_s: float | None = None, fuzz_cases: int = 10_000) -> ChaosOptions:
        """Minutes: the uplink is cut for two minutes, the disk is full for one."""
        return cls(
            duration_s=duration_s or 480.0,
            down_s=8.0,
            uplink_cut_s=120.0,
            disk_full_s=60.0,
            disk_budget_kb=256.0,
            drain_timeout_s=300.0,
            fuzz_cases=fuzz_cases,
        )


@dataclass
class FaultRecord:
    """One injected fault: what, when (seconds from the start of traffic), for how long."""

    name: str
    at_s: float
    took_s: float = 0.0
    note: str = ""
    tally: Tally | None = None


@dataclass
class ChaosResult:
    """Everything the report needs."""

    options: ChaosOptions
    started: str
    faults: list[FaultRecord] = field(default_factory=list)
    total: Tally | None = None
    downstream: Downstream | None = None
    crashes: list[str] = field(default_factory=list)
    sensor_stats: dict[str, int] = field(default_factory=dict)
    edge_state: dict[str, Any] = field(default_factory=dict)
    fuzz: list[dict[str, Any]] = field(default_factory=list)
    drained_s: float = 0.0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was lost or duplicated and every check passed."""
        if not self.faults and self.total is None and self.fuzz and not self.errors:
            return all(f.get("ok") for f in self.fuzz)  # ``chaos --fuzz``: the fuzz alone
        t = self.total
        d = self.downstream
        if t is None or d is None or self.errors or self.crashes:
            return False
        if t.lost or t.duplicated or d.problems:
            return False
        if d.rollup_checked and d.rollup_count != t.readings_stored:
            return False
        return all(f.get("ok") for f in self.fuzz)


def chaos_site_file() -> SiteFile:
    """One canteen: a single-reading sensor, a gateway-batch sensor, one edge box and camera."""
    return parse_site_file(
        {
            "version": 1,
            "regions": [{"id": "chaos-region", "name": "Chaos region"}],
            "sites": [
                {
                    "id": SITE,
                    "name": "Chaos canteen",
                    "region": "chaos-region",
                    "sensors": [
                        {"id": "chaos-fridge-1", "profile": "fridge"},
                        {"id": "chaos-fridge-2", "profile": "fridge"},
                    ],
                    "edge_boxes": [
                        {"id": BOX, "cameras": [{"id": CAMERA, "url": "rtsp://chaos.invalid/1"}]}
                    ],
                }
            ],
        },
        "<chaos site file>",
    )


TMPFS_MB = 64


def _mount_tmpfs(path: Path, size_mb: int) -> bool:
    """Mount a tmpfs of ``size_mb`` on ``path`` when running as root; False otherwise."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(  # noqa: S603
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],  # noqa: S607
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


SENSORS = [
    ChaosSensor(SITE, "chaos-fridge-1", per_message=1),
    ChaosSensor(SITE, "chaos-fridge-2", per_message=10),
]


def _http_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (our localhost)
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


class ChaosRun:
    """One run; :meth:`run` returns the result (the report is built from it)."""

    def __init__(self, opts: ChaosOptions, out: IO[str]) -> None:
        """Prepare the temporary directory; nothing starts yet."""
        self.opts = opts
        self.out = out
        self.dir = Path(tempfile.mkdtemp(prefix="bk-chaos-"))
        self.dir.chmod(0o755)
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.run_id = f"chaos{uuid.uuid4().hex[:6]}"
        self.t0 = time.monotonic()
        self.services: dict[str, Service] = {}
        self.result = ChaosResult(opts, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
        self.pg: PrivatePostgres | None = None
        self.mqtt: PrivateMosquitto | None = None
        self.proxy: TcpProxy | None = None
        self.sensors: NumberedSensors | None = None
        self.edge_dir = self.dir / "edge"
        self.db_url = ""
        self.api_port = free_port()
        self.edge_tmpfs = False

    def say(self, text: str) -> None:
        """One progress line with the seconds since traffic started."""
        print(f"[{time.monotonic() - self.t0:6.1f} s] {text}", file=self.out, flush=True)

    # ---------------------------------------------------------------- setup
    def _setup(self) -> None:
        from brightkitchen.db import migrate
        from brightkitchen.registry import sync_registry

        self.say(f"working directory {self.dir}")
        self.pg = PrivatePostgres(self.dir / "pg")
        self.pg.start()
        self.db_url = self.pg.url("brightkitchen")
        res = migrate(self.db_url)
        with psycopg.connect(self.db_url) as conn:
            sync_registry(conn, chaos_site_file())
        self.say(
            f"private PostgreSQL on :{self.pg.port} ({self.pg.bin}), schema {res.current} "
            f"({'TimescaleDB' if res.timescale else 'plain PostgreSQL'})"
        )
        self.mqtt = PrivateMosquitto(self.dir / "mqtt")
        self.mqtt.start()
        self.proxy = TcpProxy(self.mqtt.port)
        self.proxy.open()
        self.say(
            f"private Mosquitto on :{self.mqtt.port} (deploy/mosquitto/mosquitto.conf), "
            f"edge uplink through :{self.proxy.port}"
        )
        env = dict(os.environ)
        env.update(
            {
                "BK_DATABASE_URL": self.db_url,
                "BK_MQTT_URL": self.mqtt.url,
                "BK_MQTT_PREFIX": PREFIX,
                "BK_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "BK_INGEST_DIRECTORY_REFRESH_S": "5",
                "BK_INGEST_STATS_LOG_S": "5",
                "BK_INGEST_DB_BACKOFF_MAX_S": "2",
                "BK_INGEST_BROKER_BACKOFF_MAX_S": "2",
                "BK_API_POLL_INTERVAL_S": "1",
            }
        )
        env.pop("BK_INGEST_GROUP", None)  # the production default: the shared subscription
        for n in (1, 2):
            ienv = dict(env, BK_INGEST_CLIENT_ID=f"chaos-ingest-{n}")
            self.services[f"ingest-{n}"] = Service.cli(
                f"ingest-{n}", ["ingest", "run"], ienv, self.logs
            )
        self.services["api"] = Service.cli(
            "api",
            ["api", "run", "--host", "127.0.0.1", "--port", str(self.api_port)],
            env,
            self.logs,
        )
        self.services["edge"] = Service.module(
            "edge",
            "brightkitchen.chaos.edgebox",
            [
                "--mqtt-url",
                self.proxy.url,
                "--prefix",
                PREFIX,
                "--site",
                SITE,
                "--box",
                BOX,
                "--camera",
                CAMERA,
                "--run-id",
                self.run_id,
                "--data-dir",
                str(self.edge_dir),
                "--rate",
                str(self.opts.event_rate_hz),
                "--disk-reserve-kb",
                str(self.opts.disk_reserve_kb),
            ],
            env,
            self.logs,
        )
        self.edge_dir.mkdir()
        self.edge_tmpfs = _mount_tmpfs(self.edge_dir, TMPFS_MB)
        self.say(
            f"edge data directory: a {TMPFS_MB} MB tmpfs of its own"
            if self.edge_tmpfs
            else "edge data directory: the run's directory (not root: the disk-full fault "
            "lowers the outbox budget instead of filling a filesystem)"
        )
        (self.edge_dir / "stop_producing").touch()  # the box starts once ingest listens
        for svc in self.services.values():
            svc.start()
        self._wait(
            lambda: all(
                "connected to the broker" in self.services[f"ingest-{n}"].log_text() for n in (1, 2)
            ),
            90,
            "both ingest workers to subscribe",
        )
        self._wait(lambda: _http_up(f"http://127.0.0.1:{self.api_port}/healthz"), 90, "the API")
        self.sensors = NumberedSensors(
            self.mqtt.url, PREFIX, SENSORS, rate_hz=self.opts.reading_rate_hz
        )
        self.sensors.start()
        (self.edge_dir / "stop_producing").unlink()
        self.t0 = time.monotonic()
        self.say(
            "traffic flowing: "
            + ", ".join(
                s.sensor_id
                + (f" (batches of {s.per_message})" if s.per_message > 1 else " (single)")
                for s in SENSORS
            )
            + f" at {self.opts.reading_rate_hz:g}/s each; "
            + f"edge events at {self.opts.event_rate_hz:g}/s"
        )

    def _wait(self, pred: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pred():
                return
            self._watch()
            time.sleep(0.2)
        raise BrightKitchenError(f"timed out after {timeout_s:.0f} s waiting for {what}")

    def _watch(self) -> None:
        at = time.monotonic() - self.t0
        for svc in self.services.values():
            if svc.check(at):
                self.say(f"!! {svc.crashes[-1]}; restarted")

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._watch()
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    # ---------------------------------------------------------------- faults
    def _kill_restart(self, name: str) -> str:
        svc = self.services[name]
        svc.kill(signal.SIGKILL)
        self._sleep(self.opts.down_s)
        svc.start()
        return f"down {self.opts.down_s:g} s"

    def _broker(self, sig: int) -> str:
        assert self.mqtt is not None
        self.mqtt.stop(sig)
        self._sleep(self.opts.down_s)
        self.mqtt.start()
        return f"down {self.opts.down_s:g} s"

    def _postgres(self, mode: str) -> str:
        assert self.pg is not None
        self.pg.stop(mode)
        self._sleep(self.opts.down_s)
        t = time.monotonic()
        self.pg.start()
        return f"down {self.opts.down_s:g} s, start (with recovery) {time.monotonic() - t:.1f} s"

    def _edge_state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.edge_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _uplink_cut(self, seconds: float) -> str:
        assert self.proxy is not None
        self.proxy.cut()
        self._sleep(seconds)
        depth = self._edge_state().get("depth", "?")
        self.proxy.open()
        return f"cut {seconds:g} s; outbox depth at reconnect {depth}"

    def _disk_full(self) -> str:
        return self._disk_full_tmpfs() if self.edge_tmpfs else self._disk_full_budget()

    def _disk_full_tmpfs(self) -> str:
        """Fill the box's filesystem to 256 KB short of the outbox's reserve, offline."""
        assert self.proxy is not None
        before = self._edge_state()
        ballast = self.edge_dir / "ballast"
        target = int(self.opts.disk_reserve_kb * 1024) - 256 * 1024
        free = shutil.disk_usage(self.edge_dir).free
        with ballast.open("wb") as f:
            if free > target:
                os.posix_fallocate(f.fileno(), 0, free - target)
        self.proxy.cut()
        self._sleep(self.opts.disk_full_s)
        st = self._edge_state()
        self.proxy.open()
        ballast.unlink()
        pruned = int(st.get("evidence_pruned_total", 0)) - int(
            before.get("evidence_pruned_total", 0)
        )
        dropped = int(st.get("dropped_total", 0)) - int(before.get("dropped_total", 0))
        return (
            f"tmpfs filled to {st.get('disk_free', '?')} bytes free (reserve "
            f"{self.opts.disk_reserve_kb:g} KB), uplink cut {self.opts.disk_full_s:g} s: depth "
            f"{st.get('depth', '?')}; evidence pruned {pruned}, events dropped {dropped}"
        )

    def _disk_full_budget(self) -> str:
        assert self.proxy is not None
        budget = self.dir / "edge" / "budget_mb"
        budget.write_text(str(self.opts.disk_budget_kb / 1024), encoding="utf-8")
        before = self._edge_state()
        self.proxy.cut()
        self._sleep(self.opts.disk_full_s)
        st = self._edge_state()
        self.proxy.open()
        budget.unlink()
        pruned = int(st.get("evidence_pruned_total", 0)) - int(
            before.get("evidence_pruned_total", 0)
        )
        dropped = int(st.get("dropped_total", 0)) - int(before.get("dropped_total", 0))
        return (
            f"outbox budget {self.opts.disk_budget_kb:g} KB, uplink cut {self.opts.disk_full_s:g}"
            f" s: depth {st.get('depth', '?')}, {st.get('bytes', '?')} bytes; evidence pruned"
            f" {pruned}, events dropped {dropped}"
        )

    def fault_plan(self) -> list[tuple[str, Callable[[], str]]]:
        """The faults, in order."""
        return [
            ("SIGKILL ingest-1, restart", lambda: self._kill_restart("ingest-1")),
            ("SIGKILL ingest-2, restart", lambda: self._kill_restart("ingest-2")),
            ("SIGKILL api (HTTP + ticket workers), restart", lambda: self._kill_restart("api")),
            ("SIGKILL edge worker, restart", lambda: self._kill_restart("edge")),
            ("Mosquitto SIGTERM, restart", lambda: self._broker(signal.SIGTERM)),
            ("Mosquitto SIGKILL, restart", lambda: self._broker(signal.SIGKILL)),
            ("PostgreSQL pg_ctl stop -m fast, start", lambda: self._postgres("fast")),
            ("PostgreSQL pg_ctl stop -m immediate, start", lambda: self._postgres("immediate")),
            # The disk fills before the long cut: a long cut leaves the outbox file with
            # megabytes of free pages inside it, which a full filesystem does not take away.
            ("edge disk full during an uplink cut", self._disk_full),
            ("edge uplink cut", lambda: self._uplink_cut(self.opts.uplink_cut_s)),
        ]

    def _snapshot(self) -> tuple[dict[str, int], int]:
        assert self.sensors is not None
        return dict(self.sensors.counts.produced), int(self._edge_state().get("produced", 0))

    def _faults(self) -> list[tuple[dict[str, int], int]]:
        plan = self.fault_plan()
        busy = self.opts.uplink_cut_s + self.opts.disk_full_s + 8 * self.opts.down_s
        gap = max(3.0, (self.opts.duration_s - busy) / (len(plan) + 1))
        marks = [self._snapshot()]
        self._sleep(gap)
        for i, (name, action) in enumerate(plan, 1):
            marks.append(self._snapshot())
            at = time.monotonic() - self.t0
            self.say(f"fault {i}/{len(plan)}: {name}")
            t = time.monotonic()
            try:
                note = action()
            except BrightKitchenError as exc:
                note = f"FAILED: {exc}"
                self.result.errors.append(f"{name}: {exc}")
            rec = FaultRecord(name, at, time.monotonic() - t, note)
            self.result.faults.append(rec)
            self.say(f"   {note}")
            self._sleep(gap)
        marks.append(self._snapshot())
        return marks

    # ---------------------------------------------------------------- drain and reconcile
    def _db_progress(self) -> tuple[int, int, int]:
        """(readings stored, run's violations stored, findings not yet processed)."""
        with psycopg.connect(self.db_url, connect_timeout=5) as conn:
            row = conn.execute(
                """SELECT (SELECT count(*) FROM sensor_readings),
                          (SELECT count(*) FROM violations WHERE event_id LIKE %s),
                          (SELECT count(*) FROM findings WHERE processed_at IS NULL)""",
                (self.run_id + "%",),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def _drain(self) -> None:
        """Stop producing; wait until every message is stored and every finding processed,
        or until nothing has changed for 20 s after the senders emptied (then reconcile)."""
        assert self.sensors is not None
        self.sensors.stop_producing()
        (self.edge_dir / "stop_producing").touch()
        self.say("production stopped; draining")
        t = time.monotonic()
        deadline = t + self.opts.drain_timeout_s
        last: tuple[int, int, int] | None = None
        last_change = t
        while time.monotonic() < deadline:
            self._sleep(0.5)
            if self.sensors.unacked() or self._edge_state().get("depth", 1):
                last_change = time.monotonic()
                continue
            time.sleep(0.5)  # the box's state file lags its outbox by up to half a second
            st = self._edge_state()
            try:
                progress = self._db_progress()
            except psycopg.OperationalError:
                continue
            if (
                progress[0] >= sum(self.sensors.counts.produced.values())
                and progress[1] >= int(st.get("produced", 0))
                and progress[2] == 0
            ):
                break
            if progress != last:
                last, last_change = progress, time.monotonic()
            elif time.monotonic() - last_change > 20:
                break
        self.result.drained_s = time.monotonic() - t
        self.say(f"drained in {self.result.drained_s:.1f} s")

    def _reconcile(self, marks: list[tuple[dict[str, int], int]]) -> None:
        assert self.sensors is not None
        final_readings = dict(self.sensors.counts.produced)
        final_events = int(self._edge_state().get("produced", 0))
        marks[-1] = (final_readings, final_events)
        names = ["before the first fault"] + [f.name for f in self.result.faults]
        sensors = [s.sensor_id for s in SENSORS]
        acked = self.sensors.counts.acked
        with psycopg.connect(self.db_url) as conn:
            readings = stored_readings(conn, sensors)
            events = stored_events(conn, self.run_id + "-ev-")
            self.result.downstream = downstream(conn, sensors, self.run_id + "-ev-", PREFIX)

        def ev(n: int) -> str:
            return event_id(self.run_id, n)

        for i, name in enumerate(names):
            lo, hi = marks[i], marks[i + 1]
            w = Window(
                name, {s: (lo[0].get(s, 0), hi[0].get(s, 0)) for s in sensors}, (lo[1], hi[1])
            )
            t = tally(w, readings, acked, events, ev)
            if i == 0:
                self.result.faults.insert(0, FaultRecord(name, 0.0, tally=t))
            else:
                self.result.faults[i].tally = t
        whole = Window(
            "whole run", {s: (0, final_readings.get(s, 0)) for s in sensors}, (0, final_events)
        )
        self.result.total = tally(whole, readings, acked, events, ev)
        extra = sum(
            n
            for s, c in readings.items()
            for q, n in c.items()
            if q >= final_readings.get(s, 0) or q < 0
        )
        if extra:
            self.result.errors.append(f"{extra} stored reading(s) that no sensor produced")

    # ---------------------------------------------------------------- teardown
    def _teardown(self) -> None:
        if self.sensors is not None:
            self.sensors.close()
        for svc in self.services.values():
            svc.kill(signal.SIGTERM)
        if self.edge_tmpfs:
            subprocess.run(["umount", "-l", str(self.edge_dir)], check=False)  # noqa: S603,S607
        if self.proxy is not None:
            self.proxy.cut()
        if self.mqtt is not None:
            self.mqtt.stop(signal.SIGTERM)
        if self.pg is not None and self.pg.running():
            try:
                self.pg.stop("fast")
            except BrightKitchenError as exc:
                logger.warning("stopping the private PostgreSQL failed: %s", exc)
        if self.opts.keep_dir or not self.result.ok:
            self.say(f"logs and data kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def run(self) -> ChaosResult:
        """Set up, inject every fault, drain, reconcile, tear down."""
        wall = time.monotonic()
        try:
            self._setup()
            marks = self._faults()
            self._drain()
            self._reconcile(marks)
            assert self.sensors is not None
            c = self.sensors.counts
            self.result.sensor_stats = {
                "publishes": c.publishes,
                "resends": c.resends,
                "disconnects": c.disconnects,
            }
            self.result.edge_state = self._edge_state()
            self.result.crashes = [c for s in self.services.values() for c in s.crashes]
        except BrightKitchenError as exc:
            self.result.errors.append(str(exc))
            self.say(f"run aborted: {exc}")
        finally:
            self.result.wall_s = time.monotonic() - wall
            self._teardown()
        return self.result
