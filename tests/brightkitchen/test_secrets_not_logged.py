"""Secrets never reach the logs: the real api and ingest services at DEBUG, greped afterwards.

``brightkitchen api run`` serves a sign-in (right and wrong passwords) and requests with
the token it issued; ``brightkitchen ingest run`` connects with a password in
``BK_MQTT_URL`` (mqtts://, with the test's CA) and in ``BK_DATABASE_URL`` and stores a
reading a gateway sent. Every password, the token and the credentials part of both URLs
are then looked for in everything both processes wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from api.auth.scope import Role
from api.auth.users import create_user
from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import rfc3339, utcnow
from bkcommon.topics import reading_topic
from brightkitchen.mqtt_accounts import issue_account, live_accounts, registry_view
from brightkitchen.mqtt_auth import AccountKind, render
from brightkitchen.registry import sync_registry
from brightkitchen.simulate.publisher import connect as sim_connect
from tests.brightkitchen.mqtt_auth_support import (
    SecuredBroker,
    broker_dir,
    make_ca,
    make_server_cert,
    secured_broker,
)
from tests.support.services import free_port, wait_until

SITE = {
    "regions": [{"id": "d1", "name": "区"}],
    "sites": [{"id": "school-001", "name": "一小", "region": "d1",
               "sensors": [{"id": "f1", "profile": "fridge"}]}],
}  # fmt: skip


def _with_password(db_url: str, password: str) -> str:
    parts = urlsplit(db_url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def tls_broker_dir() -> Iterator[Path]:
    with broker_dir() as d:
        yield d


def _spawn(args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "brightkitchen.cli", "--log-level", "DEBUG", *args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_passwords_tokens_and_url_credentials_never_reach_the_logs(
    db_url: str, tls_broker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tls_broker_dir
    pg_password = "pg-" + uuid.uuid4().hex
    admin_password = "admin-" + uuid.uuid4().hex
    wrong_password = "wrong-" + uuid.uuid4().hex
    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(SITE))
        create_user(conn, username="boss", role=Role.ADMIN, password=admin_password)
        now = utcnow()
        ingest_acc = issue_account(conn, kind=AccountKind.SERVICE, subject="ingest", now=now)
        gateway = issue_account(conn, kind=AccountKind.GATEWAY, subject="school-001", now=now)
        files = render(live_accounts(conn), registry_view(conn))
    (d / "passwd").write_text(files.passwd)
    (d / "acl").write_text(files.acl)
    ca = make_ca(d, "ca")
    monkeypatch.setenv("BK_MQTT_CA_FILE", str(ca))  # the gateway this test plays
    tls = make_server_cert(d, "ca")

    secret_db_url = _with_password(db_url, pg_password)
    base = {k: v for k, v in os.environ.items() if not k.startswith("BK_")}
    base.update({"BK_DATABASE_URL": secret_db_url, "BK_LOG_LEVEL": "DEBUG",
                 "BK_MQTT_CA_FILE": str(ca)})  # fmt: skip
    api_log = (d / "api.log").open("wb")
    ingest_log = (d / "ingest.log").open("wb")
    procs: list[subprocess.Popen[bytes]] = []
    token = ""
    with secured_broker(d, passwd=d / "passwd", acl=d / "acl", tls=tls) as broker:
        mqtt_url = f"mqtts://svc.ingest:{ingest_acc.password}@127.0.0.1:{broker.tls_port}"
        try:
            port = free_port()
            procs.append(_spawn(["api", "run", "--host", "127.0.0.1", "--port", str(port),
                                 "--no-workers"], base, api_log))  # fmt: skip
            procs.append(_spawn(["ingest", "run"], {**base, "BK_MQTT_URL": mqtt_url}, ingest_log))
            token = _use_the_api(port, admin_password, wrong_password)
            _send_a_reading(broker, gateway.password, db_url, procs)
        finally:
            for p in procs:
                _stop(p)
            api_log.close()
            ingest_log.close()

    logs = {name: (d / f"{name}.log").read_text(errors="replace") for name in ("api", "ingest")}
    assert "DEBUG   api.auth.users: signed in boss" in logs["api"], logs["api"]  # DEBUG on
    assert "connected to the broker" in logs["ingest"], logs["ingest"]
    secrets = {
        "database password": pg_password,
        "admin password": admin_password,
        "wrong password": wrong_password,
        "session token": token,
        "token without prefix": token.removeprefix("bk_"),
        "ingest broker password": ingest_acc.password,
        "gateway broker password": gateway.password,
        "database URL credentials": f"postgres:{pg_password}@",
        "MQTT URL credentials": f"svc.ingest:{ingest_acc.password}@",
    }
    found = [
        (what, name) for what, s in secrets.items() for name, text in logs.items() if s in text
    ]
    assert not found, f"secrets in the logs: {found}"


def _use_the_api(port: int, admin_password: str, wrong_password: str) -> str:
    base = f"http://127.0.0.1:{port}/api/v1"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 30, 0.2, what="api run to answer")
    bad = httpx.post(f"{base}/auth/login", json={"username": "boss", "password": wrong_password})
    assert bad.status_code == 401
    good = httpx.post(f"{base}/auth/login", json={"username": "boss", "password": admin_password})
    assert good.status_code == 200, good.text
    token = str(good.json()["access_token"])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base}/sites", headers=headers).status_code == 200
    assert httpx.get(f"{base}/tickets", params={"token": token}, headers=headers).status_code < 500
    assert httpx.post(f"{base}/auth/logout", headers=headers).status_code == 204
    return token


def _send_a_reading(
    broker: SecuredBroker, gateway_password: str, db_url: str, procs: list[Any]
) -> None:
    url = f"mqtts://gw.school-001:{gateway_password}@127.0.0.1:{broker.tls_port}"
    gw = sim_connect(url, client_id="gw-school-001")
    payload = {"schema_version": 1, "ts": rfc3339(utcnow()), "seq": 1, "temp_c": 3.5}
    try:

        def stored() -> bool:
            assert all(p.poll() is None for p in procs), "a service exited"
            gw.publish(reading_topic("school-001", "f1"), json.dumps(payload), qos=1)
            with psycopg.connect(db_url) as conn:
                row = conn.execute("SELECT count(*) FROM sensor_readings").fetchone()
            return row is not None and row[0] > 0

        # stored means ingest authenticated over TLS with its URL password and subscribed
        wait_until(stored, 30, 0.5, what="the reading stored by ingest")
    finally:
        gw.loop_stop()
        gw.disconnect()
