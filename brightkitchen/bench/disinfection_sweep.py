"""Measure the disinfection window sweep: catch-up and steady-state cost per sweep.

Not a test: ``python -m brightkitchen.bench.disinfection_sweep [--cabinets N] [--pg-url URL]``
creates a scratch database, registers N sites with one cabinet and three meals a day each,
registered three days ago, then sweeps until nothing is due (the catch-up after a worker
was down: two days of windows, all missed) and times five more sweeps with nothing due
(what every worker pays each ``sweep_interval_s``). Results go in docs/disinfection.md.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid

import psycopg

from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from brightkitchen.db import migrate
from brightkitchen.registry import sync_registry
from ingest.rules.disinfection_windows import sweep_disinfection

MEALS = [("breakfast", "07:00", "07:40"), ("lunch", "11:30", "12:30"), ("dinner", "17:30", "18:20")]


def _site_file(n: int) -> dict[str, object]:
    services = [
        {"meal": m, "start": s, "end": e, "weekdays": [1, 2, 3, 4, 5, 6, 7]} for m, s, e in MEALS
    ]
    return {
        "regions": [{"id": "d", "name": "D"}],
        "sites": [
            {
                "id": f"s{i}",
                "name": "S",
                "region": "d",
                "meals": {"services": services},
                "sensors": [{"id": f"cab{i}", "profile": "disinfection"}],
            }
            for i in range(n)
        ],
    }


def run(pg_url: str, cabinets: int) -> list[str]:
    """Measure in a scratch database on ``pg_url`` (a server URL ending in ``/``); return lines."""
    name = f"bk_bench_disinfection_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url + "postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    url = pg_url + name
    out: list[str] = []
    try:
        migrate(url, timescale="off")
        with psycopg.connect(url) as conn:
            sync_registry(conn, parse_site_file(_site_file(cabinets)))
            conn.execute("UPDATE disinfection_cabinets SET created_at = now() - interval '3 days'")
        with psycopg.connect(url, autocommit=True) as conn:
            per: list[tuple[int, float]] = []
            while True:
                t = time.perf_counter()
                n = sweep_disinfection(conn, utcnow())
                if n == 0:
                    break
                per.append((n, time.perf_counter() - t))
            total = sum(n for n, _ in per)
            spent = sum(d for _, d in per)
            out.append(
                f"catch-up, {cabinets} cabinets x 3 meals x 2 days: {len(per)} sweeps, "
                f"{total} findings, {min(d for _, d in per):.2f}-{max(d for _, d in per):.2f} s "
                f"per sweep, {spent / max(total, 1) * 1000:.1f} ms per window"
            )
            steady = []
            for _ in range(5):
                t = time.perf_counter()
                sweep_disinfection(conn, utcnow())
                steady.append(time.perf_counter() - t)
            out.append(
                f"steady sweep, nothing due, {cabinets} cabinets: "
                f"{min(steady) * 1000:.0f}-{max(steady) * 1000:.0f} ms"
            )
    finally:
        with psycopg.connect(pg_url + "postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return out


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--cabinets", type=int, default=1000)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    for line in run(args.pg_url, args.cabinets):
        print(line)


if __name__ == "__main__":
    main()
