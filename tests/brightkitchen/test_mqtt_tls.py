"""MQTT over TLS with a local CA: clients verify the broker, and refuse one they cannot verify.

A CA and a server certificate (SAN 127.0.0.1 and localhost) are made with the openssl CLI
in the test; Mosquitto runs deploy/mosquitto/tls.conf plus auth.conf. The edge box's
real publisher and the simulator's client connect with ``mqtts://`` and BK_MQTT_CA_FILE.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bkcommon.errors import BrokerError
from bkcommon.settings import CommonSettings, parse_mqtt_url
from bkcommon.topics import status_topic
from brightkitchen.mqtt_auth import Account, AccountKind, RegistryView, hash_password, render
from brightkitchen.simulate.publisher import connect as sim_connect
from edge.outbox import Outbox
from edge.publish import EdgePublisher
from tests.brightkitchen.mqtt_auth_support import (
    SecuredBroker,
    broker_dir,
    make_ca,
    make_server_cert,
    secured_broker,
)
from tests.support.services import wait_until

PASSWORDS = {"edge.box-1": "box-password-1", "svc.ingest": "ingest-password-1"}


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[SecuredBroker]:
    with broker_dir() as d:
        make_ca(d, "ca")
        make_ca(d, "rogue-ca")  # a CA the broker's certificate does not chain to
        tls = make_server_cert(d, "ca")
        accounts = [
            Account(
                "edge.box-1", AccountKind.EDGE, "box-1", hash_password(PASSWORDS["edge.box-1"])
            ),
            Account(
                "svc.ingest", AccountKind.SERVICE, "ingest", hash_password(PASSWORDS["svc.ingest"])
            ),
        ]
        files = render(accounts, RegistryView(sites=frozenset({"s1"}), box_site={"box-1": "s1"}))
        (d / "passwd").write_text(files.passwd)
        (d / "acl").write_text(files.acl)
        with secured_broker(d, passwd=d / "passwd", acl=d / "acl", tls=tls) as broker:
            yield broker


def _url(broker: SecuredBroker, user: str) -> str:
    return f"mqtts://{user}:{PASSWORDS[user]}@127.0.0.1:{broker.tls_port}"


def test_the_ca_file_setting_reaches_the_endpoint(
    tls_broker: SecuredBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = str(tls_broker.workdir / "ca.crt")
    monkeypatch.setenv("BK_MQTT_CA_FILE", ca)
    assert parse_mqtt_url("mqtts://h").ca_file == ca
    assert parse_mqtt_url("mqtts://h", ca_file="/x.pem").ca_file == "/x.pem"
    assert "pass" not in repr(parse_mqtt_url("mqtts://u:pass@h"))
    assert CommonSettings().mqtt_ca_file == ca
    monkeypatch.setenv("BK_MQTT_CA_FILE", "/no/such/ca.pem")
    with pytest.raises(ValueError, match=r"no such CA file: /no/such/ca\.pem"):
        CommonSettings()


def test_edge_and_ingest_clients_connect_over_tls_with_the_local_ca(
    tls_broker: SecuredBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BK_MQTT_CA_FILE", str(tls_broker.workdir / "ca.crt"))
    ingest = sim_connect(_url(tls_broker, "svc.ingest"), client_id="tls-ingest")
    received: list[str] = []
    ingest.on_message = lambda _c, _u, m: received.append(m.topic)
    ingest.subscribe("bk/v1/+/edge/+/status", qos=1)
    outbox = Outbox(tmp_path / "outbox.db")
    box = EdgePublisher(mqtt_url=_url(tls_broker, "edge.box-1"), client_id="tls-box-1",
                        site_id="s1", box_id="box-1", outbox=outbox)  # fmt: skip
    box.start()
    try:
        # the box connected over TLS, authenticated, and its retained status came through
        wait_until(lambda: status_topic("s1", "box-1") in received, 10, what="box status")
    finally:
        box.stop()
        outbox.close()
        ingest.loop_stop()
        ingest.disconnect()


@pytest.mark.parametrize(
    "ca",
    [
        "rogue-ca.crt",  # a CA that did not sign the broker's certificate
        None,  # the system's trusted CAs do not know the local CA either
    ],
)
def test_clients_refuse_a_broker_they_cannot_verify(
    tls_broker: SecuredBroker, monkeypatch: pytest.MonkeyPatch, ca: str | None
) -> None:
    if ca is None:
        monkeypatch.delenv("BK_MQTT_CA_FILE", raising=False)
    else:
        monkeypatch.setenv("BK_MQTT_CA_FILE", str(tls_broker.workdir / ca))
    with pytest.raises(BrokerError, match="certificate verify failed"):
        sim_connect(_url(tls_broker, "svc.ingest"), client_id="tls-refused")
