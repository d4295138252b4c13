"""The district stack of deploy/compose, started from Debian packages instead of images.

Each piece runs the repository's own files: Mosquitto through ``mosquitto/run.sh`` with
the compose ``mosquitto.conf`` (paths moved into a work directory), Prometheus with the
compose ``prometheus.yml`` (targets moved to 127.0.0.1) and the shipped rule files,
PostgreSQL as a private ``initdb`` cluster, and the brightkitchen commands the compose
services run. Only what a container would provide (hostnames, volumes) is rewritten.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from tests.support.services import REPO, port_open, wait_until

COMPOSE = REPO / "deploy/compose"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SBIN_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"


def distinct_ports(n: int) -> list[int]:
    """``n`` free ports, all different (each socket is held until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def missing_tools() -> list[str]:
    """Programs the district test needs that this machine lacks (scripts/system-deps.sh)."""
    need = {"prometheus": "prometheus", "promtool": "prometheus", "mosquitto": "mosquitto"}
    gone = [pkg for tool, pkg in need.items() if shutil.which(tool, path=SBIN_PATH) is None]
    if not (PG_BIN / "initdb").exists():
        gone.append("postgresql-15")
    return sorted(set(gone))


@dataclass
class Stack:
    """Processes of one district started by the test, all stopped by :meth:`close`."""

    work: Path
    ports: list[int] = field(default_factory=lambda: distinct_ports(8))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)
    pg_data: Path | None = None
    as_postgres: list[str] = field(default_factory=list)

    def port(self) -> int:
        """A port no other process of this stack was given (they start at different times)."""
        return self.ports.pop()

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a long-running process in its own group with its log in the work directory."""
        log = (self.work / f"{name}.log").open("ab")
        self.logs.append(log)
        proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def wait(self, pred: Callable[[], bool], timeout: float, what: str, *logs: str) -> None:
        """``wait_until`` whose failure shows the named logs as they are at the timeout."""
        try:
            wait_until(pred, timeout, 0.3, what=what)
        except AssertionError as exc:
            tails = "\n".join(f"--- {name}.log\n{self.log(name)}" for name in logs)
            raise AssertionError(f"{exc}\n{tails}") from None

    def log(self, name: str) -> str:
        """The tail of a process's log, for assertion messages."""
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # ------------------------------------------------------------------ PostgreSQL
    def start_postgres(self) -> int:
        """initdb a private cluster (as the postgres user when root) and start it."""
        port = self.port()
        data, sock = self.work / "pgdata", self.work / "pgsock"
        for d in (data, sock):
            d.mkdir()
        if os.geteuid() == 0:  # initdb refuses root
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
            for d in (data, sock):
                shutil.chown(d, "postgres", "postgres")
        run = [*self.as_postgres]
        subprocess.run(
            [*run, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock}"
        subprocess.run(
            [*run, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
             "-o", opts, "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        self.pg_data = data
        return port

    # ------------------------------------------------------------------ Mosquitto
    def start_mosquitto(self, env: dict[str, str]) -> tuple[int, Path]:
        """Mosquitto through deploy/compose/mosquitto/run.sh; returns (port, devices dir)."""
        port = self.port()
        conf = (COMPOSE / "mosquitto/mosquitto.conf").read_text()
        auth, data, devices = self.work / "auth", self.work / "data", self.work / "devices"
        devices.mkdir()
        for old, new in {
            "persistence_location /mosquitto/data/": f"persistence_location {data}/",
            "password_file /mosquitto/auth/passwd": f"password_file {auth}/passwd",
            "acl_file /mosquitto/auth/acl": f"acl_file {auth}/acl",
            "listener 1883": f"listener {port} 127.0.0.1",
        }.items():
            assert old in conf, f"compose mosquitto.conf no longer has {old!r}"
            conf = conf.replace(old, new)
        conf_path = self.work / "mosquitto.conf"
        conf_path.write_text(conf)
        self.spawn(
            "mosquitto",
            ["sh", str(COMPOSE / "mosquitto/run.sh"), str(COMPOSE / "mosquitto"), str(auth),
             str(data), str(conf_path), str(devices)],
            {**env, "PATH": SBIN_PATH, "AUTH_WATCH_INTERVAL_S": "0.3"},
        )  # fmt: skip
        self.wait(lambda: port_open("127.0.0.1", port), 60, "mosquitto to listen", "mosquitto")
        return port, devices

    # ------------------------------------------------------------------ Prometheus
    def start_prometheus(self, targets: dict[str, str]) -> int:
        """Prometheus with the compose config, ``targets`` mapping compose host:port to ours."""
        port = self.port()
        cfg = yaml.safe_load((COMPOSE / "prometheus/prometheus.yml").read_text())
        cfg["global"]["scrape_interval"] = "1s"
        cfg["global"]["evaluation_interval"] = "1s"
        cfg["rule_files"] = [str(COMPOSE / "prometheus/rules/*.yml")]
        for job in cfg["scrape_configs"]:
            for static in job.get("static_configs", []):
                static["targets"] = [
                    f"127.0.0.1:{port}" if t == "localhost:9090" else targets[t]
                    for t in static["targets"]
                ]
            for sd in job.get("file_sd_configs", []):
                edge = self.work / "edge-boxes.yml"
                edge.write_text("[]\n")  # as gen-env.sh writes it: no box yet
                sd["files"] = [str(edge)]
        conf = self.work / "prometheus.yml"
        conf.write_text(yaml.safe_dump(cfg))
        self.spawn(
            "prometheus",
            [shutil.which("prometheus", path=SBIN_PATH) or "prometheus",
             f"--config.file={conf}", f"--storage.tsdb.path={self.work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            {"PATH": SBIN_PATH},
        )  # fmt: skip
        self.wait(lambda: port_open("127.0.0.1", port), 60, "prometheus to listen", "prometheus")
        return port

    # ------------------------------------------------------------------ brightkitchen
    def brightkitchen(self, name: str, args: list[str], env: dict[str, str]) -> None:
        """Start ``brightkitchen ARGS`` as the compose service ``name`` does."""
        self.spawn(name, [sys.executable, "-m", "brightkitchen.cli", *args], env)

    def close(self) -> None:
        """Stop every process (SIGTERM to its group, then SIGKILL) and the cluster."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for log in self.logs:
            log.close()
        if self.pg_data is not None:
            subprocess.run(
                [*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.pg_data), "-m",
                 "fast", "-w", "stop"],
                check=False, capture_output=True, timeout=60,
            )  # fmt: skip
