"""Mosquitto ``password_file`` and ``acl_file`` from the site registry: who may publish what.

Every broker account has one job, and the ACL says exactly that job:

* ``edge.<box>`` (an edge box of site S) publishes its violations and retained status
  (``{prefix}/S/edge/<box>/violation|status``, also its last will) and the kitchen
  pop-ups of its site (``{prefix}/S/alert``). It subscribes to nothing.
* ``gw.<site>`` (the sensor gateway of site S) publishes readings of S's sensors
  (``{prefix}/S/sensor/+/reading|readings``, a cabinet plug's ``…/power``) and the
  Zigbee2MQTT state topics of S's Zigbee sensors and cabinet plugs
  (``zigbee2mqtt/<zigbee_name>``). It subscribes to nothing.
* ``svc.ingest`` reads every ingest topic, as a plain or a shared (``$share/<group>/``)
  subscription. It publishes nothing.

Mosquitto drops a publish the ACL denies (a 3.1.1 client still gets its PUBACK: that
protocol has no way to refuse one) and delivers to a subscriber only what the ACL lets
it read (Mosquitto 2.0 grants the SUBACK of a filter like ``#``, then delivers nothing
outside the account's read lines). So a stolen box or gateway can neither write another
canteen's topics nor read anything.

Passwords are random (32 bytes) and stored only as Mosquitto's PBKDF2-SHA512 hash
(``$7$<iterations>$<salt>$<hash>``, the format ``mosquitto_passwd`` writes since 2.0),
computed here with hashlib so no Mosquitto tools are needed where this runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bkcommon.topics import (
    BROKER_DROPPED_TOPIC,
    DEFAULT_PREFIX,
    INGEST_MARKER_SEGMENT,
    check_id,
)

# Mosquitto's own default is 101; passwords here are random anyway. EMQX reads the same
# hashes from mqtt_accounts with a fixed iteration count (deploy/k8s/base/emqx.yaml):
# change both together.
PBKDF2_ITERATIONS = 1000
_SALT_BYTES = 12  # what mosquitto_passwd uses
# A Zigbee friendly name becomes one topic level in an ACL line: no wildcard, separator or
# blank (the ACL file splits on blanks). Other names get no write permission at all.
_SAFE_LEVEL = re.compile(r"^[^\s+#/]{1,100}$")


class AccountKind(StrEnum):
    """The three jobs a broker account can have."""

    EDGE = "edge"
    GATEWAY = "gateway"
    SERVICE = "service"


_USER_PREFIX = {AccountKind.EDGE: "edge", AccountKind.GATEWAY: "gw", AccountKind.SERVICE: "svc"}
SERVICES = ("ingest",)  # service accounts the ACL knows a job for


def account_username(kind: AccountKind, subject: str) -> str:
    """The broker username of a box, a site's gateway or a service.

    Example:
        >>> account_username(AccountKind.GATEWAY, "school-001")
        'gw.school-001'
    """
    if kind is AccountKind.SERVICE and subject not in SERVICES:
        raise ValueError(f"unknown service {subject!r}: one of {', '.join(SERVICES)}")
    return f"{_USER_PREFIX[kind]}.{check_id(subject, kind.value)}"


def new_password() -> str:
    """A fresh random broker password (32 bytes of entropy, URL-safe for BK_MQTT_URL)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto's ``$7$`` PBKDF2-SHA512 hash of ``password`` (what mosquitto_passwd writes).

    Example:
        >>> hash_password("pw").startswith("$7$1000$")
        True
    """
    salt = os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (the check Mosquitto makes).

    Example:
        >>> verify_password(hash_password("pw"), "pw"), verify_password(hash_password("pw"), "x")
        (True, False)
    """
    parts = password_hash.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True, slots=True)
class Account:
    """A live broker account: its username, job, subject and password hash."""

    username: str
    kind: AccountKind
    subject: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class RegistryView:
    """What the ACL needs from the registry: boxes and Zigbee names of each site."""

    sites: frozenset[str]
    box_site: dict[str, str] = field(default_factory=dict)  # box id -> site id
    site_zigbee: dict[str, tuple[str, ...]] = field(default_factory=dict)  # site -> names


def _p(prefix: str) -> str:
    return prefix.rstrip("/")


