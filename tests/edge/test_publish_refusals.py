"""A broker that refuses: ACL denials keep the row and pause sending, an event over the
broker's maximum packet size is set aside and the queue goes on (real Mosquitto, MQTT 5)."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import edge.publish as publish
from bkcommon.messages import TIME_FLOOR
from edge.outbox import Outbox
from edge.publish import EdgePublisher
from tests.edge.mqtt_support import Recorder
from tests.support.services import free_port, port_open, wait_until

VT = "bk/v1/s1/edge/b1/violation"
StartBroker = Callable[[str], tuple[str, "subprocess.Popen[bytes]"]]


@pytest.fixture
def broker_with(tmp_path: Path) -> Iterator[StartBroker]:
    """Start a private Mosquitto with extra configuration lines; returns (url, process)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(extra: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        conf = tmp_path / f"m{port}.conf"
        conf.write_text(
            # user root: when started as root, Mosquitto would drop to its own user, which
            # cannot read an ACL file in the test's private directory
            f"listener {port} 127.0.0.1\nuser root\nallow_anonymous true\npersistence false\n"
            + extra
        )
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_until(lambda: port_open("127.0.0.1", port), 10, what="mosquitto")
        return f"mqtt://127.0.0.1:{port}", proc

    yield start
    for p in procs:
        p.kill()
        p.wait(10)


def _publisher(url: str, ob: Outbox) -> EdgePublisher:
    return EdgePublisher(
        mqtt_url=url,
        client_id=f"edge-{uuid.uuid4().hex[:8]}",
        site_id="s1",
        box_id="b1",
        outbox=ob,
        prefix="bk/v1",
        inflight_max=2,
    )


def _received(rec: Recorder) -> set[object]:
    return {json.loads(p)["i"] for t, p, _ in rec.messages if t == VT}


def test_a_publish_the_acl_denies_stays_in_the_outbox_until_allowed(
    tmp_path: Path, broker_with: StartBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under MQTT 3.1.1 Mosquitto acks a denied publish like a delivered one and the row was
    deleted; now the PUBACK's reason keeps it, and it goes once the ACL allows it."""
    monkeypatch.setattr(publish, "REFUSAL_PAUSE_S", 0.3)
    acl = tmp_path / "acl"
    acl.write_text("topic read #\ntopic write bk/v1/s1/edge/b1/status\n")
    url, proc = broker_with(f"acl_file {acl}\n")
    rec = Recorder(url, "bk/v1/#", f"rec-{uuid.uuid4().hex[:6]}")
    ob = Outbox(tmp_path / "o.sqlite", disk_reserve_bytes=None)
    for i in range(3):
        ob.put(f"evt{i:08d}", VT, json.dumps({"i": i}).encode())
    pub = _publisher(url, ob)
    pub.start()
    try:
        wait_until(lambda: pub.refused_total >= 2, 10, what="refusals")
        assert ob.depth() == 3
        assert pub.acked_total == 0
        assert _received(rec) == set()
        assert ob.set_aside_rows() == []
        acl.write_text("topic readwrite #\n")
        proc.send_signal(signal.SIGHUP)  # Mosquitto reloads its ACL file
        wait_until(lambda: _received(rec) == {0, 1, 2}, 15, what="delivery once allowed")
        wait_until(lambda: ob.depth() == 0, 5, what="outbox drained")
        assert pub.acked_total == 3
    finally:
        pub.stop(1)
        rec.close()


def test_an_event_over_the_broker_packet_limit_is_set_aside_and_the_rest_flow(
    tmp_path: Path, broker_with: StartBroker
) -> None:
    """Mosquitto drops the connection on an oversize packet, paho resends it on reconnect:
    without the CONNACK's Maximum Packet Size check the queue stalled behind it for ever."""
    url, _proc = broker_with("max_packet_size 100000\n")
    rec = Recorder(url, "bk/v1/#", f"rec-{uuid.uuid4().hex[:6]}")
    ob = Outbox(tmp_path / "o.sqlite", disk_reserve_bytes=None)
    ob.put("big00000", VT, json.dumps({"i": "big", "pad": "x" * 200_000}).encode())
    for i in range(5):
        ob.put(f"evt{i:08d}", VT, json.dumps({"i": i}).encode())
    pub = _publisher(url, ob)
    pub.start()
    try:
        wait_until(lambda: _received(rec) == {0, 1, 2, 3, 4}, 15, what="the five small events")
        wait_until(lambda: ob.depth() == 0, 5, what="outbox drained")
        [aside] = ob.set_aside_rows()
        assert aside.event_id == "big00000"
        assert "over the limit 100000" in aside.reason
        assert ob.stats().set_aside_total == 1
    finally:
        pub.stop(1)
        rec.close()


def test_the_publisher_starts_with_an_unset_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A box without a battery-backed clock boots in 1970 until NTP: the last will and the
    status are stamped at the contract's floor instead of refusing to start."""
    monkeypatch.setattr(publish, "utcnow", lambda: datetime(1970, 1, 1, 0, 5, tzinfo=UTC))
    ob = Outbox(tmp_path / "o.sqlite", disk_reserve_bytes=None)
    pub = _publisher("mqtt://127.0.0.1:1", ob)
    assert pub._default_status().ts == TIME_FLOOR


def test_a_broker_that_speaks_only_mqtt_311_gets_the_events_over_311(tmp_path: Path) -> None:
    """The demo's embedded amqtt broker drops an MQTT 5 CONNECT unanswered: with
    ``mqtt_protocol`` 3.1.1 (what the demo sets) the box delivers to it."""
    from brightkitchen.demo import embedded_amqtt

    with embedded_amqtt(tmp_path) as url:
        rec = Recorder(url, "bk/v1/#", f"rec-{uuid.uuid4().hex[:6]}")
        ob = Outbox(tmp_path / "o.sqlite", disk_reserve_bytes=None)
        for i in range(3):
            ob.put(f"evt{i:08d}", VT, json.dumps({"i": i}).encode())
        pub = EdgePublisher(
            mqtt_url=url, client_id=f"edge-{uuid.uuid4().hex[:8]}", site_id="s1", box_id="b1",
            outbox=ob, prefix="bk/v1", mqtt_v5=False,
        )  # fmt: skip
        pub.start()
        try:
            wait_until(lambda: _received(rec) == {0, 1, 2}, 20, what="events over 3.1.1")
            wait_until(lambda: ob.depth() == 0, 5, what="outbox drained")
        finally:
            pub.stop(1)
            rec.close()
