"""``brightkitchen ingest run``: start an ingest worker (heavy imports inside the handler)."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from bkcommon.errors import ConfigError
from bkcommon.settings import load_common_settings
from bkcommon.sitefile import load_site_file


def _cmd_run(args: argparse.Namespace) -> int:
    from ingest.settings import load_ingest_settings

    if args.validate_config:
        return _validate(args)
    common = load_common_settings()
    settings = load_ingest_settings()
    if args.config:
        load_site_file(args.config)
    from ingest.worker import run_worker

    run_worker(common, settings)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ingest.settings import load_ingest_settings

    errors: list[str] = []
    for loader in (load_common_settings, load_ingest_settings):
        try:
            loader()
        except ConfigError as exc:
            errors.append(str(exc))
    common_site = None
    with contextlib.suppress(ConfigError):
        common_site = load_common_settings().site_file
    path = args.config or common_site
    if path:
        try:
            load_site_file(path)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        for e in errors:
            print(e)
        return 2
    print(f"ingest configuration OK{f' (site file {path})' if path else ''}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``ingest run [--config FILE] [--validate-config]`` to the brightkitchen command."""
    ingest = subparsers.add_parser("ingest", help="MQTT → PostgreSQL ingest worker")
    sub = ingest.add_subparsers(dest="ingest_command", required=True)
    run = sub.add_parser(
        "run", help="consume sensor readings, violations and box status (env BK_*, BK_INGEST_*)"
    )
    run.add_argument("--config", help="YAML site file to check (default: $BK_SITE_FILE)")
    run.add_argument(
        "--validate-config",
        action="store_true",
        help="validate the BK_* / BK_INGEST_* environment and the site file, then exit",
    )
    run.set_defaults(handler=_cmd_run)
