"""``brightkitchen registry mqtt-auth ...``: broker accounts and Mosquitto's auth files.

    registry mqtt-auth issue edge s001-box-1      # prints the new password once (stdout)
    registry mqtt-auth issue gateway school-001
    registry mqtt-auth issue service ingest
    registry mqtt-auth revoke edge.s001-box-1
    registry mqtt-auth list
    registry mqtt-auth write --passwd /etc/mosquitto/bk.passwd --acl /etc/mosquitto/bk.acl

After ``issue``, ``revoke`` or a registry change, run ``write`` and send Mosquitto SIGHUP
(``systemctl reload mosquitto``): it rereads both files without dropping connections.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


def register_mqtt_auth(registry_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``registry mqtt-auth issue | revoke | list | write``."""
    top = registry_sub.add_parser(
        "mqtt-auth", help="per-device broker passwords and the Mosquitto ACL from the registry"
    )
    top.add_argument("--database-url", help="override BK_DATABASE_URL")
    sub = top.add_subparsers(dest="mqtt_auth_command", required=True)

    issue = sub.add_parser("issue", help="create or rotate an account; prints its password once")
    issue.add_argument("kind", choices=("edge", "gateway", "service"))
    issue.add_argument("subject", help="edge: box id; gateway: site id; service: ingest")
    issue.set_defaults(handler=_cmd_issue)

    revoke = sub.add_parser("revoke", help="revoke an account (gone at the next write)")
    revoke.add_argument("username", help="e.g. edge.s001-box-1")
    revoke.set_defaults(handler=_cmd_revoke)

    listing = sub.add_parser("list", help="list accounts (never their hashes)")
    listing.set_defaults(handler=_cmd_list)

    write = sub.add_parser("write", help="write Mosquitto's password_file and acl_file")
    write.add_argument("--passwd", required=True, type=Path, help="password_file to write")
    write.add_argument("--acl", required=True, type=Path, help="acl_file to write")
    write.add_argument("--prefix", help="topic prefix (default: $BK_MQTT_PREFIX or bk/v1)")
    write.add_argument("--zigbee-base", default="zigbee2mqtt", help="Zigbee2MQTT base topic")
    write.add_argument(
        "--mode",
        default="640",
        type=lambda v: int(v, 8),
        help="file mode, octal (default 640, with --group so that Mosquitto reads them)",
    )
    write.add_argument("--group", help="group of the files, e.g. mosquitto")
    write.set_defaults(handler=_cmd_write)


def _connect(args: argparse.Namespace) -> psycopg.Connection[Any]:
    import psycopg

    from bkcommon.settings import load_common_settings

    url = args.database_url or load_common_settings().database_url.get_secret_value()
    return psycopg.connect(url, autocommit=True)


def _cmd_issue(args: argparse.Namespace) -> int:
    from bkcommon.timeutil import utcnow
    from brightkitchen.mqtt_accounts import issue_account
    from brightkitchen.mqtt_auth import AccountKind

    with _connect(args) as conn:
        issued = issue_account(
            conn, kind=AccountKind(args.kind), subject=args.subject, now=utcnow()
        )
    print(
        f"broker account {issued.username}; its password (shown once) follows. "
        "Run `registry mqtt-auth write` and reload Mosquitto to apply.",
        file=sys.stderr,
    )
    print(issued.password)
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    from bkcommon.timeutil import utcnow
    from brightkitchen.mqtt_accounts import revoke_account

    with _connect(args) as conn:
        done = revoke_account(conn, username=args.username, now=utcnow())
    if not done:
        print(f"error: no live broker account {args.username!r}", file=sys.stderr)
        return 1
    print(f"{args.username} revoked; run `registry mqtt-auth write` and reload Mosquitto")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from brightkitchen.mqtt_accounts import list_accounts

    with _connect(args) as conn:
        rows = list_accounts(conn)
    print(f"{'username':<32} {'kind':<8} {'rotated':<17} state")
    for username, kind, _subject, _created, rotated, revoked in rows:
        state = f"revoked {revoked:%Y-%m-%d %H:%M}" if revoked else "live"
        print(f"{username:<32} {kind:<8} {rotated:%Y-%m-%d %H:%M} {state}")
    return 0


def _cmd_write(args: argparse.Namespace) -> int:
    from bkcommon.settings import load_common_settings
    from brightkitchen.mqtt_accounts import live_accounts, registry_view
    from brightkitchen.mqtt_auth import render, write_atomically

    prefix = args.prefix or load_common_settings().mqtt_prefix
    with _connect(args) as conn:
        files = render(
            live_accounts(conn), registry_view(conn), prefix=prefix, zigbee_base=args.zigbee_base
        )
    write_atomically(args.passwd, files.passwd, args.mode, args.group)
    write_atomically(args.acl, files.acl, args.mode, args.group)
    print(f"wrote {len(files.usernames)} account(s) to {args.passwd} and {args.acl}")
    for name in files.skipped:
        print(f"skipped {name}: its box or site is not in the registry", file=sys.stderr)
    return 0
