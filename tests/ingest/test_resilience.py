"""Crash and restart: kill -9 of the worker and a broker restart lose and duplicate nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bkcommon.topics import reading_topic
from tests.ingest.conftest import count, publisher
from tests.support.services import Broker, wait_until

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
N = 12_000


def _payload(i: int) -> bytes:
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return json.dumps({"schema_version": 1, "ts": ts, "seq": i, "temp_c": 4.0}).encode()


class WorkerProcess:
    """``brightkitchen ingest run`` as a subprocess, with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker and wait until it is subscribed."""
        start_at = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brightkitchen.cli", "ingest", "run"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: (
                b"subscribed to" in self.log.read_bytes()[start_at:]
                or self.proc is None
                or self.proc.poll() is not None
            ),
            30,
            what="worker to subscribe",
        )
        assert self.proc.poll() is None, self.log.read_text()

    def kill(self) -> None:
        """SIGKILL: no flush, no ack, no goodbye."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait for the exit (it flushes, acknowledges, disconnects); return code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        return self.proc.returncode


@pytest.fixture
def worker_env(registry_db: str, broker: Broker, topic_prefix: str) -> dict[str, str]:
    """Environment of a worker subprocess on the private broker and the test database."""
    env = dict(os.environ)
    env.update(
        {
            "BK_DATABASE_URL": registry_db,
            "BK_MQTT_URL": broker.url,
            "BK_MQTT_PREFIX": topic_prefix,
            "BK_LOG_LEVEL": "INFO",
            "BK_INGEST_GROUP": "ingest",
            "BK_INGEST_CLIENT_ID": f"bk-ingest-crash-{uuid.uuid4().hex[:6]}",
            "BK_INGEST_FLUSH_INTERVAL_MS": "50",
            "BK_INGEST_BATCH_MAX": "2000",
        }
    )
    return env


@pytest.fixture
def worker_proc(worker_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """The worker subprocess, stopped at the end of the test."""
    wp = WorkerProcess(worker_env, tmp_path / "worker.log")
    yield wp
    wp.stop()


def _publish_all(url: str, topic: str, done: threading.Event, chunk: int = 1000) -> None:
    """Publish readings 0..N-1 at QoS 1 in bounded chunks; a chunk cut by an outage is resent."""
    pub = publisher(url)
    pub.reconnect_delay_set(1, 2)
    try:
        for start in range(0, N, chunk):
            for _attempt in range(30):
                if not pub.is_connected():
                    time.sleep(0.2)
                    continue
                infos = [
                    pub.publish(topic, _payload(i), qos=1) for i in range(start, start + chunk)
                ]
                try:
                    for info in infos:
                        info.wait_for_publish(10)
                    if all(info.is_published() for info in infos):
                        break
                except (RuntimeError, ValueError):
                    time.sleep(0.2)  # broker gone: resend the chunk once it is back
            else:
                raise AssertionError(f"chunk {start} never published")
    finally:
        pub.loop_stop()
        pub.disconnect()
        done.set()


def _rows(db_url: str) -> int:
    return count(db_url, "SELECT count(*) FROM sensor_readings WHERE sensor_id = 'fridge-1'")


def _assert_exactly_once(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        seqs = [
            r[0]
            for r in conn.execute(
                "SELECT seq FROM sensor_readings WHERE sensor_id = 'fridge-1' ORDER BY seq"
            ).fetchall()
        ]
    assert seqs == list(range(N))


@pytest.mark.slow
def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    worker_proc: WorkerProcess, registry_db: str, broker: Broker, topic_prefix: str
) -> None:
    worker_proc.start()
    done = threading.Event()
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    t = threading.Thread(target=_publish_all, args=(broker.url, topic, done), daemon=True)
    t.start()
    wait_until(lambda: _rows(registry_db) >= 2000, 30, what="first rows")
    worker_proc.kill()
    killed_at = _rows(registry_db)
    assert killed_at < N, "the stream ended before the kill; raise N"
    worker_proc.start()
    wait_until(done.is_set, 60, what="publisher to finish")
    wait_until(lambda: _rows(registry_db) >= N, 60, what=f"{N} rows")
    assert worker_proc.stop() == 0, worker_proc.log.read_text()[-3000:]
    assert b"stopped" in worker_proc.log.read_bytes()
    _assert_exactly_once(registry_db)
    assert count(registry_db, "SELECT count(*) FROM dead_letters") == 0


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_nothing(
    worker_env: dict[str, str],
    tmp_path: Path,
    registry_db: str,
    broker: Broker,
    topic_prefix: str,
) -> None:
    # Mosquitto 2.0 persists sessions and plain subscriptions over a restart but not shared
    # ones ($share/...): what is published before the worker resubscribes finds no shared
    # subscriber; the gap guard's plain subscription (ingest/guard.py) catches it.
    worker_proc = WorkerProcess({**worker_env, "BK_INGEST_GROUP": "ingest"}, tmp_path / "w.log")
    worker_proc.start()
    done = threading.Event()
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    t = threading.Thread(target=_publish_all, args=(broker.url, topic, done), daemon=True)
    t.start()
    # Mosquitto started as root drops to the "mosquitto" user: let it write its persistence
    # file into the fixture's private directory, or the sessions die with the broker.
    broker.workdir.chmod(0o777)
    wait_until(lambda: _rows(registry_db) >= 2000, 30, what="first rows")
    broker.stop()
    assert _rows(registry_db) < N, "the stream ended before the restart; raise N"
    broker.start()
    wait_until(done.is_set, 60, what="publisher to finish")
    try:
        wait_until(lambda: _rows(registry_db) >= N, 30, what=f"{N} rows")
    except AssertionError:
        with psycopg.connect(registry_db) as conn:
            have = {r[0] for r in conn.execute("SELECT seq FROM sensor_readings")}
        missing = sorted(set(range(N)) - have)
        print("MISSING", len(missing), missing[:5], missing[-5:])
        print(worker_proc.log.read_text()[-5000:])
        print((broker.workdir / "mosquitto.log").read_text()[-5000:])
        worker_proc.stop()
        raise
    assert b"disconnected from the broker" in worker_proc.log.read_bytes()
    assert worker_proc.stop() == 0, worker_proc.log.read_text()[-3000:]
    assert b"stopped" in worker_proc.log.read_bytes()
    _assert_exactly_once(registry_db)
