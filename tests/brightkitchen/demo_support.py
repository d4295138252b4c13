"""Run ``brightkitchen demo`` as a real child process for a test, and stop it cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.services import REPO, free_port, wait_until


def count(url: str, sql: str) -> int:
    """The first column of the first row of ``sql`` as an int (0 when there is no row)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


@dataclass
class DemoRun:
    """A running demo: its process, ports, data directory and printed output."""

    proc: subprocess.Popen[bytes]
    api_port: int
    hook_port: int
    data_dir: Path
    out_path: Path

    def text(self) -> str:
        """Everything the demo printed so far."""
        return self.out_path.read_text()


@contextmanager
def running_demo(db_url: str, tmp_path: Path, *args: str) -> Iterator[DemoRun]:
    """Start the demo on embedded amqtt and ``db_url``; wait until it runs; SIGINT it after.

    The process has exited when the block ends (``run.proc.returncode`` is set).
    """
    api_port, hook_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BK_MQTT_URL", "BK_EDGE_"))}
    env.update({"BK_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"})
    out_path = tmp_path / "demo.out"
    data_dir = tmp_path / "demo"
    with out_path.open("w+") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "brightkitchen.cli",
                "demo",
                "--broker",
                "amqtt",
                "--port",
                str(api_port),
                "--hook-port",
                str(hook_port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,  # its own process group, so a hang cannot leave orphans
        )
        run = DemoRun(proc, api_port, hook_port, data_dir, out_path)
        try:
            wait_until(
                lambda: "demo is running" in run.text() or proc.poll() is not None,
                60,
                what="the demo to start",
            )
            assert proc.poll() is None, run.text()
            yield run
        finally:
            stop_demo(proc, run)


def stop_demo(proc: subprocess.Popen[bytes], run: DemoRun) -> None:
    """Ctrl-C the demo and require it to stop in order, then kill whatever is left of its group.

    The demo bounds its own shutdown (children stopped together, 10 s, then the broker), so 40 s
    is ample; past that the test fails, and the group kill still takes its children with it.
    """
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        stuck = f"the demo did not stop within 40 s of Ctrl-C:\n{run.text()}"
        raise AssertionError(stuck) from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader: children too
        if proc.poll() is None:
            proc.wait(5)
