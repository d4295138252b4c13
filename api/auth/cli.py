"""``brightkitchen users ...``: users, devices, tokens and revocation; heavy imports inside."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

ROLES = ("admin", "regulator", "inspector", "officer", "director", "insurer")


def register_users(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``users create | create-device | list | disable | enable``."""
    users = subparsers.add_parser("users", help="console users, roles and device credentials")
    sub = users.add_subparsers(dest="users_command", required=True)

    create = sub.add_parser("create", help="create a console user (prompts for the password)")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--region", help="regulator, inspector: region id (sub-regions included)")
    create.add_argument("--person", help="officer/director: person id (their sites)")
    create.add_argument("--insurer", help="insurer: company name (insured sites)")
    create.add_argument("--site", action="append", default=[], help="grant a site (repeatable)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(handler=_cmd_create)

    device = sub.add_parser("create-device", help="create a device credential; prints its token")
    device.add_argument("--name", required=True, help="device name, e.g. box-1")
    device.add_argument("--site", action="append", required=True, help="its site (repeatable)")
    device.set_defaults(handler=_cmd_create_device)

    listing = sub.add_parser("list", help="list users and devices")
    listing.set_defaults(handler=_cmd_list)

    for name, helptext in (("disable", "disable and revoke tokens"), ("enable", "enable again")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("username")
        p.set_defaults(handler=_cmd_set_active, active=name == "enable")

    tokens = sub.add_parser("tokens", help="list tokens (id, owner, kind, expiry, state)")
    tokens.add_argument("--user", help="only this user's or device's tokens")
    tokens.set_defaults(handler=_cmd_tokens)
    one = sub.add_parser("revoke-token", help="revoke one token by its id (see `users tokens`)")
    one.add_argument("token_id", type=int)
    one.set_defaults(handler=_cmd_revoke_token)
    every = sub.add_parser("revoke-tokens", help="revoke every token of a user or device")
    every.add_argument("username")
    every.set_defaults(handler=_cmd_revoke_tokens)


def _connect() -> psycopg.Connection[Any]:
    import psycopg

    from bkcommon.settings import load_common_settings

    url = load_common_settings().database_url.get_secret_value()
    return psycopg.connect(url, autocommit=True)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            raise ValueError("passwords differ")
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    return password


def _cmd_create(args: argparse.Namespace) -> int:
    import psycopg

    from api.auth.scope import Role
    from api.auth.users import UserError, create_user
    from bkcommon.errors import ConfigError

    try:
        password = _read_password(args)
        conn = _connect()
        with conn:
            user = create_user(
                conn,
                username=args.username,
                role=Role(args.role),
                password=password,
                region_id=args.region,
                person_id=args.person,
                insurer=args.insurer,
                site_ids=tuple(args.site),
            )
    except (UserError, ValueError, ConfigError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {user.role.value} {user.username} (id {user.user_id})")
    return 0


def _cmd_create_device(args: argparse.Namespace) -> int:
    import psycopg

    from api.auth.settings import load_auth_settings
    from api.auth.users import UserError, create_device
    from bkcommon.errors import ConfigError
    from bkcommon.timeutil import utcnow

    try:
        ttl = load_auth_settings().device_token_ttl
        conn = _connect()
        with conn:
            issued = create_device(
                conn, name=args.name, site_ids=tuple(args.site), now=utcnow(), ttl=ttl
            )
    except (UserError, ConfigError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    expiry = issued.expires_at.isoformat() if issued.expires_at else "never"
    print(f"device {args.name} created; its token (shown once, expires {expiry}):", file=sys.stderr)
    print(issued.token)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:

    from api.auth.users import list_users

    conn = _connect()
    with conn:
        rows = list_users(conn)
    print(f"{'username':<20} {'role':<10} {'active':<6} scope")
    for r in rows:
        anchor = r["region_id"] or r["person_id"] or r["insurer"] or ""
        sites = ",".join(r["site_ids"])
        scope = " ".join(p for p in (anchor, sites) if p) or "-"
        print(f"{r['username']:<20} {r['role']:<10} {'yes' if r['active'] else 'no':<6} {scope}")
    return 0


def _cmd_set_active(args: argparse.Namespace) -> int:

    from api.auth.users import set_active
    from bkcommon.timeutil import utcnow

    conn = _connect()
    with conn:
        found = set_active(
            conn, username=args.username, active=args.active, actor="cli", now=utcnow()
        )
    if not found:
        print(f"error: no user {args.username!r}", file=sys.stderr)
        return 1
    print(f"{args.username} {'enabled' if args.active else 'disabled'}")
    return 0


def _cmd_tokens(args: argparse.Namespace) -> int:
    from api.auth.users import list_tokens

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"

    conn = _connect()
    with conn:
        rows = list_tokens(conn, username=args.user)
    print(f"{'id':>6} {'username':<20} {'kind':<8} {'expires':<16} {'last used':<16} state")
    for r in rows:
        state = f"revoked {when(r['revoked_at'])}" if r["revoked_at"] else "live"
        print(
            f"{r['id']:>6} {r['username']:<20} {r['kind']:<8} {when(r['expires_at']):<16} "
            f"{when(r['last_used_at']):<16} {state}"
        )
    return 0


def _cmd_revoke_token(args: argparse.Namespace) -> int:
    from api.auth.users import revoke_token_id
    from bkcommon.timeutil import utcnow

    conn = _connect()
    with conn:
        done = revoke_token_id(conn, token_id=args.token_id, now=utcnow(), actor="cli")
    if done is None:
        print(f"error: no token {args.token_id}", file=sys.stderr)
        return 1
    print(f"token {args.token_id} {'revoked' if done else 'was already revoked'}")
    return 0


def _cmd_revoke_tokens(args: argparse.Namespace) -> int:
    from api.auth.users import revoke_user_tokens
    from bkcommon.timeutil import utcnow

    conn = _connect()
    with conn:
        count = revoke_user_tokens(conn, username=args.username, now=utcnow(), actor="cli")
    if count is None:
        print(f"error: no user {args.username!r}", file=sys.stderr)
        return 1
    print(f"{count} token(s) of {args.username} revoked")
    return 0
