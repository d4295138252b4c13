"""A private Mosquitto with password_file, acl_file and optionally a TLS listener.

Started as the production broker would be with the files ``registry mqtt-auth write``
renders, on free ports, in a temporary directory, and killed afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.services import free_port, mosquitto_binary, port_open, wait_until


@dataclass
class SecuredBroker:
    """The broker process, its ports and its log."""

    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    tls_port: int | None = None

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads password_file and acl_file."""
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def log(self) -> str:
        return (self.workdir / "mosquitto.log").read_text(errors="replace")


@contextlib.contextmanager
def secured_broker(
    workdir: Path,
    *,
    passwd: Path,
    acl: Path,
    tls: dict[str, Path] | None = None,
    readable: bool = True,
) -> Iterator[SecuredBroker]:
    """Mosquitto with ``allow_anonymous false`` and the given files (plus a TLS listener).

    The config is ``deploy/mosquitto/auth.conf`` (and ``tls.conf``) with paths and ports
    of this test filled in, so the test proves the shipped snippets.
    """
    repo = Path(__file__).resolve().parents[2]
    port = free_port()
    # Started as root, Mosquitto drops to the mosquitto user: it must read these files.
    workdir.chmod(0o755)
    for p in (*((passwd, acl) if readable else ()), *(tls or {}).values()):
        p.chmod(0o644)
    conf = (repo / "deploy/mosquitto/auth.conf").read_text()
    conf = conf.replace("/etc/mosquitto/brightkitchen.passwd", str(passwd))
    conf = conf.replace("/etc/mosquitto/brightkitchen.acl", str(acl))
    conf += f"\nlistener {port} 127.0.0.1\n"
    tls_port = None
    if tls is not None:
        tls_port = free_port()
        snippet = (repo / "deploy/mosquitto/tls.conf").read_text()
        snippet = snippet.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
        for name, path in tls.items():
            snippet = snippet.replace(f"/etc/mosquitto/certs/{name}", str(path))
        conf += "\n" + snippet
    (workdir / "mosquitto.conf").write_text(conf)
    log = (workdir / "mosquitto.log").open("ab")
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(workdir / "mosquitto.conf"), "-v"], stdout=log, stderr=log
    )
    broker = SecuredBroker(proc=proc, port=port, workdir=workdir, tls_port=tls_port)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 10, what="mosquitto to listen")
        if tls_port is not None:
            wait_until(lambda: port_open("127.0.0.1", tls_port), 10, what="TLS listener")
        yield broker
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@dataclass
class Peer:
    """A connected (or refused) paho client recording what it receives."""

    client: mqtt.Client
    reason: Any = None
    received: list[tuple[str, bytes]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)

    def topics(self) -> list[str]:
        return [t for t, _ in self.received]

    def publish(self, topic: str, payload: bytes = b"{}") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    port: int, username: str | None, password: str | None, *, subscribe: list[str] | None = None
) -> Peer:
    """Connect with these credentials and wait for the CONNACK (success or refusal)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    if username is not None:
        client.username_pw_set(username, password)
    peer = Peer(client)
    subscribed = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        peer.reason = rc
        peer.connected.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = lambda _c, _u, m: peer.received.append((m.topic, bytes(m.payload)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert peer.connected.wait(5), "no CONNACK"
    if subscribe and not peer.reason.is_failure:
        client.subscribe([(t, 1) for t in subscribe])
        assert subscribed.wait(5)
    return peer


@contextlib.contextmanager
def broker_dir() -> Iterator[Path]:
    """A temporary directory the mosquitto user can read (pytest's tmp_path is root-only)."""
    with tempfile.TemporaryDirectory(prefix="bk-mqauth-") as d:
        Path(d).chmod(0o755)
        yield Path(d)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> Path:
    """A self-signed CA ``<name>.crt`` / ``<name>.key`` in ``d`` (openssl CLI), valid 2 days."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)  # fmt: skip
    return d / f"{name}.crt"


def make_server_cert(d: Path, ca: str) -> dict[str, Path]:
    """``server.crt`` / ``server.key`` signed by CA ``ca``, for 127.0.0.1 and localhost.

    Returns the files under the names deploy/mosquitto/tls.conf uses.
    """
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
             cwd=d)  # fmt: skip
    return {
        "ca.crt": d / f"{ca}.crt",
        "server.crt": d / "server.crt",
        "server.key": d / "server.key",
    }
