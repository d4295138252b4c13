"""``brightkitchen bench api`` (argparse only; the benchmark is imported by the handler)."""

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