def account_topics(
    account: Account,
    registry: RegistryView,
    *,
    prefix: str = DEFAULT_PREFIX,
    zigbee_base: str = "zigbee2mqtt",
) -> list[tuple[str, str]] | None:
    """``(access, topic)`` ACL lines of one account, or None when the registry lacks its subject.

    An account whose box or site is not (or no longer) in the registry gets no lines and
    no password entry: it cannot connect.

    Example:
        >>> reg = RegistryView(sites=frozenset({"s1"}), box_site={"b1": "s1"})
        >>> acc = Account("edge.b1", AccountKind.EDGE, "b1", "$7$...")
        >>> account_topics(acc, reg)[0]
        ('write', 'bk/v1/s1/edge/b1/violation')
    """
    p = _p(prefix)
    if account.kind is AccountKind.EDGE:
        site = registry.box_site.get(account.subject)
        if site is None:
            return None
        box = account.subject
        return [
            ("write", f"{p}/{site}/edge/{box}/violation"),
            ("write", f"{p}/{site}/edge/{box}/status"),
            ("write", f"{p}/{site}/alert"),
        ]
    if account.kind is AccountKind.GATEWAY:
        site = account.subject
        if site not in registry.sites:
            return None
        lines = [
            ("write", f"{p}/{site}/sensor/+/reading"),
            ("write", f"{p}/{site}/sensor/+/readings"),
            ("write", f"{p}/{site}/sensor/+/power"),
        ]
        names = registry.site_zigbee.get(site, ())
        lines += [("write", f"{zigbee_base}/{z}") for z in names if _SAFE_LEVEL.match(z)]
        return lines
    if account.subject == "ingest":
        filters = [
            f"{p}/+/sensor/+/reading",
            f"{p}/+/sensor/+/readings",
            f"{p}/+/sensor/+/power",
            f"{p}/+/edge/+/violation",
            f"{p}/+/edge/+/status",
            f"{zigbee_base}/+",
        ]
        # Mosquitto checks a shared subscription against the filter after $share/<group>/,
        # and delivery against the topic, so plain read lines cover both.
        lines = [("read", f) for f in filters]
        # The shared-subscription guard (ingest.guard) proves a group is subscribed again by
        # markers the workers publish and it reads on this topic; without it the guard
        # never leaves gap mode and every message is written twice.
        lines.append(("readwrite", f"{p}/{INGEST_MARKER_SEGMENT}/+/marker"))
        # The broker's count of messages it dropped at its queue limits (the
        # BkBrokerDroppedMessages alert): nothing else of $SYS.
        lines.append(("read", BROKER_DROPPED_TOPIC))
        return lines
    return None


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The rendered files and which accounts made it into them."""

    passwd: str
    acl: str
    usernames: tuple[str, ...]
    skipped: tuple[str, ...]  # accounts whose subject is not in the registry


def render(
    accounts: Iterable[Account],
    registry: RegistryView,
    *,
    prefix: str = DEFAULT_PREFIX,
    zigbee_base: str = "zigbee2mqtt",
) -> BrokerFiles:
    """Render Mosquitto's password_file and acl_file (sorted, so reruns are byte-identical)."""
    passwd: list[str] = []
    acl = [
        "# Generated by `brightkitchen registry mqtt-auth write` from the registry.",
        "# Do not edit: edit the registry and write again, then send mosquitto SIGHUP.",
        "# Nothing above the first `user` line: anonymous clients get no access at all.",
    ]
    used: list[str] = []
    skipped: list[str] = []
    for acc in sorted(accounts, key=lambda a: a.username):
        lines = account_topics(acc, registry, prefix=prefix, zigbee_base=zigbee_base)
        if lines is None:
            skipped.append(acc.username)
            continue
        used.append(acc.username)
        passwd.append(f"{acc.username}:{acc.password_hash}")
        acl.append("")
        acl.append(f"user {acc.username}")
        acl.extend(f"topic {access} {topic}" for access, topic in lines)
    return BrokerFiles(
        passwd="\n".join(passwd) + "\n" if passwd else "",
        acl="\n".join(acl) + "\n",
        usernames=tuple(used),
        skipped=tuple(skipped),
    )


def write_atomically(path: Path, text: str, mode: int = 0o640, group: str | None = None) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    Mosquitto rereads the files on SIGHUP, after it dropped root for its own user: it must
    never see half a file, and ``group`` (e.g. ``mosquitto``) lets it read a 0640 file.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    if group is not None:
        shutil.chown(tmp, group=group)
    tmp.replace(path)
