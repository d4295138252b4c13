"""``brightkitchen enrol create``: a one-time enrolment code for a new edge box."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``enrol create``."""
    enrol = subparsers.add_parser("enrol", help="one-time enrolment codes for edge boxes")
    sub = enrol.add_subparsers(dest="enrol_command", required=True)
    create = sub.add_parser("create", help="create a code for a box of the registry")
    create.add_argument("--box", required=True, help="edge box id (from the site file)")
    create.add_argument("--ttl-h", type=float, default=72.0, help="code lifetime in hours")
    create.add_argument("--database-url", help="override BK_DATABASE_URL")
    create.set_defaults(handler=_cmd_create)


def _cmd_create(args: argparse.Namespace) -> int:
    from datetime import timedelta

    import psycopg

    from api.services.enrol import EnrolmentError, create_code
    from bkcommon.settings import load_common_settings
    from bkcommon.timeutil import utcnow

    url = args.database_url or load_common_settings().database_url.get_secret_value()
    conn: psycopg.Connection[Any]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            issued = create_code(
                conn, box_id=args.box, now=utcnow(), actor="cli", ttl=timedelta(hours=args.ttl_h)
            )
    except (EnrolmentError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"enrolment code for box {issued.box_id} (site {issued.site_id}), valid until "
        f"{issued.expires_at:%Y-%m-%d %H:%M} UTC, usable once:",
        file=sys.stderr,
    )
    print(issued.code)
    return 0
