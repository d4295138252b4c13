"""``brightkitchen chaos --short``: every fault of the full run, seconds each, 0 lost, 0 duplicated.

The command starts its own Mosquitto and PostgreSQL cluster (never the machine's), so it
needs the mosquitto binary and PostgreSQL server binaries; the whole run takes about a
minute on a 2-core machine. The full run (minutes per fault, 10 000 fuzz cases per payload
type) is an operator command whose numbers are in docs/chaos.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from brightkitchen.chaos.reconcile import Window, tally
from brightkitchen.chaos.servers import TcpProxy, free_port, pg_bin_dir, port_open

REPO = Path(__file__).resolve().parents[2]


def test_tally_names_every_missing_and_duplicated_id() -> None:
    readings = {"s1": Counter({0: 1, 1: 2, 3: 1})}
    events = Counter({"ev-0": 1, "ev-2": 1})
    w = Window("fault", {"s1": (0, 4)}, (0, 3))
    t = tally(w, readings, {("s1", 0), ("s1", 2)}, events, lambda n: f"ev-{n}")
    assert (t.readings_sent, t.readings_stored, t.readings_duplicated) == (4, 3, 1)
    assert t.readings_missing == ["s1#2"]
    assert t.readings_missing_acked == 1  # acknowledged by the broker, then lost
    assert t.events_missing == ["ev-1"]
    assert (t.lost, t.duplicated) == (2, 1)


def test_uplink_proxy_cuts_and_restores() -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen(4)
        proxy = TcpProxy(server.getsockname()[1])
        proxy.open()
        c = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s, _ = server.accept()
        c.sendall(b"ping")
        assert s.recv(4) == b"ping"
        proxy.cut()
        assert c.recv(4) == b""  # the box sees its link die
        assert not port_open(proxy.port)
        proxy.open()
        assert port_open(proxy.port)
        proxy.cut()
        c.close()
        s.close()


needs_servers = pytest.mark.skipif(
    pg_bin_dir() is None or not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()),
    reason="needs the mosquitto binary and PostgreSQL server binaries (system or pgserver's)",
)


@needs_servers
def test_chaos_short_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    report = tmp_path / "chaos.json"
    env = dict(os.environ)
    for name in ("BK_DATABASE_URL", "BK_MQTT_URL", "BK_MQTT_PREFIX"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", "chaos", "--short", "--report", str(report)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(report.read_text())
    total = data["total"]
    names = [f["name"] for f in data["faults"]]
    assert any("SIGKILL ingest" in n for n in names)
    assert any("Mosquitto SIGKILL" in n for n in names)
    assert any("immediate" in n for n in names)
    assert any("disk full" in n for n in names)
    assert total["readings"]["sent"] > 100
    assert total["events"]["sent"] > 20
    assert (total["readings"]["missing"], total["readings"]["duplicates"]) == (0, 0), done.stdout[
        -4000:
    ]
    assert (total["events"]["missing"], total["events"]["duplicates"]) == (0, 0), done.stdout[
        -4000:
    ]
    assert data["downstream"]["findings_applied_twice"] == 0
    assert data["crashes"] == []
    assert data["errors"] == []
    assert data["ok"] is True
    assert done.returncode == 0
