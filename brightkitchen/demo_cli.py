"""``brightkitchen demo``: the whole backend on one machine (light imports only)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    p = subparsers.add_parser(
        "demo",
        help="run broker, database, ingest, API and simulated sensors on this machine",
        description=(
            "Runs everything on embedded defaults (pgserver, a private Mosquitto or the "
            "embedded amqtt broker) unless BK_DATABASE_URL / BK_MQTT_URL point at servers."
        ),
    )
    p.add_argument("--port", type=int, default=8000, help="API port on 127.0.0.1 (default 8000)")
    p.add_argument(
        "--hook-port",
        type=int,
        default=8765,
        help="port of the local webhook sink the officer's alerts go to",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--keep-data",
        action="store_true",
        help="keep var/demo (database, broker state, logs) from the last run",
    )
    p.add_argument("--data-dir", default="var/demo", help="where the demo keeps its data")
    p.add_argument("--sites", type=int, default=3, help="simulated canteens (default 3)")
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per real second while catching up (default 60)",
    )
    p.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="embedded broker when BK_MQTT_URL is unset (auto: mosquitto if installed)",
    )
    p.add_argument(
        "--no-edge",
        action="store_true",
        help="no edge box (by default one watches a rendered kitchen video)",
    )
    p.add_argument("--quiet", action="store_true", help="no status lines")
    p.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bkcommon.errors import ConfigError
    from brightkitchen.demo import DemoOptions, run_demo

    if args.sites < 1 or args.speed <= 0 or args.duration < 0:
        raise ConfigError("--sites must be >= 1, --speed > 0, --duration >= 0")
    opts = DemoOptions(
        api_port=args.port,
        hook_port=args.hook_port,
        duration_s=args.duration,
        keep_data=args.keep_data,
        data_dir=Path(args.data_dir),
        sites=args.sites,
        speed=args.speed,
        broker=args.broker,
        quiet=args.quiet,
        edge=not args.no_edge,
    )
    return run_demo(opts)
