"""``brightkitchen api ...`` subcommands; heavy imports live inside the handlers."""

from __future__ import annotations

import argparse
import sys

from bkcommon.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``api run``, ``api worker``, ``risk compute`` and the ``users`` group."""
    api = subparsers.add_parser("api", help="REST API, ticket engine and notifications")
    sub = api.add_subparsers(dest="api_command", required=True)

    run = sub.add_parser("run", help="serve the HTTP API (and run the workers unless told not)")
    run.add_argument("--host", help="override BK_API_HOST")
    run.add_argument("--port", type=int, help="override BK_API_PORT")
    run.add_argument("--no-workers", action="store_true", help="HTTP only: no ticket engine")
    _add_validate(run)
    run.set_defaults(handler=_cmd_run)

    worker = sub.add_parser("worker", help="ticket engine and notification dispatcher, no HTTP")
    _add_validate(worker)
    worker.set_defaults(handler=_cmd_worker)

    risk = subparsers.add_parser("risk", help="canteen risk scores")
    risk_sub = risk.add_subparsers(dest="risk_command", required=True)
    compute = risk_sub.add_parser(
        "compute", help="store a risk score for every site whose latest is older than the interval"
    )
    compute.add_argument("--all", action="store_true", help="score every site now, fresh or not")
    compute.set_defaults(handler=_cmd_risk_compute)

    from api.auth.cli import register_users  # argparse only at import time

    register_users(subparsers)


def _add_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validate-config",
        action="store_true",
        help="validate the BK_*, BK_API_*, BK_AUTH_* and BK_RISK_* environment, print OK or "
        "the errors, and exit",
    )


def _load() -> tuple[object, object]:
    """Validate every settings group, collecting all errors before raising ConfigError.

    BK_* and BK_API_* are returned; BK_AUTH_*, BK_RISK_* and BK_TIME_ZONE are checked here so
    a bad value stops the service at start, not at the first sign-in, risk run or notice.
    """
    from pydantic import ValidationError

    from api.auth.settings import load_auth_settings
    from api.services.risk import RiskSettings
    from api.settings import load_api_settings
    from bkcommon.localtime import time_zone_error
    from bkcommon.settings import load_common_settings

    errors: list[str] = []
    common = api = None
    try:
        common = load_common_settings()
    except ConfigError as exc:
        errors.append(str(exc))
    try:
        api = load_api_settings()
    except ConfigError as exc:
        errors.append(str(exc))
    try:
        load_auth_settings()
    except ConfigError as exc:
        errors.append(str(exc))
    zone_error = time_zone_error()
    if zone_error:
        errors.append("invalid environment (BK_*):\n" + zone_error)
    try:
        RiskSettings()
    except ValidationError as exc:
        lines = [
            f"BK_RISK_{str(e['loc'][0]).upper() if e['loc'] else '*'}: {e['msg']}"
            for e in exc.errors()
        ]
        errors.append("invalid environment (BK_RISK_*):\n" + "\n".join(lines))
    if errors:
        raise ConfigError("\n".join(errors))
    return common, api


def _validate_only() -> int:
    try:
        _load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    print("configuration OK (BK_*, BK_API_*, BK_AUTH_*, BK_RISK_*)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.validate_config:
        return _validate_only()
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from bkcommon.settings import CommonSettings

    common, api = _load()
    assert isinstance(common, CommonSettings)
    assert isinstance(api, ApiSettings)
    updates: dict[str, object] = {}
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    if args.no_workers:
        updates["workers_enabled"] = False
    api = api.model_copy(update=updates)
    app = create_app(api, common=common)
    # uvloop and httptools when installed; no access log (one line per request costs CPU)
    uvicorn.run(
        app,
        host=api.host,
        port=api.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=api.forwarded_allow_ips,  # BK_API_FORWARDED_ALLOW_IPS
    )
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.validate_config:
        return _validate_only()
    import signal
    import threading

    from api.settings import ApiSettings
    from api.workers import Workers
    from bkcommon.settings import CommonSettings

    common, api = _load()
    assert isinstance(common, CommonSettings)
    assert isinstance(api, ApiSettings)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if api.worker_metrics_port:  # tickets opened, SLA breaches, delivery failures
        from prometheus_client import start_http_server

        start_http_server(api.worker_metrics_port, addr=api.host)
    workers = Workers(database_url=common.database_url.get_secret_value(), settings=api)
    workers.run_until(stop)
    return 0


def _cmd_risk_compute(args: argparse.Namespace) -> int:
    import psycopg

    from api.auth.scope import SiteScope
    from api.services.risk import (
        RiskSettings,
        compute,
        compute_due,
        refresh_current,
        store,
        store_current,
    )
    from bkcommon.settings import CommonSettings
    from bkcommon.timeutil import utcnow

    try:
        common, _ = _load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    assert isinstance(common, CommonSettings)
    settings = RiskSettings()
    url = common.database_url.get_secret_value()
    with psycopg.connect(url, autocommit=True) as conn:
        if args.all:
            with conn.transaction():
                scores = compute(
                    conn=conn, now=utcnow(), scope=SiteScope.everything(), settings=settings
                )
                n = store(conn, scores)
                store_current(conn, scores)
        else:
            n = compute_due(conn, now=utcnow(), settings=settings)
            refresh_current(conn, now=utcnow(), settings=settings)
    print(f"risk scores stored for {n} site(s)")
    return 0
