"""The ``brightkitchen`` command: one entry point for every service and operator task.

Each part registers its own subcommands from a light ``cli`` module (argparse and
bkcommon only), and imports its heavy dependencies inside the handler, so an edge
box without the backend extras can still run ``brightkitchen edge run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from bkcommon.errors import BrightKitchenError, ConfigError
from bkcommon.logs import setup_logging
from bkcommon.settings import load_common_settings
from bkcommon.sitefile import load_site_file
from brightkitchen.mqtt_auth_cli import register_mqtt_auth

logger = logging.getLogger("brightkitchen")

Handler = Callable[[argparse.Namespace], int]

# Modules that add subcommands: each defines ``register(subparsers) -> None``.
_PARTS = (
    "ingest.cli",
    "api.cli",
    "api.enrol_cli",
    "edge.cli",
    "models.cli",
    "brightkitchen.simulate.cli",
    "brightkitchen.demo_cli",
    "brightkitchen.chaos.cli",
    "brightkitchen.captures_cli",
)


def _cmd_db_migrate(args: argparse.Namespace) -> int:
    from brightkitchen.db import TimescaleMode, migrate

    settings = load_common_settings()
    url = args.database_url or settings.database_url.get_secret_value()
    mode: TimescaleMode = "off" if args.plain else "require" if args.timescale else "auto"
    result = migrate(url, timescale=mode)
    path = (
        "TimescaleDB (hypertable, continuous aggregates, compression, retention)"
        if (result.timescale)
        else "plain PostgreSQL (BRIN on time, app-maintained rollups)"
    )
    print(f"schema path: {path}")
    if result.reason:
        print(f"why: {result.reason}")
    if result.applied:
        print("applied: " + ", ".join(result.applied))
    else:
        print("nothing to apply")
    print(f"schema version: {result.current}")
    return 0


def _cmd_registry_sync(args: argparse.Namespace) -> int:
    import psycopg

    from brightkitchen.registry import sync_registry

    settings = load_common_settings()
    path = args.config or settings.site_file
    if not path:
        raise ConfigError("no site file: pass --config FILE or set BK_SITE_FILE")
    site_file = load_site_file(path)
    url = args.database_url or settings.database_url.get_secret_value()
    with psycopg.connect(url) as conn:
        res = sync_registry(conn, site_file)
    print(
        f"registry synced from {path}: {res.regions} regions, {res.sites} sites, "
        f"{res.people} people, {res.sensors} sensors, {res.cameras} cameras"
    )
    return 0


def _cmd_validate_config(args: argparse.Namespace) -> int:
    site_file = load_site_file(args.config)
    n_sensors = sum(len(s.sensors) for s in site_file.sites)
    n_cams = sum(len(b.cameras) for s in site_file.sites for b in s.edge_boxes)
    print(
        f"{args.config}: OK ({len(site_file.regions)} regions, {len(site_file.sites)} sites, "
        f"{n_sensors} sensors, {n_cams} cameras)"
    )
    return 0


def add_validate_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and ``--validate-config`` to a subcommand that reads a site file."""
    parser.add_argument("--config", help="YAML site file (default: $BK_SITE_FILE)")
    parser.add_argument(
        "--validate-config",
        action="store_true",
        help="validate the site file and the BK_* environment, print the result and exit",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the whole command tree."""
    parser = argparse.ArgumentParser(
        prog="brightkitchen",
        description="Food-safety monitoring for school canteens (明厨亮灶).",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    mig = db_sub.add_parser("migrate", help="apply pending migrations (idempotent)")
    mig.add_argument("--database-url", help="override BK_DATABASE_URL")
    path_opt = mig.add_mutually_exclusive_group()
    path_opt.add_argument(
        "--plain", action="store_true", help="ignore TimescaleDB even if available"
    )
    path_opt.add_argument(
        "--timescale",
        action="store_true",
        help="require TimescaleDB: fail with the reason where it cannot be used",
    )
    mig.set_defaults(handler=_cmd_db_migrate)

    reg = sub.add_parser("registry", help="the registry of regions, sites, people, sensors")
    reg_sub = reg.add_subparsers(dest="registry_command", required=True)
    sync = reg_sub.add_parser("sync", help="load the site file into the database")
    sync.add_argument("--config", help="YAML site file (default: $BK_SITE_FILE)")
    sync.add_argument("--database-url", help="override BK_DATABASE_URL")
    sync.set_defaults(handler=_cmd_registry_sync)
    register_mqtt_auth(reg_sub)

    val = sub.add_parser("validate-config", help="validate a site file and exit")
    val.add_argument("config", help="YAML site file")
    val.set_defaults(handler=_cmd_validate_config)

    for mod_name in _PARTS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and mod_name.startswith(exc.name):
                continue  # that part is not in this build
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors of ours print one clear message and exit 2 (config) or 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_common_settings()
        setup_logging(args.log_level or settings.log_level, settings.log_format)
        handler: Handler = args.handler
        return handler(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except BrightKitchenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
