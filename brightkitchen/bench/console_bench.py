"""``brightkitchen bench console``: how long the console's reads take on a region's volumes.

Seeds a database (``--sites`` canteens in 10 districts, ``--tickets`` tickets, a few
active alarms, a stored risk score per canteen, ``--readings`` sensor readings over
``--sensors`` sensors and the past year, and the rollups the charts read; everything by
server-side ``generate_series``, one statement per table or per sensor), starts
``brightkitchen api run`` on it (signed-in users, bearer tokens: the real auth path) and
measures in two phases:

1. one request at a time (``--repeat`` each after two warm-ups), the reads the console's
   pages make:

   * overview: ``/console/api/overview`` (every canteen with its counts and risk score, the
     one request the overview page makes), and for comparison ``GET /api/v1/sites`` and
     ``/console/api/summary`` which give the same numbers in two requests;
   * wall screen: ``/console/api/wall?days=30``;
   * sensor chart, the site page's zoom steps from the rollups: 24 h at 5 min, 7 days,
     30 days and a year at 1 h (the limits the page asks for);
   * the ledger's first page ``GET /api/v1/tickets?limit=25`` and a ticket's detail;
   * the insurance page's risk records (every canteen is insured): its first page and the
     last of 5,000 (``GET /api/v1/insurance/risk-records?limit=50``, ordered by the stored
     score, the page's counts and scores computed on request);

2. ``--clients`` concurrent keep-alive connections (``wrk``) for ``--duration`` seconds
   sending the ticket list / detail mix of ``bench api`` (random filters and pages; four
   of five as an admin, one of five as a district regulator). Back to back: each
   connection sends its next request as soon as the last answer is read, which finds the
   saturation throughput; the latency it reports is mostly the queue (clients ÷ req/s).

3. for each ``--think-ms T``, the same connections as people at a console: each waits a
   random pause (exponential, mean ``T`` ms, at most 4 s: uvicorn closes a keep-alive
   connection idle for 5 s, which wrk counts as an error where a browser reconnects) after
   every answer before its next request,
   so the latency is that of 50 users who each read what they got, at the rate they offer.

Each read reports the client's time (send to whole body read) and the server's own time,
the ``Server-Timing: app;dur=`` header every answer carries (routing, auth, queries,
serialisation; not the wait to be read nor the send), as p50 / p95 / p99 / max. With
``--database NAME`` the database is kept and reused (seeded only while it has no
canteens), so a fix can be measured again without seeding 40 million readings twice.
Results go to stdout and ``--json``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx
import psycopg

from bkcommon.errors import BrightKitchenError
from brightkitchen.bench.api_bench import (
    _cpu_s,
    _loadavg,
    _postgres_cpu,
    _postgres_cpu_since,
    _request,
    _server_url,
    _start_api,
    fresh_database,
)
from brightkitchen.db import migrate
from brightkitchen.demo import free_port, http_up, stop_process, wait_for

REGIONS = 10
REGULATOR_TOKEN = 4  # index in the token list: four admin sessions, then the regulator
_BENCH_PASSWORD = "bench-" + uuid.uuid4().hex  # throwaway users of a throwaway database


@dataclass(frozen=True, slots=True)
class ConsoleBenchOptions:
    """Volumes, repetitions and load of one console benchmark run."""

    sites: int = 5000
    tickets: int = 100_000
    readings: int = 40_000_000
    sensors: int = 100
    repeat: int = 30
    clients: int = 50
    duration_s: float = 30.0
    pg_url: str | None = None
    database: str | None = None
    seed_only: bool = False
    json_path: str = "var/bench/console.json"
    think_ms: tuple[float, ...] = ()


@contextmanager
def kept_database(server_url: str, name: str) -> Iterator[str]:
    """``name`` on ``server_url``, created and migrated when absent, never dropped."""
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as c:
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            c.execute(f'CREATE DATABASE "{name}"')
    url = f"{server_url}/{name}"
    migrate(url)
    yield url


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows of the tables the console reads (planner estimates for the readings tables)."""
    counts: dict[str, int] = {}
    for table in ("sites", "tickets", "alarms", "risk_scores", "sensors"):
        (counts[table],) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
    for table in ("sensor_readings", "readings_5m_store", "readings_1h_store"):
        row = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        ).fetchone()
        if row is not None:
            counts[table] = int(row[0])
    (exact,) = conn.execute("SELECT count(*) FROM sensor_readings").fetchone() or (0,)
    counts["sensor_readings"] = int(exact)
    return counts


