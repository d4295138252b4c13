"""``brightkitchen bench api``: ticket list and detail latency at 100k tickets, 50 clients.

A fresh database is migrated and filled by COPY: ``--sites`` canteens in 10 regions,
``--tickets`` tickets spread over 180 days (a fifth still open, the rest closed; several
rules, tiers and occurrences) with two timeline events each. The API runs as
``--api-procs`` separate ``brightkitchen api run --no-workers`` processes (behind no
balancer: the clients spread over them round-robin, as a load balancer would). Then
``--clients`` concurrent keep-alive connections, signed in (four of five requests as an
admin seeing every site, one of five as a district regulator seeing a tenth of them),
send back to back for ``--duration`` seconds an even mix of ticket-list requests (random
filters: none, status, site, rule, tier, status + tier; random page offsets 0..1000) and
ticket-detail requests (a random ticket of the caller's sites, with its timeline and
findings). Latency is measured at the client from send to the whole body read.

The load generator is ``wrk`` (C, a few per cent of a core) when it is installed, else
(or with ``--client httpx``) httpx async clients in this process, which cost about as
much CPU as the server and so share the machine with it. The CPU seconds of the API
processes, the client and every PostgreSQL process, and the load average before and
after, are reported with the latencies: on a shared machine they say how much of it the
run had.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import psycopg

from bkcommon.errors import BrightKitchenError
from bkcommon.settings import load_common_settings
from brightkitchen.db import migrate
from brightkitchen.demo import REPO_ROOT, free_port, http_up, stop_process, wait_for

RULES = ("temp_high", "temp_low", "sensor_offline", "no_mask", "camera_offline", "pest")
REGIONS = 10
WARMUP_S = 3.0
REGULATOR_TOKEN = 4  # index in the token list: four admin sessions, then the regulator
_BENCH_PASSWORD = "bench-" + uuid.uuid4().hex  # throwaway users of a throwaway database


@dataclass(frozen=True, slots=True)
class ApiBenchOptions:
    """What to run and where."""

    tickets: int = 100_000
    sites: int = 500
    clients: int = 50
    duration_s: float = 30.0
    api_procs: int = 1
    pg_url: str | None = None
    json_path: str = "var/bench/api.json"
    seed: int = 1
    client: str = "auto"  # "wrk", "httpx", or "auto" (wrk when installed)


@dataclass
class Stats:
    """Latencies (ms) of one kind of request."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self, seconds: float) -> dict[str, float]:
        """p50 / p95 / p99 / max in ms, requests per second, errors."""
        xs = sorted(self.latencies_ms)
        if not xs:
            return {"requests": 0, "errors": self.errors}

        def pct(p: float) -> float:
            return round(xs[min(len(xs) - 1, int(p * len(xs)))], 1)

        return {
            "requests": len(xs),
            "errors": self.errors,
            "rps": round(len(xs) / seconds, 1),
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": round(xs[-1], 1),
            "mean_ms": round(statistics.fmean(xs), 1),
        }


