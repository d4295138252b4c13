"""``brightkitchen bench api`` and ``bench district`` (argparse only; the benchmarks are
imported by the handlers)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register_api(bench_sub: Any) -> None:
    """Add ``bench api`` to the ``bench`` command group."""
    b = bench_sub.add_parser(
        "api", help="ticket list / detail p50, p95, p99 with many tickets and concurrent clients"
    )
    b.add_argument("--tickets", type=int, default=100_000, help="tickets in the fresh database")
    b.add_argument("--sites", type=int, default=500, help="canteens the tickets spread over")
    b.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    b.add_argument(
        "--duration", type=float, default=30.0, help="measured seconds (after 3 s warm-up)"
    )
    b.add_argument("--api-procs", type=int, default=1, help="API processes (round-robin clients)")
    b.add_argument("--pg-url", help="server URL without database (default from BK_DATABASE_URL)")
    b.add_argument(
        "--client",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="load generator: wrk (C, light) when installed, else httpx in this process",
    )
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--json", dest="json_path", default="var/bench/api.json")
    b.set_defaults(handler=_cmd_api)


def _cmd_api(args: argparse.Namespace) -> int:
    from brightkitchen.bench.api_bench import ApiBenchOptions, run_api_bench

    opts = ApiBenchOptions(
        tickets=args.tickets,
        sites=args.sites,
        clients=args.clients,
        duration_s=args.duration,
        api_procs=args.api_procs,
        pg_url=args.pg_url,
        json_path=args.json_path,
        seed=args.seed,
        client=args.client,
    )
    return run_api_bench(opts, out=sys.stdout)


def register_console(bench_sub: Any) -> None:
    """Add ``bench console`` to the ``bench`` command group."""
    c = bench_sub.add_parser(
        "console",
        help="the console's reads (overview, wall, 30-day chart, ledger) on a region's volumes",
    )
    c.add_argument("--sites", type=int, default=5000, help="canteens in 10 districts")
    c.add_argument("--tickets", type=int, default=100_000)
    c.add_argument("--readings", type=int, default=40_000_000, help="sensor readings, past year")
    c.add_argument("--sensors", type=int, default=100, help="sensors the readings spread over")
    c.add_argument("--repeat", type=int, default=30, help="timed requests per read")
    c.add_argument(
        "--clients", type=int, default=50, help="concurrent wrk connections (0: skip that phase)"
    )
    c.add_argument("--duration", type=float, default=30.0, help="seconds of the loaded phase")
    c.add_argument(
        "--think-ms",
        type=float,
        action="append",
        default=[],
        help="also run the loaded phase with each client pausing this mean time (ms) between "
        "an answer and its next request, as a person at a console does (repeatable)",
    )
    c.add_argument("--pg-url", help="server URL without database (default from BK_DATABASE_URL)")
    c.add_argument(
        "--database",
        help="keep and reuse this database (seeded only while it has no canteens); "
        "default: a fresh one, dropped afterwards",
    )
    c.add_argument("--seed-only", action="store_true", help="seed, then stop (with --database)")
    c.add_argument("--json", dest="json_path", default="var/bench/console.json")
    c.set_defaults(handler=_cmd_console)


def _cmd_console(args: argparse.Namespace) -> int:
    from brightkitchen.bench.console_bench import ConsoleBenchOptions, run_console_bench

    opts = ConsoleBenchOptions(
        sites=args.sites,
        tickets=args.tickets,
        readings=args.readings,
        sensors=args.sensors,
        repeat=args.repeat,
        clients=args.clients,
        duration_s=args.duration,
        pg_url=args.pg_url,
        database=args.database,
        seed_only=args.seed_only,
        json_path=args.json_path,
        think_ms=tuple(args.think_ms),
    )
    return run_console_bench(opts, out=sys.stdout)


def register_district(bench_sub: Any) -> None:
    """Add ``bench district`` to the ``bench`` command group."""
    d = bench_sub.add_parser(
        "district",
        help="a district's sensors and cameras through broker, ingest, database and API, "
        "then an outage burst: throughput, lag, alarm-to-alert latency, resources",
    )
    d.add_argument("--canteens", type=int, default=500, help="canteens, 5 sensors + 1 box each")
    d.add_argument("--steady-hours", type=float, default=2.0, help="simulated hours of phase 1")
    d.add_argument("--speed", type=float, default=120.0, help="simulated seconds per real second")
    d.add_argument("--interval", type=float, default=60.0, help="seconds between readings")
    d.add_argument(
        "--violations-per-hour",
        type=float,
        default=1.0,
        help="camera violations per canteen per simulated hour",
    )
    d.add_argument("--status-every-s", type=float, default=60.0, help="edge status period (sim)")
    d.add_argument("--evidence-kb", type=int, default=30, help="inline evidence JPEG size")
    d.add_argument("--outage-s", type=float, default=3600.0, help="buffered outage, sim seconds")
    d.add_argument(
        "--outage-share", type=float, default=1.0, help="share of gateways that were cut off"
    )
    d.add_argument("--probes", type=int, default=20, help="alarms timed per phase")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--mqtt-url", help="broker to use (default: a private Mosquitto, deploy config)")
    d.add_argument("--pg-url", help="server URL without database (default from BK_DATABASE_URL)")
    d.add_argument("--json", dest="json_path", default="var/bench/district.json")
    d.set_defaults(handler=_cmd_district)


def _cmd_district(args: argparse.Namespace) -> int:
    from brightkitchen.bench.district import DistrictOptions, run_district

    opts = DistrictOptions(
        canteens=args.canteens,
        steady_hours=args.steady_hours,
        speed=args.speed,
        interval_s=args.interval,
        violations_per_canteen_hour=args.violations_per_hour,
        status_every_s=args.status_every_s,
        evidence_kb=args.evidence_kb,
        outage_s=args.outage_s,
        outage_share=args.outage_share,
        probes=args.probes,
        seed=args.seed,
        mqtt_url=args.mqtt_url,
        pg_url=args.pg_url,
        json_path=args.json_path,
    )
    return run_district(opts, out=sys.stdout)