def fill(url: str, opts: ConsoleBenchOptions) -> dict[str, Any]:
    """Seed the registry, tickets, alarms, risk scores, readings and rollups server-side.

    A database that already holds canteens is left as it is (``--database`` reuse).
    """
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        (have,) = conn.execute("SELECT count(*) FROM sites").fetchone() or (0,)
        if not have:
            _seed(conn, opts, steps)
        tokens = _tokens(conn)
        scoped = [
            int(r[0])
            for r in conn.execute(
                "SELECT t.id FROM tickets t JOIN sites s ON s.id = t.site_id "
                "WHERE s.region_id = 'r0' ORDER BY t.id LIMIT 5000"
            ).fetchall()
        ]
        sites = [str(r[0]) for r in conn.execute("SELECT id FROM sites ORDER BY id").fetchall()]
        (n_tickets,) = conn.execute("SELECT max(id) FROM tickets").fetchone() or (0,)
        counts = row_counts(conn)
    return {
        "tokens": tokens,
        "sites": sites,
        "regulator_ticket_ids": scoped,
        "max_ticket_id": int(n_tickets or 0),
        "seeded": not have,
        "rows": counts,
        "fill_s": round(time.perf_counter() - t0, 1),
        "fill_steps_s": steps,
    }


def _seed(
    conn: psycopg.Connection[Any], opts: ConsoleBenchOptions, steps: dict[str, float]
) -> None:
    def step(name: str, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> None:
        s = time.perf_counter()
        conn.execute(sql, params)
        steps[name] = round(steps.get(name, 0.0) + time.perf_counter() - s, 1)

    # This session only: no wait for the WAL flush per statement, room to sort and group.
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET maintenance_work_mem = '512MB'")
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
        "ticket_events",
        """INSERT INTO ticket_events (ticket_id, at, actor, kind, note)
           SELECT id, opened_at, 'system', 'opened', '' FROM tickets
           UNION ALL
           SELECT id, opened_at + interval '1 hour', 'officer', 'acknowledged', 'ok'
           FROM tickets""",
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
    step(  # every canteen insured, by one of three insurers (the insurer's risk records)
        "policies",
        """INSERT INTO policies (site_id, insurer, policy_no, cover_cny, premium_cny,
                                 starts_on, ends_on)
           SELECT id, (ARRAY['人保财险','平安产险','太平洋财险'])[1 + mod(abs(hashtext(id)), 3)],
                  'BENCH-' || id, 2000000, 3000, current_date - 100, current_date + 265
           FROM sites""",
    )
    step(
        "risk_scores",
        """INSERT INTO risk_scores (site_id, computed_at, score, components)
           SELECT id, now() - interval '1 hour', (hashtext(id) & 2047) / 20.48, '{}'
           FROM sites""",
    )
    per_sensor = max(1, opts.readings // opts.sensors)
    step_s = max(1, int(365 * 86400 / per_sensor))
    first = datetime.now(UTC) - timedelta(seconds=step_s * per_sensor)
    plain = conn.execute("SELECT to_regclass('readings_5m_store') IS NOT NULL").fetchone()
    readings = """INSERT INTO sensor_readings (sensor_id, ts, temp_c)
                  SELECT %(sensor)s, %(first)s + k * %(step)s * interval '1 second',
                         4 + 3 * sin(k / 40.0) + %(offset)s
                  FROM generate_series(0, %(n)s - 1) k"""
    for s in range(opts.sensors):
        p = {"sensor": f"sensor-{s}", "first": first, "step": step_s, "n": per_sensor,
             "offset": s % 3}  # fmt: skip
        if plain and plain[0]:
            # One pass per sensor, in time order: the readings, their 5-minute buckets from
            # the inserted rows, then the hourly buckets from the 5-minute ones (the same
            # date_bin origin as the ingest writer, so both rollups equal the raw table's).
            step(
                "readings+readings_5m_store",
                f"""WITH ins AS ({readings} RETURNING ts, temp_c)
                    INSERT INTO readings_5m_store
                           (sensor_id, bucket, temp_min, temp_max, temp_sum, n)
                    SELECT %(sensor)s, date_bin(INTERVAL '5 minutes', ts,
                                                TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b,
                           min(temp_c), max(temp_c), sum(temp_c), count(*)
                    FROM ins GROUP BY b ORDER BY b""",
                p,
            )
            step(
                "readings_1h_store",
                """INSERT INTO readings_1h_store
                          (sensor_id, bucket, temp_min, temp_max, temp_sum, n)
                   SELECT sensor_id, date_bin(INTERVAL '1 hour', bucket,
                                              TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b,
                          min(temp_min), max(temp_max), sum(temp_sum), sum(n)
                   FROM readings_5m_store WHERE sensor_id = %(sensor)s
                   GROUP BY 1, b ORDER BY b""",
                p,
            )
        else:
            step("readings", readings, p)
    if not (plain and plain[0]):
        for view in ("readings_5m", "readings_1h"):
            step(view, f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
    vacuum_from = time.perf_counter()
    conn.execute("VACUUM ANALYZE")
    steps["vacuum_analyze"] = round(time.perf_counter() - vacuum_from, 1)


def _tokens(conn: psycopg.Connection[Any]) -> list[str]:
    """Four admin sessions and one district regulator session (r0: a tenth of the sites).

    New users each run (a kept database keeps the earlier runs' ones, expired).
    """
    from api.auth.scope import Role
    from api.auth.users import create_user, issue_token

    tag = uuid.uuid4().hex[:6]
    admin = create_user(
        conn, username=f"bench-admin-{tag}", role=Role.ADMIN, password=_BENCH_PASSWORD
    )
    reg = create_user(
        conn,
        username=f"bench-reg-{tag}",
        role=Role.REGULATOR,
        password=_BENCH_PASSWORD,
        region_id="r0",
    )
    now = datetime.now(UTC)
    return [
        issue_token(conn, principal=p, kind="session", ttl=timedelta(hours=2), now=now).token
        for p in (admin, admin, admin, admin, reg)
    ]


def _pct(xs: list[float], p: float) -> float:
    return round(xs[min(len(xs) - 1, int(len(xs) * p))], 1)


def _server_ms(r: httpx.Response) -> float | None:
    """The app's own milliseconds from ``Server-Timing: app;dur=…`` (None without it)."""
    for part in r.headers.get("server-timing", "").split(","):
        name, _, rest = part.strip().partition(";")
        if name == "app" and rest.startswith("dur="):
            return float(rest[4:])
    return None


def timed(client: httpx.Client, path: str, params: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Client and server p50 / p95 / p99 / max ms of ``repeat`` sequential GETs (2 warm-ups)."""
    for _ in range(2):
        client.get(path, params=params).raise_for_status()
    ms: list[float] = []
    server: list[float] = []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path, params=params)
        ms.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        if (app := _server_ms(r)) is not None:
            server.append(app)
        size = len(r.content)
    ms.sort()
    server.sort()
    out: dict[str, Any] = {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": _pct(ms, 0.95),
        "p99_ms": _pct(ms, 0.99),
        "max_ms": round(ms[-1], 1),
        "bytes": size,
    }
    if server:
        out["server_p50_ms"] = round(statistics.median(server), 1)
        out["server_p95_ms"] = _pct(server, 0.95)
        out["server_max_ms"] = round(server[-1], 1)
    return out


_WRK_LUA = """
local reqs = {%(reqs)s}
local tokens = {%(tokens)s}
local threads = {}
local counter = 0
local i = 0
local out = nil
local think = %(think)s
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  thread:set("start", math.random(#reqs))
  table.insert(threads, thread)
end
function init(args)
  i = start or 0
  out = io.open("%(prefix)s" .. id .. ".txt", "w")
end
function delay()
  if think <= 0 then return 0 end
  -- at most 4 s: the API closes a keep-alive connection idle for 5 s, which wrk (unlike
  -- a browser) counts as an error instead of reconnecting
  return math.min(4000, math.floor(-think * math.log(1 - math.random())))
end
function request()
  i = i %% #reqs + 1
  local r = reqs[i]
  return wrk.format("GET", r[1], {["Authorization"] = "Bearer " .. tokens[r[2]]})
end
function response(status, headers, body)
  local st = headers["server-timing"] or headers["Server-Timing"]
  if st then
    local d = string.match(st, "app;dur=([0-9.]+)")
    if d then out:write(d, " ", status, "\\n") end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.duration))
end
"""


def _wrk_script(data: dict[str, Any], prefix: str, seed: int, think_ms: float = 0.0) -> Path:
    """A Lua script cycling through 20,000 pre-drawn list / detail requests (``bench api``'s
    mix); each wrk thread writes the ``Server-Timing`` of every answer to ``prefix<n>.txt``;
    with ``think_ms`` each connection pauses a random time of that mean before a request."""
    rng = random.Random(seed)
    entries = []
    for i in range(20_000):
        who = i % len(data["tokens"])
        scoped = data["regulator_ticket_ids"] if who == REGULATOR_TOKEN else None
        _, path, params = _request(rng, data["sites"], data["max_ticket_id"], scoped)
        target = path + ("?" + urlencode(params) if params else "")
        entries.append(f'{{"{target}", {who + 1}}}')
    tokens = ", ".join(f'"{t}"' for t in data["tokens"])
    fd, name = tempfile.mkstemp(suffix=".lua", prefix="bk-console-bench-")
    os.close(fd)
    script = Path(name)
    script.write_text(
        _WRK_LUA
        % {"reqs": ", ".join(entries), "tokens": tokens, "prefix": prefix, "think": think_ms}
    )
    return script


def _wrk(base: str, script: Path, clients: int, seconds: float) -> tuple[dict[str, Any], float]:
    """Run wrk once; its summary (client latencies, ms) and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds:.0f}s",
           "--timeout", "30s", "-s", str(script), base]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_RESULT")), None)
    if line is None:
        raise BrightKitchenError(f"wrk gave no result:\n{out}")
    n, status, other, p50, p95, p99, mx, dur = (int(x) for x in line.split()[1:9])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "requests": n,
        "errors": status + other,
        "rps": round(n / (dur / 1e6), 1),
        "p50_ms": round(p50 / 1000, 1),
        "p95_ms": round(p95 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "max_ms": round(mx / 1000, 1),
    }, cpu


def under_load(
    base: str, data: dict[str, Any], opts: ConsoleBenchOptions, api_pid: int, think_ms: float = 0
) -> dict[str, Any]:
    """``opts.clients`` wrk connections on the list / detail mix: client and server times
    (back to back, or each pausing ``think_ms`` on average between answer and request)."""
    workdir = tempfile.mkdtemp(prefix="bk-console-wrk-")
    prefix = f"{workdir}/server-"
    script = _wrk_script(data, prefix, seed=1, think_ms=think_ms)
    try:
        _wrk(base, script, opts.clients, 3)  # warm-up, not counted
        for f in Path(workdir).glob("server-*.txt"):
            f.unlink()
        result: dict[str, Any] = {"think_ms": think_ms, "loadavg_before": _loadavg()}
        api0, pg0, t0 = _cpu_s([api_pid]), _postgres_cpu(), time.perf_counter()
        result["client"], wrk_cpu = _wrk(base, script, opts.clients, opts.duration_s)
        wall = time.perf_counter() - t0
        result["loadavg_after"] = _loadavg()
        server: list[float] = []
        for f in Path(workdir).glob("server-*.txt"):
            server += [float(ln.split()[0]) for ln in f.read_text().splitlines() if ln]
        server.sort()
        if server:
            result["server"] = {
                "requests": len(server),
                "p50_ms": round(statistics.median(server), 1),
                "p95_ms": _pct(server, 0.95),
                "p99_ms": _pct(server, 0.99),
                "max_ms": round(server[-1], 1),
            }
        n = result["client"]["requests"] or 1
        result["cpu_cores"] = {  # CPU seconds / wall seconds: 1.0 = one core busy throughout
            "api": round((_cpu_s([api_pid]) - api0) / wall, 2),
            "client": round(wrk_cpu / wall, 2),
            "postgres_all": round(_postgres_cpu_since(pg0) / wall, 2),
        }
        result["api_cpu_ms_per_request"] = round((_cpu_s([api_pid]) - api0) * 1000 / n, 2)
    finally:
        script.unlink(missing_ok=True)
        for f in Path(workdir).glob("*"):
            f.unlink()
        Path(workdir).rmdir()
    return result


def _cases(now: datetime, ticket_id: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (path, query) of each read timed one at a time (as the pages ask for them)."""

    def chart(days: int, resolution: str, limit: int) -> tuple[str, dict[str, Any]]:
        return (
            "/api/v1/sensors/sensor-0/readings",
            {
                "resolution": resolution,
                "from": (now - timedelta(days=days)).isoformat(),
                "to": now.isoformat(),
                "limit": limit,
            },
        )

    return {
        "overview": ("/console/api/overview", {}),
        "api_sites": ("/api/v1/sites", {}),
        "api_summary": ("/console/api/summary", {}),
        "wall_30d": ("/console/api/wall", {"days": 30}),
        "chart_24h_5m": chart(1, "5m", 400),  # the site page's RANGES (site.js)
        "chart_7d_1h": chart(7, "1h", 400),
        "chart_30d_1h": chart(30, "1h", 800),
        "chart_365d_1h": chart(365, "1h", 9000),
        "ledger_page": ("/api/v1/tickets", {"limit": 25}),
        "ticket_detail": (f"/api/v1/tickets/{ticket_id}", {}),
        "risk_records": ("/api/v1/insurance/risk-records", {"limit": 50}),  # the page's
        "risk_records_last": ("/api/v1/insurance/risk-records", {"limit": 50, "offset": 4950}),
    }


def run_console_bench(opts: ConsoleBenchOptions, out: IO[str] = sys.stdout) -> int:
    """Seed, serve, measure, report; 0 on success."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    server = _server_url(opts)  # type: ignore[arg-type]  # same pg_url field
    database = kept_database(server, opts.database) if opts.database else fresh_database(server)
    results: dict[str, Any] = {}
    load: dict[str, Any] = {}
    paced: list[dict[str, Any]] = []
    with database as url:
        print(f"seeding {opts.sites} canteens, {opts.tickets} tickets, "
              f"{opts.readings} readings ...", file=out, flush=True)  # fmt: skip
        load_before = _loadavg()
        data = fill(url, opts)
        print(f"{'seeded' if data['seeded'] else 'kept database, not seeded'} in "
              f"{data['fill_s']} s: {data['fill_steps_s']}; load average {load_before} -> "
              f"{_loadavg()}", file=out, flush=True)  # fmt: skip
        print(f"rows: {data['rows']}", file=out, flush=True)
        if opts.seed_only:
            return 0
        port = free_port()
        log_path = Path(opts.json_path).with_suffix(".api.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            proc = _start_api(url, port, log, pool_size=max(10, min(100, opts.clients)))
            try:
                base = f"http://127.0.0.1:{port}"
                wait_for(lambda: http_up(f"{base}/api/v1/healthz"), 60, "the API", proc)
                headers = {"Authorization": f"Bearer {data['tokens'][0]}"}
                cases = _cases(datetime.now(UTC), data["regulator_ticket_ids"][0])
                results["loadavg_before"] = _loadavg()
                with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                    for name, (path, params) in cases.items():
                        results[name] = timed(client, path, params, opts.repeat)
                        print(f"{name:15s} {results[name]}", file=out, flush=True)
                results["loadavg_after"] = _loadavg()
                if opts.clients > 0:
                    print(f"{opts.clients} clients (wrk), ticket list / detail, "
                          f"{opts.duration_s:.0f} s ...", file=out, flush=True)  # fmt: skip
                    load = under_load(base, data, opts, proc.pid)
                    print(f"under load: {load}", file=out, flush=True)
                    for think in opts.think_ms:
                        print(f"{opts.clients} clients pausing {think:.0f} ms on average "
                              f"between requests, {opts.duration_s:.0f} s ...",
                              file=out, flush=True)  # fmt: skip
                        paced.append(under_load(base, data, opts, proc.pid, think_ms=think))
                        print(f"with pauses: {paced[-1]}", file=out, flush=True)
            finally:
                stop_process(proc, "api")
    report = {
        "at": datetime.now(UTC).isoformat(),
        "cpus": os.cpu_count(),
        "options": asdict(opts),
        "seed": {k: data[k] for k in ("seeded", "rows", "fill_s", "fill_steps_s")},
        "one_at_a_time": results,
        "under_load": load,
        "under_load_with_pauses": paced,
    }
    Path(opts.json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written {opts.json_path}", file=out)
    errors = sum(run.get("client", {}).get("errors", 0) for run in (load, *paced) if run)
    return 0 if errors == 0 else 1
