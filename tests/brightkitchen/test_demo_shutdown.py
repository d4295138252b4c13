"""The demo's shutdown is bounded (children that ignore SIGTERM share one deadline), and a
second run on the same database starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg

from brightkitchen.demo import Demo, DemoOptions, stop_processes

IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
STOPS_ON_SIGTERM = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"


def _child(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # its signal handler is in place
    return proc


def test_hung_children_are_killed_after_one_shared_deadline_not_one_each() -> None:
    procs = {f"hung-{k}": _child(IGNORES_SIGTERM) for k in range(3)}
    procs["polite"] = _child(STOPS_ON_SIGTERM)
    t0 = time.monotonic()
    stop_processes(procs, timeout_s=1.5)
    elapsed = time.monotonic() - t0
    assert all(p.poll() is not None for p in procs.values())
    assert procs["polite"].returncode == -15  # SIGTERM was enough for it
    assert {procs[f"hung-{k}"].returncode for k in range(3)} == {-9}
    assert 1.4 <= elapsed < 3.5, elapsed  # one deadline (1.5 s), not three (4.5 s)


def test_children_already_gone_are_left_alone() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(10)
    stop_processes({"done": done}, timeout_s=1)
    assert done.returncode == 0


def test_the_demo_admin_of_an_earlier_run_on_the_same_database_is_kept(db_url: str) -> None:
    # BK_DATABASE_URL pointing at a database the demo ran on before: its admin exists
    demo = Demo(DemoOptions())
    env = {**os.environ, "BK_DATABASE_URL": db_url}
    demo._create_admin(env)
    demo._create_admin(env)  # "username 'admin' is taken": not an error
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE username = 'admin'").fetchone() == (
            1,
        )
