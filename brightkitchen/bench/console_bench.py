"""``brightkitchen bench console``: how long the console's reads take on a region's volumes.

Seeds a fresh database (``--sites`` canteens in 10 districts, ``--tickets`` tickets, a
few active alarms, a stored risk score per canteen, ``--readings`` sensor readings over
``--sensors`` sensors and the past year, and the rollups the charts read), starts
``brightkitchen api run`` on it, and times each read the console's main pages make, one
request at a time so the number is the server's own time plus loopback:

* overview: ``/console/api/overview`` (every canteen with its counts and risk score, the
  one request the overview page makes), and for comparison ``GET /api/v1/sites`` and
  ``/console/api/summary`` which give the same numbers in two requests;
* wall screen: ``/console/api/wall?days=30``;
* sensor chart: 30 days at 1 h and 1 day at 5 min of one sensor, from the rollups;
* the ledger's first page: ``GET /api/v1/tickets?limit=25``.

Results (p50, p95, max in ms, and the seeding time) go to stdout and ``--json``.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

from brightkitchen.bench.api_bench import _server_url, _start_api, _tokens, fresh_database
from brightkitchen.demo import free_port, http_up, stop_process, wait_for

REGIONS = 10


@dataclass(frozen=True, slots=True)
class ConsoleBenchOptions:
    """Volumes and repetitions of one console benchmark run."""

    sites: int = 5000
    tickets: int = 100_000
    readings: int = 40_000_000
    sensors: int = 100
    repeat: int = 30
    pg_url: str | None = None
    json_path: str = "var/bench/console.json"


def fill(url: str, opts: ConsoleBenchOptions) -> dict[str, Any]:
    """Seed the registry, tickets, alarms, risk scores, readings and rollups server-side."""
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:

        def step(name: str, sql: str, params: tuple[Any, ...] = ()) -> None:
            s = time.perf_counter()
            conn.execute(sql, params)
            steps[name] = round(time.perf_counter() - s, 1)

        for r in range(REGIONS):
            conn.execute("INSERT INTO regions (id, name) VALUES (%s, %s)", (f"r{r}", f"区 {r}"))
        step(
            "sites",
            """INSERT INTO sites (id, region_id, name)
               SELECT 'site-' || lpad(i::text, 5, '0'), 'r' || (i %% %s), '食堂 ' || i
               FROM generate_series(0, %s - 1) i""",
            (REGIONS, opts.sites),
        )
        step(
            "sensors",
            """INSERT INTO sensors (id, site_id, name, profile, params)
               SELECT 'sensor-' || i, 'site-' || lpad((i %% %s)::text, 5, '0'), '冷藏柜 ' || i,
                      'fridge', '{"low_c": 0, "high_c": 8}'
               FROM generate_series(0, %s - 1) i""",
            (opts.sites, opts.sensors),
        )
        step(
            "tickets",
            """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status,
                                   title, opened_at, due_at, closed_at, last_occurrence_at)
               SELECT 'ZG-C-' || i, 'site-' || lpad((i %% %s)::text, 5, '0'),
                      (ARRAY['alarm','violation','inspection'])[1 + i %% 3],
                      (ARRAY['temp_high','no_mask','pest'])[1 + i %% 3], 'subj-' || i,
                      1 + i %% 3, CASE WHEN i %% 5 = 0 THEN 'open' ELSE 'closed' END,
                      'bench ' || i, o, o + interval '72 hours',
                      CASE WHEN i %% 5 = 0 THEN NULL ELSE o + interval '20 hours' END, o
               FROM (SELECT i, now() - (i %% 180) * interval '1 day'
                                     - (i %% 24) * interval '1 hour' AS o
                     FROM generate_series(1, %s) i) g""",
            (opts.sites, opts.tickets),
        )
        step(
            "alarms",
            """INSERT INTO alarms (alarm_key, site_id, sensor_id, rule, tier, started_at,
                                   raised_at)
               SELECT 'bench-' || i, 'site-' || lpad((i * 37 %% %s)::text, 5, '0'), NULL,
                      'sensor_offline', 2, now() - interval '1 hour', now()
               FROM generate_series(1, %s) i""",
            (opts.sites, max(1, opts.sites // 50)),
        )
        step(
            "risk_scores",
            """INSERT INTO risk_scores (site_id, computed_at, score, components)
               SELECT id, now() - interval '1 hour', (hashtext(id) & 2047) / 20.48, '{}'
               FROM sites""",
        )
        per_sensor = max(1, opts.readings // opts.sensors)
        step_s = max(1, int(365 * 86400 / per_sensor))
        step(
            "readings",
            """INSERT INTO sensor_readings (sensor_id, ts, temp_c)
               SELECT 'sensor-' || s, now() - k * %s * interval '1 second',
                      4 + 3 * sin(k / 40.0) + s %% 3
               FROM generate_series(0, %s - 1) s, generate_series(1, %s) k""",
            (step_s, opts.sensors, per_sensor),
        )
        plain = conn.execute("SELECT to_regclass('readings_5m_store')").fetchone()
        if plain and plain[0]:
            for table, seconds in (("readings_5m_store", 300), ("readings_1h_store", 3600)):
                step(
                    table,
                    f"""INSERT INTO {table} (sensor_id, bucket, temp_min, temp_max, temp_sum, n)
                        SELECT sensor_id,
                               to_timestamp(floor(extract(epoch FROM ts) / {seconds}) * {seconds}),
                               min(temp_c), max(temp_c), sum(temp_c), count(*)
                        FROM sensor_readings GROUP BY 1, 2""",
                )
        else:
            for view in ("readings_5m", "readings_1h"):
                step(view, f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
        conn.execute("VACUUM ANALYZE")
        (count,) = conn.execute("SELECT count(*) FROM sensor_readings").fetchone() or (0,)
        tokens = _tokens(conn)
    return {
        "token": tokens[0],
        "readings_in_table": int(count),
        "fill_s": round(time.perf_counter() - t0, 1),
        "fill_steps_s": steps,
    }


def timed(client: httpx.Client, path: str, params: dict[str, Any], repeat: int) -> dict[str, Any]:
    """p50 / p95 / max milliseconds of ``repeat`` sequential GETs (after two warm-ups)."""
    for _ in range(2):
        client.get(path, params=params).raise_for_status()
    ms: list[float] = []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path, params=params)
        ms.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        size = len(r.content)
    ms.sort()
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 1),
        "max_ms": round(ms[-1], 1),
        "bytes": size,
    }


def run_console_bench(opts: ConsoleBenchOptions, out: IO[str] = sys.stdout) -> int:
    """Seed, serve, measure, report; 0 on success."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    server = _server_url(opts)  # type: ignore[arg-type]  # same pg_url field
    now = datetime.now(UTC)
    with fresh_database(server) as url:
        print(f"seeding {opts.sites} canteens, {opts.tickets} tickets, "
              f"{opts.readings} readings ...", file=out, flush=True)  # fmt: skip
        data = fill(url, opts)
        print(f"seeded in {data['fill_s']} s: {data['fill_steps_s']}", file=out, flush=True)
        port = free_port()
        log_path = Path(opts.json_path).with_suffix(".api.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            proc = _start_api(url, port, log)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda: http_up(f"{base}/api/v1/healthz"), 60, "the API", proc)
                headers = {"Authorization": f"Bearer {data['token']}"}
                day = timedelta(days=1)
                cases: dict[str, tuple[str, dict[str, Any]]] = {
                    "overview": ("/console/api/overview", {}),
                    "api_sites": ("/api/v1/sites", {}),
                    "api_summary": ("/console/api/summary", {}),
                    "wall_30d": ("/console/api/wall", {"days": 30}),
                    "chart_30d_1h": (
                        "/api/v1/sensors/sensor-0/readings",
                        {
                            "resolution": "1h",
                            "from": (now - 30 * day).isoformat(),
                            "to": now.isoformat(),
                            "limit": 800,
                        },
                    ),
                    "chart_1d_5m": (
                        "/api/v1/sensors/sensor-0/readings",
                        {
                            "resolution": "5m",
                            "from": (now - day).isoformat(),
                            "to": now.isoformat(),
                            "limit": 400,
                        },
                    ),
                    "ledger_page": ("/api/v1/tickets", {"limit": 25}),
                }
                results: dict[str, Any] = {}
                with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                    for name, (path, params) in cases.items():
                        results[name] = timed(client, path, params, opts.repeat)
                        print(f"{name:18s} {results[name]}", file=out, flush=True)
            finally:
                stop_process(proc, "api")
    report = {"options": asdict(opts), "seed": {k: v for k, v in data.items() if k != "token"},
              "results": results}  # fmt: skip
    Path(opts.json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written {opts.json_path}", file=out)
    return 0
