"""What the ingest writer alone sustains, without MQTT: validation, then batches into PostgreSQL.

``bench ingest`` measures the whole worker, where validation, the writer's Python side,
the rule engine and the broker's socket share one interpreter; this splits off what the
database path costs. Gateway batches of the benchmark fleet (100 sites × 10 sensors,
100 readings a message) are validated once (CPU µs per reading), then written in
batches of ``messages`` messages with the rule engine, once per variant, alternating
variants so a machine whose load changes treats them alike. Each round uses a fresh,
dropped database. Besides wall-clock readings/s it prints CPU per reading of this
process (writer + rules) and of its PostgreSQL backend (from ``/proc``, so the database
must run on this machine): on a shared machine the CPU figures hold where wall-clock
rates swing with other people's load.

    .venv/bin/python -m brightkitchen.bench.writer_bench --messages 50,200 --rounds 2

``--statuses 500`` measures edge-box status messages instead (10 from each of 500 boxes,
batches of 500 messages).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import IO

import psycopg

from bkcommon.timeutil import utcnow
from brightkitchen.bench.ingest_bench import BenchOptions, _emissions, _server_url, fresh_database
from brightkitchen.bench.measure import cpu_s
from brightkitchen.simulate.fleet import generate_site_file
from ingest.directory import SensorDirectory
from ingest.validate import Validator
from ingest.worker import make_rule_engine, tune_gc
from ingest.writer import BatchWriter, Item


def _cpu_s(pid: int) -> float:
    """CPU seconds of the PostgreSQL backend (it runs on this machine)."""
    value = cpu_s(pid)
    if value is None:
        raise OSError(f"/proc/{pid}/stat: no such process (is PostgreSQL on this machine?)")
    return value


def run(readings: int, messages: list[int], rounds: int, pg_url: str | None, out: IO[str]) -> None:
    """Print validation µs per reading and writer readings/s per variant and round."""
    tune_gc()  # as in the worker process
    opts = BenchOptions(readings=readings, pg_url=pg_url)
    site_file = generate_site_file(
        opts.sites, opts.per_profile, site_prefix="sim", webhook_url=None
    )
    ems = _emissions(opts, "bk", opts.batch_size)
    n = sum(e.n_readings for e in ems)
    server = _server_url(opts)
    print(f"writer bench: {n} readings in {len(ems)} gateway batches", file=out)
    for rnd in range(1, rounds + 1):
        for size in messages:
            for fast in (True, False):
                with fresh_database(server, site_file) as db, psycopg.connect(db) as conn:
                    directory = SensorDirectory()
                    directory.refresh(conn)
                    conn.commit()
                    validator = Validator(directory, "bk")
                    t0 = time.process_time()
                    items = []
                    for e in ems:
                        now = utcnow()
                        items.append(
                            Item(e.topic, e.payload, now, validator(e.topic, e.payload, now))
                        )
                    v_s = time.process_time() - t0
                    writer = BatchWriter(make_rule_engine(directory), fast_insert=fast)
                    backend = conn.info.backend_pid
                    pg0, py0, t0 = _cpu_s(backend), time.process_time(), time.perf_counter()
                    for i in range(0, len(items), size):
                        writer.write(conn, items[i : i + size])
                    w_s = time.perf_counter() - t0
                    py_us = (time.process_time() - py0) / n * 1e6
                    pg_us = (_cpu_s(backend) - pg0) / n * 1e6
                print(
                    f"round {rnd}  batch {size * opts.batch_size:6d} readings  "
                    f"{'plain INSERT' if fast else 'ON CONFLICT '}  validation CPU "
                    f"{v_s / n * 1e6:5.2f} µs  write {n / w_s:8,.0f} readings/s  CPU per "
                    f"reading: writer+rules {py_us:5.2f} µs, PostgreSQL {pg_us:5.2f} µs  "
                    f"load {os.getloadavg()[0]:.2f}",
                    file=out,
                    flush=True,
                )


def run_statuses(boxes: int, per_box: int, batch: int, pg_url: str | None, out: IO[str]) -> None:
    """Print CPU per edge-box status: validation, writer, PostgreSQL backend."""
    from datetime import timedelta

    from bkcommon.messages import EdgeStatus, encode
    from bkcommon.topics import status_topic
    from brightkitchen.bench.district import DistrictOptions, district_site_file

    site_file = district_site_file(DistrictOptions(canteens=boxes, probes=1), "http://127.0.0.1:1")
    t0 = utcnow() - timedelta(hours=1)
    msgs = []
    for k in range(per_box):
        for i in range(boxes):
            site = f"d-site-{i:03d}"
            box = f"{site}-box"
            status = EdgeStatus(box_id=box, ts=t0 + timedelta(seconds=30 * k), online=True)
            msgs.append((status_topic(site, box, "bk"), encode(status)))
    n = len(msgs)
    server = _server_url(BenchOptions(pg_url=pg_url))
    with fresh_database(server, site_file) as db, psycopg.connect(db) as conn:
        directory = SensorDirectory()
        directory.refresh(conn)
        conn.commit()
        validator = Validator(directory, "bk")
        c0 = time.process_time()
        items = [Item(t, raw, utcnow(), validator(t, raw, utcnow())) for t, raw in msgs]
        v_s = time.process_time() - c0
        writer = BatchWriter()
        backend = conn.info.backend_pid
        pg0, py0 = _cpu_s(backend), time.process_time()
        for i in range(0, n, batch):
            writer.write(conn, items[i : i + batch])
        py_us = (time.process_time() - py0) / n * 1e6
        pg_us = (_cpu_s(backend) - pg0) / n * 1e6
    print(
        f"{n} statuses of {boxes} boxes in batches of {batch}: CPU per status: validation "
        f"{v_s / n * 1e6:.1f} µs, writer {py_us:.1f} µs, PostgreSQL {pg_us:.1f} µs  "
        f"load {os.getloadavg()[0]:.2f}",
        file=out,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m brightkitchen.bench.writer_bench``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readings", type=int, default=200_000)
    p.add_argument("--messages", default="50", help="messages (of 100 readings) per batch, list")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pg-url", help="server URL without database (default from BK_DATABASE_URL)")
    p.add_argument(
        "--statuses",
        type=int,
        default=0,
        metavar="BOXES",
        help="instead: 10 statuses each of this many edge boxes, batches of 500 messages",
    )
    a = p.parse_args(argv)
    if a.statuses:
        run_statuses(a.statuses, 10, 500, a.pg_url, sys.stdout)
        return 0
    run(a.readings, [int(x) for x in a.messages.split(",")], a.rounds, a.pg_url, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
