"""Enrolling a box as the install script does, from the admin's code to a broker login.

``brightkitchen enrol create`` (admin) prints a code; ``brightkitchen edge enrol`` (the
box) trades it with a running ``api run`` and writes device.env / device.json with mode
0600 for the service user; after ``registry mqtt-auth write`` a real Mosquitto accepts the
broker URL from device.env. The spent code is refused the second time.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.settings import parse_mqtt_url
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from tests.deploy.stack import SBIN_PATH, Stack, missing_tools
from tests.deploy.test_district import SITE
from tests.support.services import port_open, wait_until

pytestmark = pytest.mark.skipif("mosquitto" in missing_tools(), reason="needs mosquitto")


@pytest.fixture
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="bk-enrol-"))
    work.chmod(0o755)
    s = Stack(work)
    try:
        yield s
    finally:
        s.close()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_install_enrolment_reaches_the_broker(stack: Stack, db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(SITE))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(stack.work), "BK_DATABASE_URL": db_url}
    api_port = stack.port()
    stack.brightkitchen(
        "api", ["api", "run", "--host", "127.0.0.1", "--port", str(api_port), "--no-workers"],
        {**env, "BK_API_SECRET_KEY": uuid.uuid4().hex},
    )  # fmt: skip
    created = _cli(["enrol", "create", "--box", "box-a", "--ttl-h", "1"], env)
    assert created.returncode == 0, created.stderr
    code = created.stdout.strip()
    assert "usable once" in created.stderr
    assert code not in created.stderr  # the code goes to stdout only (scripts capture it)

    mqtt_port = stack.port()
    api = f"http://127.0.0.1:{api_port}"
    stack.wait(lambda: port_open("127.0.0.1", api_port), 90, "api to listen", "api")
    owner = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    out = stack.work / "etc"
    enrol_args = ["edge", "enrol", "--api", api, "--box", "box-a", "--code", "-",
                  "--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--out-dir", str(out),
                  "--owner", owner]  # fmt: skip
    done = _cli(enrol_args, env, stdin=code + "\n")  # the code is not on the command line
    assert done.returncode == 0, done.stderr
    assert "enrolled as edge.box-a" in done.stdout
    entry = pwd.getpwnam(owner)
    for name in ("device.env", "device.json"):
        st = (out / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o600, name
        assert (st.st_uid, st.st_gid) == (entry.pw_uid, entry.pw_gid), name
    device_env = dict(
        line.split("=", 1) for line in (out / "device.env").read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip
    assert device_env["BK_EDGE_BOX_ID"] == "box-a"
    endpoint = parse_mqtt_url(device_env["BK_MQTT_URL"])
    assert endpoint.username == "edge.box-a"
    bearer = {"Authorization": f"Bearer {device_env['BK_EDGE_API_TOKEN']}"}
    me = httpx.get(f"{api}/api/v1/auth/me", timeout=10, headers=bearer)
    assert me.status_code == 200

    again = _cli(enrol_args, env, stdin=code + "\n")
    assert again.returncode == 1
    assert "refused the enrolment (403)" in again.stderr
    assert (out / "device.env").read_text().count("BK_MQTT_URL") == 1  # untouched

    # the broker learns the account from the registry, as the mqtt-auth service does
    auth = stack.work / "auth"
    auth.mkdir()
    written = _cli(["registry", "mqtt-auth", "write", "--passwd", str(auth / "passwd"),
                    "--acl", str(auth / "acl"), "--mode", "644"], env)  # fmt: skip
    assert written.returncode == 0, written.stderr
    conf = stack.work / "mosquitto.conf"
    conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {auth}/passwd\nacl_file {auth}/acl\n")  # fmt: skip
    stack.spawn("mosquitto", ["mosquitto", "-c", str(conf)], {"PATH": SBIN_PATH})
    stack.wait(lambda: port_open("127.0.0.1", mqtt_port), 60, "mosquitto", "mosquitto")
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="box-a")
    client.username_pw_set(endpoint.username, endpoint.password)
    client.on_connect = lambda c, u, f, rc, p=None: codes.append(int(rc.value))
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    try:
        wait_until(lambda: bool(codes), 30, what="CONNACK")
    finally:
        client.loop_stop()
    assert codes == [0]
