"""Benchmark: how fast the ticket engine works off a burst of findings.

A district's network outage makes hundreds of sensors go offline at once; their findings
queue in the outbox ahead of the next real excursion. This measures findings → tickets
per second for 1, 2 and 4 engine threads (``BK_API_ENGINE_THREADS``) on a fresh database.

    .venv/bin/python -m brightkitchen.bench.engine_burst [--findings 1000] [--threads 1,2,4]
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

from api.settings import ApiSettings
from api.workers import Workers
from bkcommon.settings import load_common_settings
from bkcommon.sitefile import parse_site_file
from brightkitchen.db import migrate
from brightkitchen.registry import sync_registry


def _server(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def run_burst(server: str, findings: int, threads: int) -> float:
    """Seconds the engine threads take to turn ``findings`` offline findings into tickets."""
    name = f"bk_burst_{uuid.uuid4().hex[:8]}"
    url = f"{server}/{name}"
    migrate(url)
    sensors = [{"id": f"f{i}", "profile": "fridge"} for i in range(findings)]
    site_file = parse_site_file(
        {
            "regions": [{"id": "r", "name": "R"}],
            "sites": [{"id": "s", "name": "S", "region": "r", "sensors": sensors}],
        }
    )
    try:
        with psycopg.connect(url) as conn:
            sync_registry(conn, site_file)
            conn.execute(
                """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                         occurred_at, payload)
                   SELECT 'burst:' || i, 'alarm_raised', 's', 'f' || i, 'sensor_offline', 2,
                          now(), '{}' FROM generate_series(0, %s - 1) AS i""",
                (findings,),
            )
        workers = Workers(database_url=url, settings=ApiSettings(engine_threads=threads))
        t0 = time.monotonic()
        workers.start()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while True:
                    row = conn.execute(
                        "SELECT count(*) FROM findings WHERE processed_at IS NULL"
                    ).fetchone()
                    if row is not None and row[0] == 0:
                        break
                    time.sleep(0.02)
            return time.monotonic() - t0
        finally:
            workers.stop()
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Print findings/s for each thread count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=1000)
    parser.add_argument("--threads", default="1,2,4", help="comma list of engine thread counts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    server = _server(load_common_settings().database_url.get_secret_value())
    with open("/proc/loadavg", encoding="ascii") as f:
        print(f"load average before: {f.read().split()[:3]}")
    for n in (int(x) for x in args.threads.split(",")):
        dt = run_burst(server, args.findings, n)
        print(
            f"engine threads {n}: {args.findings} findings -> tickets in {dt:.2f} s "
            f"({args.findings / dt:,.0f} findings/s)"
        )


if __name__ == "__main__":
    main()
