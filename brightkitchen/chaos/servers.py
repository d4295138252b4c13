"""The servers a chaos run owns: a private Mosquitto, a private PostgreSQL cluster, a TCP proxy.

The run kills and restarts them, so they are never the machine's own services: each lives
in the run's temporary directory on a free port. Mosquitto runs the production config
(deploy/mosquitto/mosquitto.conf, persistence on) with only the listener and the
persistence directory changed. PostgreSQL is a fresh ``initdb`` cluster of the system's
binaries, stopped with ``pg_ctl stop -m fast`` or ``-m immediate`` (a crash: recovery
replays the WAL on start). When this process runs as root, PostgreSQL runs as the
``postgres`` user (it refuses root) and Mosquitto drops to its own user, so their
directories are made writable for them. The proxy sits between the edge box and the broker
so the box's uplink can be cut and restored without touching the broker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from bkcommon.errors import BrightKitchenError, ConfigError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_port(port: int, timeout_s: float, what: str, up: bool = True) -> None:
    """Wait until the port accepts (``up``) or refuses connections; raise on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port) == up:
            return
        time.sleep(0.05)
    raise BrightKitchenError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class PrivateMosquitto:
    """Mosquitto with the production config on a free port, stoppable with SIGTERM or SIGKILL."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        """Write the config into ``workdir`` (created, writable by the broker's user)."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise ConfigError("chaos needs the mosquitto binary (apt-get install mosquitto)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        # Started as root, Mosquitto drops to its own user: it must write its persistence
        # file here, or sessions would silently not survive the restarts this run makes.
        workdir.chmod(0o777)
        conf = (REPO_ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
        conf = re.sub(
            r"(?m)^persistence_location .*$", f"persistence_location {workdir.resolve()}/", conf
        )
        conf = re.sub(r"(?m)^listener 1883.*$", f"listener {self.port} 127.0.0.1", conf)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf, encoding="utf-8")
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """mqtt:// URL of the broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it listens."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (the mosquitto binary, our config)
                [self.binary, "-c", str(self.conf)], stdout=log, stderr=log
            )
        wait_port(self.port, 15, "mosquitto to listen")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop with ``sig`` (SIGTERM saves the persistence file; SIGKILL does not)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        wait_port(self.port, 10, "mosquitto to close its port", up=False)


def pg_bin_dir() -> Path | None:
    """Directory of initdb / pg_ctl: the system's PostgreSQL 15 (or 16), one on PATH, or
    the binaries bundled with pgserver; None when there are none."""
    for d in PG_BIN_DIRS:
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    try:
        import pgserver
    except ImportError:
        return None
    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return bundled if (bundled / "initdb").exists() else None


def _pg_bin() -> Path:
    found = pg_bin_dir()
    if found is None:
        raise ConfigError(
            "chaos needs PostgreSQL server binaries (/usr/lib/postgresql/15/bin or pgserver)"
        )
    return found


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb) on a free port in ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        """Create the cluster (trust auth for local connections, user ``postgres``)."""
        self.bin = _pg_bin()
        self.workdir = workdir
        self.port = port or free_port()
        self.data = workdir / "pgdata"
        self.sock = workdir / "pgsock"
        self.log_path = workdir / "postgres.log"
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ConfigError(
                    "running as root, chaos starts PostgreSQL as the 'postgres' user, and there "
                    "is none: create it (useradd -r postgres) or run as another user"
                ) from exc
            self._as = ["runuser", "-u", "postgres", "--"]
            for p in (self.data, self.sock):
                p.mkdir(exist_ok=True)
                shutil.chown(p, "postgres", "postgres")
            self.log_path.touch()
            shutil.chown(self.log_path, "postgres", "postgres")
        else:
            self.sock.mkdir(exist_ok=True)
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )

    def _run(self, args: list[str], timeout_s: float = 120) -> None:
        done = subprocess.run(  # noqa: S603 (PostgreSQL's own tools)
            [*self._as, *args], capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if done.returncode != 0:
            raise BrightKitchenError(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )

    def url(self, db: str = "postgres") -> str:
        """libpq URL of database ``db``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the cluster (crash recovery runs here after an immediate stop)."""
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.sock}"
            " -c max_connections=100 -c shared_buffers=32MB"
        )
        self._run(
            [
                str(self.bin / "pg_ctl"),
                *("-D", str(self.data), "-l", str(self.log_path)),
                *("-o", opts, "-w", "-t", "120", "start"),
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (clean) or ``-m immediate`` (no checkpoint: a crash)."""
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def running(self) -> bool:
        """True while the postmaster's pid file exists."""
        return (self.data / "postmaster.pid").exists()


class TcpProxy:
    """A TCP forwarder whose listener and connections can be cut and restored (an uplink)."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port``; call :meth:`open`."""
        self.target_port = target_port
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._cut = threading.Event()

    @property
    def url(self) -> str:
        """mqtt:// URL through the proxy."""
        return f"mqtt://127.0.0.1:{self.port}"

    def open(self) -> None:
        """Listen (again) and forward new connections."""
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self._cut.clear()
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), name="uplink-accept", daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every forwarded connection: the box sees its uplink die."""
        self._cut.set()
        ls, self._listener = self._listener, None
        if ls is not None:
            with contextlib.suppress(OSError):
                ls.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close() alone does not
            with contextlib.suppress(OSError):
                ls.close()
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self, ls: socket.socket) -> None:
        while not self._cut.is_set():
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._cut.is_set():
                    client.close()
                    upstream.close()
                    return
                self._socks.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        with self._lock:
            self._socks.discard(src)
            self._socks.discard(dst)
