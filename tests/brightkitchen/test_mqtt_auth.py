"""Per-device broker passwords and ACLs from the registry, enforced by a real Mosquitto.

The accounts are issued and the files written with the real CLI and database; the broker
is a private Mosquitto started with deploy/mosquitto/auth.conf. Each denial is proven by
ordering: a denied publish is followed on the same connection by an allowed marker, so
when the marker arrives, the denied message would have arrived before it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from bkcommon.topics import ingest_subscriptions, reading_topic, violation_topic
from brightkitchen.mqtt_accounts import issue_account, revoke_account
from brightkitchen.mqtt_auth import AccountKind, hash_password, verify_password
from brightkitchen.registry import sync_registry
from ingest.session import marker_topic
from tests.brightkitchen.mqtt_auth_support import Peer, broker_dir, connect, secured_broker
from tests.conftest import run_cli
from tests.support.services import wait_until

P = "bk/v1"


def _site_file() -> dict[str, Any]:
    return {
        "regions": [{"id": "d1", "name": "区"}],
        "sites": [
            {
                "id": "school-001",
                "name": "一小",
                "region": "d1",
                "sensors": [
                    {"id": "f1", "profile": "fridge"},
                    {"id": "zb1", "profile": "fridge", "zigbee_name": "fridge_zb1"},
                ],
                "edge_boxes": [{"id": "box-1"}],
            },
            {
                "id": "school-002",
                "name": "二中",
                "region": "d1",
                "sensors": [{"id": "f2", "profile": "fridge", "zigbee_name": "fridge_zb2"}],
                "edge_boxes": [{"id": "box-2"}],
            },
        ],
    }


def test_hashes_are_mosquitto_passwd_compatible_both_ways(tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw_file), "u", "s3cret"], check=True)
    theirs = pw_file.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$")
    assert verify_password(theirs, "s3cret")
    assert not verify_password(theirs, "s3creT")
    ours = hash_password("s3cret")
    assert verify_password(ours, "s3cret")
    assert ours != hash_password("s3cret")


def _marker_arrives(sender: Peer, receiver: Peer, topic: str) -> None:
    before = len(receiver.received)
    sender.publish(topic, b"marker")
    wait_until(lambda: len(receiver.received) > before and receiver.received[-1][1] == b"marker",
               5, what=f"marker on {topic}")  # fmt: skip


@pytest.fixture
def work() -> Iterator[Path]:
    with broker_dir() as d:
        yield d


def test_registry_accounts_are_enforced_by_mosquitto(
    work: Path, db_url: str, cli_env: dict[str, str]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(_site_file()))
        now = utcnow()
        gw1 = issue_account(conn, kind=AccountKind.GATEWAY, subject="school-001", now=now)
        gw2 = issue_account(conn, kind=AccountKind.GATEWAY, subject="school-002", now=now)
        box1 = issue_account(conn, kind=AccountKind.EDGE, subject="box-1", now=now)
    issued = run_cli("registry", "mqtt-auth", "issue", "service", "ingest", env=cli_env)
    assert issued.returncode == 0, issued.stderr
    ingest_pw = issued.stdout.strip()
    assert "svc.ingest" in issued.stderr
    assert ingest_pw not in issued.stderr
    unknown = run_cli("registry", "mqtt-auth", "issue", "edge", "no-such-box", env=cli_env)
    assert unknown.returncode == 1
    assert "no edge box 'no-such-box'" in unknown.stderr

    passwd, acl = work / "bk.passwd", work / "bk.acl"
    # as in production: mode 0640, group mosquitto (the user Mosquitto drops to)
    write = ("registry", "mqtt-auth", "write", "--passwd", str(passwd), "--acl", str(acl),
             "--group", "mosquitto")  # fmt: skip
    wrote = run_cli(*write, env=cli_env)
    assert wrote.returncode == 0, wrote.stderr
    assert "wrote 4 account(s)" in wrote.stdout
    text = acl.read_text()
    assert "topic write zigbee2mqtt/fridge_zb1" in text.split("user gw.school-002")[0]
    ingest_acl = text.split("user svc.ingest")[1].split("\nuser ")[0]
    assert "topic read $SYS/broker/publish/messages/dropped" in ingest_acl
    assert "$SYS/#" not in text  # that one count, nothing else of the broker's
    assert ingest_pw not in passwd.read_text()
    assert gw1.password not in passwd.read_text()

    assert passwd.stat().st_mode & 0o777 == 0o640
    with secured_broker(work, passwd=passwd, acl=acl, readable=False) as broker:
        port = broker.port
        ingest = connect(
            port,
            "svc.ingest",
            ingest_pw,
            subscribe=[
                *ingest_subscriptions(P, zigbee_base="zigbee2mqtt"),
                marker_topic(P, "ingest"),
            ],
        )
        snoop = connect(port, "gw.school-001", gw1.password, subscribe=["#", f"{P}/#"])
        g1 = connect(port, "gw.school-001", gw1.password)
        g2 = connect(port, "gw.school-002", gw2.password)
        b1 = connect(port, "edge.box-1", box1.password)
        peers = [ingest, snoop, g1, g2, b1]
        try:
            assert not any(p.reason.is_failure for p in peers), [p.reason for p in peers]
            own = reading_topic("school-001", "f1")
            other = reading_topic("school-002", "f2")

            # A gateway publishes its own site's readings; another site's are dropped.
            g1.publish(other, b"forged")
            g1.publish("zigbee2mqtt/fridge_zb2", b"forged")  # another site's Zigbee sensor
            g1.publish("zigbee2mqtt/fridge_zb1", b"own-zigbee")
            _marker_arrives(g1, ingest, own)
            assert other not in ingest.topics()
            assert b"forged" not in [m for _, m in ingest.received]
            assert ("zigbee2mqtt/fridge_zb1", b"own-zigbee") in ingest.received

            # An edge box publishes its own violations, not another box's, site's or sensor's.
            b1.publish(violation_topic("school-001", "box-2"), b"forged")
            b1.publish(violation_topic("school-002", "box-2"), b"forged")
            b1.publish(own, b"forged")
            _marker_arrives(b1, ingest, violation_topic("school-001", "box-1"))
            assert b"forged" not in [m for _, m in ingest.received]

            # The ingest account publishes and reads its group's guard marker (ingest.guard).
            _marker_arrives(ingest, ingest, marker_topic(P, "ingest"))

            # A device subscribed to everything receives nothing, not even its own site.
            _marker_arrives(g2, ingest, other)
            time.sleep(0.3)
            assert snoop.received == []
        finally:
            for p in peers:
                p.close()

        # Wrong password, unknown user and anonymous clients are refused.
        for user, password in (("gw.school-001", "wrong"), ("gw.nobody", "x"), (None, None)):
            refused = connect(port, user, password)
            assert refused.reason.is_failure, (user, refused.reason)
            refused.close()

        # Revoking and rotating apply on the next write and SIGHUP.
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert revoke_account(conn, username="edge.box-1", now=utcnow())
            gw1b = issue_account(conn, kind=AccountKind.GATEWAY, subject="school-001", now=now)
        wrote = run_cli(*write, env=cli_env)
        assert "wrote 3 account(s)" in wrote.stdout, wrote.stdout + wrote.stderr
        broker.reload()
        for user, password, ok in (
            ("edge.box-1", box1.password, False),
            ("gw.school-001", gw1.password, False),
            ("gw.school-001", gw1b.password, True),
        ):
            peer = connect(port, user, password)
            assert peer.reason.is_failure is not ok, (user, peer.reason)
            peer.close()


def test_accounts_outside_the_registry_and_bad_services_are_refused(db_url: str) -> None:
    from brightkitchen.mqtt_accounts import AccountError

    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(AccountError, match="no site 'nowhere'"):
            issue_account(conn, kind=AccountKind.GATEWAY, subject="nowhere", now=utcnow())
        with pytest.raises(AccountError, match="unknown service 'api'"):
            issue_account(conn, kind=AccountKind.SERVICE, subject="api", now=utcnow())
        with pytest.raises(AccountError, match="invalid edge"):
            issue_account(conn, kind=AccountKind.EDGE, subject="a/#", now=utcnow())