def _server_url(opts: ApiBenchOptions) -> str:
    if opts.pg_url:
        return opts.pg_url.rstrip("/")
    parts = urlsplit(load_common_settings().database_url.get_secret_value())
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, migrated database on ``server_url``, dropped afterwards."""
    name = f"bk_bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{server_url}/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _copy(conn: psycopg.Connection[Any], sql: str, rows: io.StringIO) -> None:
    rows.seek(0)
    with conn.cursor() as cur, cur.copy(sql) as cp:
        while chunk := rows.read(1 << 20):
            cp.write(chunk)


def fill(url: str, opts: ApiBenchOptions) -> dict[str, Any]:
    """Registry, tickets and events by COPY; returns what the clients need to ask for."""
    rng = random.Random(opts.seed)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        for r in range(REGIONS):
            conn.execute("INSERT INTO regions (id, name) VALUES (%s, %s)", (f"r{r}", f"区 {r}"))
        sites = [f"site-{i:05d}" for i in range(opts.sites)]
        conn.execute(
            "INSERT INTO sites (id, region_id, name) "
            "SELECT 'site-' || lpad(i::text, 5, '0'), 'r' || (i %% %s), '食堂 ' || i "
            "FROM generate_series(0, %s - 1) i",
            (REGIONS, opts.sites),
        )
        tickets = io.StringIO()
        events = io.StringIO()
        for i in range(1, opts.tickets + 1):
            site = sites[rng.randrange(len(sites))]
            rule = RULES[rng.randrange(len(RULES))]
            tier = rng.choice((1, 2, 2, 3))
            opened = now - timedelta(seconds=rng.uniform(0, 180 * 86400))
            due = opened + timedelta(hours=(24, 72, 168)[tier - 1])
            is_open = rng.random() < 0.2
            status = rng.choice(("open", "acknowledged", "rectified")) if is_open else "closed"
            closed = (
                r"\N" if is_open else (opened + timedelta(hours=rng.uniform(1, 200))).isoformat()
            )
            occ = 1 + int(rng.expovariate(1.0))
            tickets.write(
                f"{i}\tZG-B-{i}\t{site}\talarm\t{rule}\tsubj-{i}\t{tier}\t{status}\t"
                f"{rule} subj-{i}\t{opened.isoformat()}\t{due.isoformat()}\t{closed}\t{occ}\t"
                f"{opened.isoformat()}\t{{}}\n"
            )
            events.write(f"{i}\t{opened.isoformat()}\tsystem\topened\t\t{{}}\n")
            events.write(f"{i}\t{opened.isoformat()}\tofficer\tacknowledged\tok\t{{}}\n")
        _copy(
            conn,
            "COPY tickets (id, ticket_no, site_id, source, rule, subject, tier, status, title, "
            "opened_at, due_at, closed_at, occurrences, last_occurrence_at, details) FROM STDIN",
            tickets,
        )
        _copy(
            conn,
            "COPY ticket_events (ticket_id, at, actor, kind, note, data) FROM STDIN",
            events,
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('tickets', 'id'), %s)", (opts.tickets,))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE ticket_events")
        tokens = _tokens(conn)
        scoped = [
            int(r[0])
            for r in conn.execute(
                "SELECT t.id FROM tickets t JOIN sites s ON s.id = t.site_id "
                "WHERE s.region_id = 'r0' ORDER BY random() LIMIT 5000"
            ).fetchall()
        ]
    return {
        "sites": sites,
        "tokens": tokens,
        "regulator_ticket_ids": scoped,
        "fill_s": round(time.perf_counter() - t0, 1),
    }


def _tokens(conn: psycopg.Connection[Any]) -> list[str]:
    """Four admin sessions and one district regulator session (r0: a tenth of the sites)."""
    from api.auth.scope import Role
    from api.auth.users import create_user, issue_token

    admin = create_user(conn, username="bench-admin", role=Role.ADMIN, password=_BENCH_PASSWORD)
    reg = create_user(
        conn, username="bench-reg", role=Role.REGULATOR, password=_BENCH_PASSWORD, region_id="r0"
    )
    now = datetime.now(UTC)
    return [
        issue_token(conn, principal=p, kind="session", ttl=timedelta(hours=2), now=now).token
        for p in (admin, admin, admin, admin, reg)
    ]


def _request(
    rng: random.Random, sites: list[str], n_tickets: int, scoped_ids: list[int] | None = None
) -> tuple[str, str, dict[str, Any]]:
    """(kind, path, query) of one random request (a detail of ``scoped_ids`` when given)."""
    if rng.random() < 0.5:
        ticket = rng.choice(scoped_ids) if scoped_ids else rng.randint(1, n_tickets)
        return "detail", f"/api/v1/tickets/{ticket}", {}
    params: dict[str, Any] = {"limit": 50, "offset": 50 * rng.randrange(0, 21)}
    f = rng.randrange(6)
    if f == 1:
        params["status"] = "open"
    elif f == 2:
        params["site_id"] = sites[rng.randrange(len(sites))]
        params["offset"] = 0
    elif f == 3:
        params["rule"] = RULES[rng.randrange(len(RULES))]
    elif f == 4:
        params["tier"] = rng.choice((1, 2, 3))
    elif f == 5:
        params.update(status="closed", tier=2)
    return "list", "/api/v1/tickets", params


async def _load(
    bases: list[str], data: dict[str, Any], opts: ApiBenchOptions
) -> tuple[dict[str, Stats], float]:
    """Run the clients; return stats per kind and the measured seconds."""
    stats = {"list": Stats(), "detail": Stats()}
    start = time.perf_counter()
    measure_from = start + WARMUP_S
    stop_at = measure_from + opts.duration_s
    limits = httpx.Limits(max_connections=opts.clients, max_keepalive_connections=opts.clients)

    async def client(k: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(opts.seed * 1000 + k)
        who = k % len(data["tokens"])
        headers = {"Authorization": f"Bearer {data['tokens'][who]}"}
        scoped = data["regulator_ticket_ids"] if who == REGULATOR_TOKEN else None
        base = bases[k % len(bases)]
        while (t := time.perf_counter()) < stop_at:
            kind, path, params = _request(rng, data["sites"], opts.tickets, scoped)
            try:
                r = await http.get(base + path, params=params, headers=headers)
                ok = r.status_code == 200 or (kind == "detail" and r.status_code == 404)
            except httpx.HTTPError:
                ok = False
            done = time.perf_counter()
            if t >= measure_from and done <= stop_at:
                if ok:
                    stats[kind].latencies_ms.append((done - t) * 1000)
                else:
                    stats[kind].errors += 1

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(k, http) for k in range(opts.clients)))
    return stats, opts.duration_s


_WRK_LUA = """
local reqs = {%(reqs)s}
local tokens = {%(tokens)s}
local i = 0
function setup(thread) thread:set("start", math.random(#reqs)) end
function init(args) i = start or 0 end
function request()
  i = i %% #reqs + 1
  local r = reqs[i]
  return wrk.format("GET", r[1], {["Authorization"] = "Bearer " .. tokens[r[2]]})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%.1f\\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.duration, latency.mean))
