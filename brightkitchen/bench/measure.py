"""Measuring a running district: what was published, what the ingest worker committed,
how late, how long alarms took to reach the webhook sink, and what each process used.

Everything is read from outside the processes under test (the worker's Prometheus
endpoint, ``/proc``, ``pg_stat_activity``), so measuring changes nothing in them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from brightkitchen.bench.ingest_bench import peak_rss_mib
from brightkitchen.demo import Sink
from brightkitchen.simulate.fleet import Emission


class Counted:
    """Wraps emissions and counts what has been handed to the publisher, by kind."""

    def __init__(self, emissions: Iterable[Emission]) -> None:
        self._it = iter(emissions)
        self.readings = 0
        self.messages = 0
        self.violations = 0
        self.statuses = 0

    def __iter__(self) -> Iterator[Emission]:
        for em in self._it:
            self.messages += 1
            self.readings += em.n_readings
            if em.n_readings == 0:
                if "/violation" in em.topic:
                    self.violations += 1
                else:
                    self.statuses += 1
            yield em


_METRIC = re.compile(r"^(bk_ingest_[a-z_]+?)(?:_total)?(?:\{[^}]*\})? ([0-9.e+-]+)$", re.M)


def scrape(port: int) -> dict[str, float]:
    """The ingest worker's Prometheus counters and gauges (labels summed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        out[name] = out.get(name, 0.0) + float(value)
    return out


class Monitor:
    """Samples published vs committed readings twice a second while a phase runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[tuple[float, int, int, float]] = []  # t, published, inserted, lag
        self.source: Counted | None = None
        self.base_published = 0
        self.db_url: str | None = None
        self.pg_cpu: dict[int, tuple[float, float]] = {}  # backend pid -> (first, last) CPU s
        self._first_pg_sample = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="district-monitor", daemon=True)

    def start(self) -> None:
        """Begin sampling in a daemon thread."""
        self._thread.start()

    def inserted(self, attempts: int = 10) -> int:
        """Readings the worker has committed so far (its metrics endpoint may be slow to
        answer on a saturated machine: a few tries before giving up)."""
        for _ in range(attempts - 1):
            try:
                return int(scrape(self.port).get("bk_ingest_inserted", 0))
            except OSError:
                time.sleep(0.5)
        return int(scrape(self.port).get("bk_ingest_inserted", 0))

    def _sample_backends(self, conn: psycopg.Connection[Any]) -> None:
        """CPU of this database's backends; one first seen later started at zero."""
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall()
        for (pid,) in rows:
            cpu = cpu_s(int(pid))
            if cpu is None:
                continue
            first = self.pg_cpu.get(pid, (cpu if self._first_pg_sample else 0.0, cpu))[0]
            self.pg_cpu[pid] = (first, cpu)
        self._first_pg_sample = False

    def pg_cpu_s(self) -> float:
        """CPU seconds this database's backends used while sampled (exited ones until then)."""
        return sum(last - first for first, last in self.pg_cpu.values())

    def _run(self) -> None:
        conn = psycopg.connect(self.db_url, autocommit=True) if self.db_url else None
        try:
            self._loop(conn)
        finally:
            if conn is not None:
                conn.close()

    def _loop(self, conn: psycopg.Connection[Any] | None) -> None:
        while not self._stop.wait(0.5):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._sample_backends(conn)
            with contextlib.suppress(OSError, ValueError):
                m = scrape(self.port)
                src = self.source
                published = self.base_published + (src.readings if src else 0)
                self.samples.append(
                    (
                        time.monotonic(),
                        published,
                        int(m.get("bk_ingest_inserted", 0)),
                        m.get("bk_ingest_lag_seconds", 0.0),
                    )
                )

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(5)


def lag_stats(samples: list[tuple[float, int, int, float]]) -> dict[str, float | int | None]:
    """Per sample: seconds until the committed count reached what was published by then."""
    lags: list[float] = []
    j = 0
    for t, published, _ins, _lag in samples:
        while j < len(samples) and samples[j][2] < published:
            j += 1
        if j == len(samples):
            break
        lags.append(max(0.0, samples[j][0] - t))
    backlog = max((p - i for _t, p, i, _l in samples), default=0)
    # What the worker itself reports (bk_ingest_lag_seconds: the age of its oldest queued
    # message) misses a backlog still at the broker; kept to compare with the true lag.
    gauge = round(max((g for _t, _p, _i, g in samples), default=0.0), 2)
    if not lags:
        return {"p50": None, "p99": None, "max": None, "backlog": max(backlog, 0), "gauge": gauge}
    lags.sort()
    return {
        "p50": round(statistics.median(lags), 2),
        "p99": round(lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))], 2),
        "max": round(lags[-1], 2),
        "backlog": max(backlog, 0),
        "gauge": gauge,
    }


def latency_stats(sent: dict[str, float], sink: Sink) -> dict[str, Any]:
    """p50 / p99 / max of probe reading publish → its webhook at the sink."""
    arrived: dict[str, float] = {}
    with sink.lock:
        items = list(sink.received)
    for item in items:
        if not str(item["path"]).endswith("/probe"):
            continue
        text = json.dumps(item["payload"], ensure_ascii=False)
        for p in sent:
            if p not in arrived and re.search(rf"\b{re.escape(p)}\b", text):
                arrived[p] = float(item["at"])
    each = {p: round(arrived[p] - sent[p], 3) for p in sorted(arrived)}
    lat = sorted(each.values())
    out: dict[str, Any] = {"probes": len(sent), "received": len(lat)}
    if lat:
        out.update(
            p50_s=round(statistics.median(lat), 3),
            p99_s=round(lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))], 3),
            max_s=round(lat[-1], 3),
            over_1s=sum(1 for x in lat if x > 1.0),
            each_s=each,
        )
    return out


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (and its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


def pids_named(name: str, arg: str = "") -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if (d / "comm").read_text().strip() == name and arg in cmd:
                out.append(int(d.name))
    return out


class Resources:
    """CPU and peak memory of the district's processes over the run."""

    def __init__(self, procs: dict[str, int]) -> None:
        self.procs = procs
        self.t0 = time.monotonic()
        self.cpu0 = {n: cpu_s(p) or 0.0 for n, p in procs.items()}
        self.self0 = time.process_time()
        self.load0 = os.getloadavg()

    def report(self, pg_cpu_s: float) -> dict[str, Any]:
        """Cores used (CPU s / wall s) and peak RSS per process, and the load average.

        ``pg_cpu_s`` is what the run's own PostgreSQL backends used (the server is shared:
        its background writer, WAL writer and checkpointer are not in it).
        """
        wall = max(time.monotonic() - self.t0, 1e-6)
        out: dict[str, Any] = {"wall_s": round(wall, 1)}
        for name, pid in self.procs.items():
            cpu = cpu_s(pid)
            out[name] = {
                "cpu_s": None if cpu is None else round(cpu - self.cpu0[name], 1),
                "cores": None if cpu is None else round((cpu - self.cpu0[name]) / wall, 2),
                "peak_rss_mib": None if (r := peak_rss_mib(pid)) is None else round(r, 1),
            }
        out["postgresql_backends"] = {
            "cpu_s": round(pg_cpu_s, 1),
            "cores": round(pg_cpu_s / wall, 2),
        }
        own = time.process_time() - self.self0
        out["publisher_and_sink"] = {"cpu_s": round(own, 1), "cores": round(own / wall, 2)}
        out["load_before"] = [round(x, 2) for x in self.load0]
        out["load_after"] = [round(x, 2) for x in os.getloadavg()]
        return out