end
"""


def _wrk_script(data: dict[str, Any], opts: ApiBenchOptions) -> Path:
    """A Lua script cycling through 20,000 pre-drawn requests (same mix as the httpx clients)."""
    rng = random.Random(opts.seed)
    entries = []
    for i in range(20_000):
        who = i % len(data["tokens"])
        scoped = data["regulator_ticket_ids"] if who == REGULATOR_TOKEN else None
        _, path, params = _request(rng, data["sites"], opts.tickets, scoped)
        target = path + ("?" + urlencode(params) if params else "")
        entries.append(f'{{"{target}", {who + 1}}}')
    tokens = ", ".join(f'"{t}"' for t in data["tokens"])
    script = Path(tempfile.mkstemp(suffix=".lua", prefix="bk-bench-")[1])
    script.write_text(_WRK_LUA % {"reqs": ", ".join(entries), "tokens": tokens})
    return script


def _run_wrk(
    wrk: str, bases: list[str], script: Path, opts: ApiBenchOptions, seconds: float
) -> tuple[dict[str, Any], float]:
    """One wrk per API process (clients split between them); merged summary and wrk CPU s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    runs: list[subprocess.Popen[str]] = []
    for k, base in enumerate(bases):
        conns = opts.clients // len(bases) + (1 if k < opts.clients % len(bases) else 0)
        cmd = [wrk, "-t", str(min(2, conns)), "-c", str(conns), "-d", f"{seconds:.0f}s",
               "--timeout", "30s", "-s", str(script), base]  # fmt: skip
        runs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))  # noqa: S603
    outputs = [p.communicate()[0] for p in runs]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    parts = []
    for out in outputs:
        line = next((ln for ln in out.splitlines() if ln.startswith("WRK_RESULT")), None)
        if line is None:
            raise BrightKitchenError(f"wrk gave no result:\n{out}")
        n, status, other, p50, p95, p99, mx, dur = (int(x) for x in line.split()[1:9])
        parts.append({"requests": n, "errors": status + other, "p50": p50, "p95": p95,
                      "p99": p99, "max": mx, "duration_us": dur})  # fmt: skip
    measured_s = max(p["duration_us"] for p in parts) / 1e6
    total = sum(p["requests"] for p in parts)

    def worst(key: str) -> float:  # per-process percentiles: report the worst one
        return round(max(p[key] for p in parts) / 1000, 1)

    summary = {
        "requests": total,
        "errors": sum(p["errors"] for p in parts),
        "rps": round(total / measured_s, 1),
        "p50_ms": worst("p50"),
        "p95_ms": worst("p95"),
        "p99_ms": worst("p99"),
        "max_ms": worst("max"),
    }
    return summary, cpu_s


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds so far of ``pids`` (those that still exist)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every postgres process, by pid."""
    return {pid: _cpu_s([pid]) for pid in _postgres_pids()}


def _postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds all postgres processes used since ``before`` (new backends from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in _postgres_cpu().items())


def _postgres_pids() -> list[int]:
    """Every process named postgres on this machine (the server is shared: all of them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def _loadavg() -> str:
    """The first three fields of /proc/loadavg ('' where there is none)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def _start_api(url: str, port: int, log: IO[bytes], pool_size: int = 20) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "BK_DATABASE_URL": url,
            "BK_LOG_LEVEL": "WARNING",
            "BK_API_DB_POOL_SIZE": str(pool_size),
            "BK_API_WORKERS_ENABLED": "false",
        }
    )
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "brightkitchen.cli",
            "--log-level",
            "WARNING",
            "api",
            "run",
            "--no-workers",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _client_tool(opts: ApiBenchOptions) -> str | None:
    """The wrk executable to use, or None for the httpx clients."""
    if opts.client == "httpx":
        return None
    wrk = shutil.which("wrk")
    if wrk is None and opts.client == "wrk":
        raise BrightKitchenError(
            "wrk is not installed (apt-get install wrk), or use --client httpx"
        )
    return wrk


def _measure(
    bases: list[str], data: dict[str, Any], opts: ApiBenchOptions, api_pids: list[int]
) -> dict[str, Any]:
    """Run the load; latencies per kind (httpx) or overall (wrk), CPU of each party, load."""
    wrk = _client_tool(opts)
    result: dict[str, Any] = {"client": "wrk" if wrk else "httpx", "loadavg_before": _loadavg()}
    if wrk is not None:
        script = _wrk_script(data, opts)
        try:
            _run_wrk(wrk, bases, script, opts, WARMUP_S)  # warm-up, not counted
            api0, pg0, t0 = _cpu_s(api_pids), _postgres_cpu(), time.perf_counter()
            result["all"], client_cpu = _run_wrk(wrk, bases, script, opts, opts.duration_s)
        finally:
            script.unlink(missing_ok=True)
    else:
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        api0, pg0, t0 = _cpu_s(api_pids), _postgres_cpu(), time.perf_counter()
        stats, seconds = asyncio.run(_load(bases, data, opts))
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
        both = Stats(
            latencies_ms=stats["list"].latencies_ms + stats["detail"].latencies_ms,
            errors=stats["list"].errors + stats["detail"].errors,
        )
        result["list"] = stats["list"].summary(seconds)
        result["detail"] = stats["detail"].summary(seconds)
        result["all"] = both.summary(seconds)
    wall = time.perf_counter() - t0
    result["loadavg_after"] = _loadavg()
    result["cpu_cores"] = {  # CPU seconds / wall seconds: 1.0 = one core busy all the time
        "api": round((_cpu_s(api_pids) - api0) / wall, 2),
        "client": round(client_cpu / wall, 2),
        "postgres_all": round(_postgres_cpu_since(pg0) / wall, 2),
    }
    n = result["all"].get("requests", 0) or 1
    result["api_cpu_ms_per_request"] = round((_cpu_s(api_pids) - api0) * 1000 / n, 2)
    return result


def run_api_bench(opts: ApiBenchOptions, out: IO[str]) -> int:
    """Run the benchmark, print a summary and write JSON to ``opts.json_path``."""
    if opts.tickets < 1 or opts.clients < 1 or opts.api_procs < 1 or opts.sites < REGIONS:
        raise BrightKitchenError("tickets, clients and api-procs must be >= 1, sites >= 10")
    if opts.client not in ("auto", "wrk", "httpx"):
        raise BrightKitchenError("client must be auto, wrk or httpx")
    _client_tool(opts)  # fail before filling when wrk was asked for and is missing
    server = _server_url(opts)
    # Enough connections that a request rarely waits for one (each process holds its share).
    pool_size = max(10, min(100, -(-opts.clients // opts.api_procs)))
    with fresh_database(server) as url:
        print(f"filling {opts.tickets:,} tickets over {opts.sites} sites ...", file=out, flush=True)
        data = fill(url, opts)
        print(f"filled in {data['fill_s']} s", file=out, flush=True)
        log_path = Path(REPO_ROOT) / "var" / "bench" / "api-server.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        procs: list[subprocess.Popen[bytes]] = []
        with log_path.open("wb") as log:
            try:
                bases = []
                for _ in range(opts.api_procs):
                    port = free_port()
                    proc = _start_api(url, port, log, pool_size)
                    procs.append(proc)
                    base = f"http://127.0.0.1:{port}"
                    wait_for(lambda b=base: http_up(f"{b}/api/v1/healthz"), 60, "the API", proc)
                    bases.append(base)
                print(
                    f"{opts.clients} clients ({_client_tool(opts) or 'httpx'}) for "
                    f"{opts.duration_s:.0f} s against {opts.api_procs} API process(es) ...",
                    file=out,
                    flush=True,
                )
                measured = _measure(bases, data, opts, [p.pid for p in procs])
            finally:
                for p in procs:
                    stop_process(p, "api")
    result = {
        "at": datetime.now(UTC).isoformat(),
        "options": asdict(opts),
        "cpus": os.cpu_count(),
        "fill_s": data["fill_s"],
        "db_pool_size": pool_size,
        **measured,
        "target_p95_ms": 100,
    }
    Path(opts.json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json_path).write_text(json.dumps(result, indent=2))
    print("| request | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |", file=out)
    print("|---|---:|---:|---:|---:|---:|---:|---:|", file=out)
    for kind in ("list", "detail", "all"):
        if kind not in result:
            continue
        s = result[kind]
        print(
            f"| {kind} | {s['requests']} | {s.get('rps', 0)} | {s.get('p50_ms')} | "
            f"{s.get('p95_ms')} | {s.get('p99_ms')} | {s.get('max_ms')} | {s['errors']} |",
            file=out,
        )
    print(
        f"client {result['client']}; CPU cores used: {result['cpu_cores']}; API CPU "
        f"{result['api_cpu_ms_per_request']} ms/request; load average "
        f"{result['loadavg_before']} -> {result['loadavg_after']} ({result['cpus']} CPUs)",
        file=out,
    )
    print(f"results: {opts.json_path}", file=out)
    return 0 if result["all"].get("errors", 1) == 0 else 1
