"""``brightkitchen demo``: the whole backend on one machine with nothing else installed.

Servers: the PostgreSQL at ``BK_DATABASE_URL`` and the broker at ``BK_MQTT_URL`` when
they are set; otherwise an embedded PostgreSQL (pgserver) and a private broker (the
``mosquitto`` binary with the production config when it is installed, else the
embedded amqtt broker, which speaks MQTT 3.1.1 only, so ingest is told to use 3.1.1
and a plain subscription). Then the same processes as production, started through
the same CLI: migrations, registry sync, ``ingest run``, ``api run`` and the sensor
simulator (accelerated, so an excursion becomes a ticket and a webhook within a
minute), an edge box (``edge run``) watching a rendered kitchen video in which a raw-meat
board lands on the cooked station (a ``mixed_cutting_board`` violation, then a ticket),
plus a local webhook sink that prints each alert as it arrives.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from bkcommon.errors import BrightKitchenError, ConfigError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo runs and for how long."""

    api_port: int = 8000
    hook_port: int = 8765
    duration_s: float = 0.0  # 0 = until Ctrl-C
    keep_data: bool = False
    data_dir: Path = Path("var/demo")
    sites: int = 3
    speed: float = 60.0
    history_s: float = 5400.0  # simulated time starts 90 min back: the gateway replay shows
    status_every_s: float = 5.0
    quiet: bool = False
    broker: str = "auto"  # auto, mosquitto or amqtt (when BK_MQTT_URL is unset)
    edge: bool = True  # run an edge box on the synthetic kitchen video
    admin_user: str = "admin"
    # A demo on localhost only; printed at start so the person can sign in.
    admin_password: str = "brightkitchen-demo"  # noqa: S105
    # The region's inspector (执法检查人员), same password: inspections and their tickets only.
    inspector_user: str = "inspector"
    # The canteens' food-safety officer (食品安全员) and their liability insurer, same password.
    officer_user: str = "officer"
    insurer_user: str = "insurer"


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


def wait_for(
    pred: Any, timeout_s: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``pred()`` until true; raise BrightKitchenError on timeout or if ``proc`` died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise BrightKitchenError(f"{what}: the process exited with code {proc.returncode}")
        time.sleep(0.1)
    raise BrightKitchenError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# ---------------------------------------------------------------- webhook sink


@dataclass
class Sink:
    """Alerts received by the local webhook sink (what an officer's phone would get)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    echo: bool = True

    def add(self, path: str, body: bytes) -> None:
        """Record (and print) one delivered alert."""
        try:
            data: Any = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = {"text": body.decode("utf-8", "replace")}
        if not isinstance(data, dict):
            data = {"body": data}
        item = {"path": path, "at": time.time(), "payload": data}
        with self.lock:
            self.received.append(item)
            if self.echo:  # one write per line, under the lock: handler threads interleave
                sys.stdout.write(f"🔔 {describe_alert(data)}  (→ {path})\n")
                sys.stdout.flush()


def describe_alert(data: dict[str, Any]) -> str:
    """One line for a webhook payload, e.g. ``ticket ZG-... opened: <title> (<canteen>)``: the
    title already names the equipment, so the line carries no device id."""
    no = data.get("ticket_no")
    title = data.get("title") or data.get("text") or ""
    site = data.get("site_name") or data.get("site_id")
    where = f" ({site})" if site else ""
    if no:
        event = str(data.get("event") or "ticket_opened")
        verb = event.removeprefix("ticket_") if event.startswith("ticket_") else event
        return f"ticket {no} {verb}: {title}{where}"
    return str(title or json.dumps(data, ensure_ascii=False)[:200])


def check_ports(api_port: int, hook_port: int) -> None:
    """Refuse, before anything starts, ports the demo cannot have: the same port twice, or
    one something else already listens on (else the API dies on start with a bare exit
    code, after the database and broker were set up)."""
    if api_port == hook_port:
        raise ConfigError(f"--port and --hook-port are both {api_port}: give them two ports")
    for port, flag in ((api_port, "--port"), (hook_port, "--hook-port")):
        if port_open(port):
            raise ConfigError(
                f"port {port} on 127.0.0.1 is in use (another demo or service?): stop it, or "
                f"pass {flag} with a free port"
            )


def start_sink(port: int, sink: Sink) -> ThreadingHTTPServer:
    """Serve POST /hook/... on 127.0.0.1:port in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            sink.add(self.path, body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')

        def log_message(self, format: str, *args: Any) -> None:
            return

    try:
        srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise ConfigError(f"webhook sink port {port} is taken: {exc}") from exc
    threading.Thread(target=srv.serve_forever, name="webhook-sink", daemon=True).start()
    return srv


# ---------------------------------------------------------------- servers


@dataclass
class Services:
    """Where the database and broker are, and how ingest must talk to the broker."""

    database_url: str
    mqtt_url: str
    ingest_env: dict[str, str]
    description: list[str]


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, keep: bool) -> Iterator[str]:
    """Start pgserver in ``data_dir``; yield the URL of database ``brightkitchen``."""
    from pgserver.postgres_server import get_server

    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl call
    data_dir.mkdir(parents=True, exist_ok=True)
    srv = get_server(data_dir, cleanup_mode="stop" if keep else "delete")
    try:
        yield str(srv.get_uri("brightkitchen"))
    finally:
        srv.cleanup()


def mosquitto_path() -> str | None:
    """The mosquitto binary, if installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


@contextlib.contextmanager
def private_mosquitto(binary: str, workdir: Path, logs: Path) -> Iterator[str]:
    """Run mosquitto with the production config on a free port; yield its URL."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = (REPO_ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    conf = conf.replace(
        "persistence_location /var/lib/mosquitto/", f"persistence_location {workdir.resolve()}/"
    )
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    path = workdir / "mosquitto.conf"
    path.write_text(conf, encoding="utf-8")
    with (logs / "mosquitto.log").open("ab") as log:
        proc = subprocess.Popen([binary, "-c", str(path)], stdout=log, stderr=log)  # noqa: S603
    try:
        wait_for(lambda: port_open(port), 10, "mosquitto to listen", proc)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        stop_process(proc, "mosquitto")


@contextlib.contextmanager
def embedded_amqtt(logs: Path) -> Iterator[str]:
    """Run the embedded amqtt broker (MQTT 3.1.1) in a child process; yield its URL."""
    port = free_port()
    with (logs / "amqtt.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "brightkitchen.demo", "amqtt", str(port)],
            stdout=log,
            stderr=log,
        )
    try:
        wait_for(lambda: port_open(port), 20, "the amqtt broker to listen", proc)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        stop_process(proc, "amqtt")


def run_amqtt(port: int) -> None:
    """Serve amqtt on 127.0.0.1:port until SIGTERM (entry point of the broker child)."""
    import asyncio

    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        await broker.shutdown()

    asyncio.run(main())


def stop_process(proc: subprocess.Popen[Any], name: str, timeout_s: float = 15) -> None:
    """SIGTERM a child we started, then SIGKILL it if it does not exit in time."""
    stop_processes({name: proc}, timeout_s)


def stop_processes(procs: Mapping[str, subprocess.Popen[Any]], timeout_s: float = 15) -> None:
    """SIGTERM every child at once, then SIGKILL those still running after ``timeout_s``.

    Why at once: stopped one after the other, children that each hang (say on a broker that no
    longer acknowledges) add their timeouts up, and whoever stops the demo gives up first and
    leaves them orphaned. One shared deadline bounds the whole shutdown.
    """
    running = {name: proc for name, proc in procs.items() if proc.poll() is None}
    for proc in running.values():
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + timeout_s
    for name, proc in running.items():
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s; killing it", name, timeout_s)
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def services(opts: DemoOptions, stack: contextlib.ExitStack) -> Iterator[Services]:
    """Resolve or start the database and the broker."""
    logs = opts.data_dir / "logs"
    desc: list[str] = []
    db = os.environ.get("BK_DATABASE_URL")
    if db:
        desc.append("database: BK_DATABASE_URL")
    else:
        db = stack.enter_context(embedded_postgres(opts.data_dir / "pg", opts.keep_data))
        desc.append(f"database: embedded PostgreSQL (pgserver) in {opts.data_dir / 'pg'}")
    mqtt = os.environ.get("BK_MQTT_URL")
    ingest_env: dict[str, str] = {}
    if mqtt:
        desc.append(f"broker: BK_MQTT_URL ({mqtt})")
    elif opts.broker != "amqtt" and (binary := mosquitto_path()) is not None:
        mqtt = stack.enter_context(private_mosquitto(binary, opts.data_dir / "mqtt", logs))
        desc.append(f"broker: private Mosquitto {mqtt} (production config)")
    else:
        if opts.broker == "mosquitto":
            raise ConfigError("--broker mosquitto: the mosquitto binary is not installed")
        mqtt = stack.enter_context(embedded_amqtt(logs))
        ingest_env = {
            "BK_INGEST_MQTT_PROTOCOL": "3.1.1",
            "BK_INGEST_GROUP": "",
            "BK_EDGE_MQTT_PROTOCOL": "3.1.1",  # amqtt drops an MQTT 5 CONNECT unanswered
        }
        desc.append(f"broker: embedded amqtt {mqtt} (MQTT 3.1.1, plain subscription)")
    yield Services(db, mqtt, ingest_env, desc)


# ---------------------------------------------------------------- the demo


@dataclass
class Counts:
    """What the status line shows."""

    readings: int = 0
    alarms: int = 0
    tickets: int = 0
    sent: int = 0
    dead_letters: int = 0
    violations: int = 0


def read_counts(url: str) -> Counts:
    """Count readings stored, alarms, tickets and notifications sent."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM sensor_readings), (SELECT count(*) FROM alarms),
                      (SELECT count(*) FROM tickets),
                      (SELECT count(*) FROM notifications WHERE status = 'sent'),
                      (SELECT count(*) FROM dead_letters),
                      (SELECT count(*) FROM violations)"""
        ).fetchone()
    assert row is not None
    return Counts(*(int(x) for x in row))


class Demo:
    """Runs every piece; ``run`` blocks until the duration is over or Ctrl-C."""

    def __init__(self, opts: DemoOptions, out: IO[str] | None = None) -> None:
        self.opts = opts
        self.out = out or sys.stdout
        self.sink = Sink(echo=not opts.quiet)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stop = threading.Event()
        self.database_url = ""
        self.display_url = ""
        self._edge_reported = False
        self.watching = False
        """True while the demo is up and its status loop runs (Ctrl-C then stops it in order)."""

    def say(self, text: str) -> None:
        """Print one line for the person running the demo."""
        print(text, file=self.out, flush=True)

    def run(self) -> int:
        """Start everything, stream status, shut down cleanly; return the exit code."""
        from brightkitchen.db import migrate
        from brightkitchen.registry import sync_registry
        from brightkitchen.simulate.fleet import generate_site_file, site_file_yaml

        opts = self.opts
        data = opts.data_dir
        check_ports(opts.api_port, opts.hook_port)
        if not opts.keep_data and data.exists():
            for child in data.iterdir():  # the rendered video and model in cache/ are kept
                if child.name == CACHE_DIR:
                    continue
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        (data / "logs").mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="demo-video"))
            video = pool.submit(ensure_demo_video, data / CACHE_DIR) if opts.edge else None
            sink_srv = start_sink(opts.hook_port, self.sink)
            stack.callback(sink_srv.shutdown)
            svc = stack.enter_context(services(opts, stack))
            self.database_url = svc.database_url
            for line in svc.description:
                self.say(f"  {line}")
            result = migrate(svc.database_url)
            self.say(
                f"  schema version {result.current} "
                f"({'TimescaleDB' if result.timescale else 'plain PostgreSQL'})"
            )
            hook = f"http://127.0.0.1:{opts.hook_port}/hook/officer-1"
            site_file = generate_site_file(
                opts.sites,
                1,
                site_prefix="demo",
                webhook_url=hook,
            )
            site_file = with_duty_hooks(site_file, f"http://127.0.0.1:{opts.hook_port}/hook")
            if video is not None:
                site_file = with_edge_box(site_file, video_path(data / CACHE_DIR))
            meal_end = demo_meal_end()
            site_file = with_demo_cabinets(site_file, meal_end)
            site_path = data / "site.yaml"
            site_path.write_text(site_file_yaml(site_file), encoding="utf-8")
            import psycopg

            with psycopg.connect(svc.database_url) as conn:
                res = sync_registry(conn, site_file)
            self.say(
                f"  registry: {res.sites} sites, {res.sensors} sensors, {res.cameras} camera(s) "
                f"({site_path})"
            )
            env = dict(os.environ)
            env.update(
                {
                    "BK_DATABASE_URL": svc.database_url,
                    "BK_MQTT_URL": svc.mqtt_url,
                    "BK_SITE_FILE": str(site_path),
                    "PYTHONUNBUFFERED": "1",
                }
            )
            env.update(svc.ingest_env)
            for key, value in DEMO_LADDER_ENV.items():  # the operator's own values win
                env.setdefault(key, value)
            self._create_admin(env)
            stack.callback(self._stop_all)
            self._spawn("ingest", ["ingest", "run"], env)
            api = self._spawn(
                "api", ["api", "run", "--host", "127.0.0.1", "--port", str(opts.api_port)], env
            )
            base = f"http://127.0.0.1:{opts.api_port}"
            wait_for(lambda: http_up(f"{base}/healthz"), 60, "the API (/healthz)", api)
            token = self._sign_in(base)
            self._spawn(
                "simulator",
                [
                    "simulate",
                    "sensors",
                    "--sites",
                    str(opts.sites),
                    "--per-profile",
                    "1",
                    "--site-prefix",
                    "demo",
                    "--speed",
                    str(opts.speed),
                    "--duration",
                    str(opts.history_s),
                    "--follow",
                    "--mqtt-url",
                    svc.mqtt_url,
                ],
                env,
            )
            if video is not None:
                self._start_edge(site_file, site_path, video.result(), env)
            self._replay_lunch(site_file, meal_end, svc.mqtt_url)
            self._seed_workflows(base, token, site_file)
            self._seed_duties(base, token, site_file)
            self._create_accounts(base, token, site_file)
            self.say("")
            self.say("brightkitchen demo is running. Look at:")
            self.say(f"  alarms         {base}/api/v1/alarms")
            self.say(f"  tickets        {base}/api/v1/tickets")
            self.say(f"  sites          {base}/api/v1/sites")
            self.say(f"  notifications  {base}/api/v1/notifications")
            self.say(f"  API docs       {base}/docs")
            self.say(
                f"  console        {base}/console/  (sign in: {opts.admin_user} / "
                f"{opts.admin_password}; the region's inspector: {opts.inspector_user} / "
                f"{opts.admin_password}; the canteens' food-safety officer: "
                f"{opts.officer_user} / {opts.admin_password}; their insurer: "
                f"{opts.insurer_user} / {opts.admin_password})"
            )
            self.say(f"  API token      {token}  (also in {data / 'api-token.txt'})")
            self.say(f"  e.g. curl -H 'Authorization: Bearer {token}' {base}/api/v1/tickets")
            if self.display_url:
                self.say(f"  kitchen display: {self.display_url}")
            self.say(f"  alerts arrive at the officer's webhook {hook} and are printed here")
            self.say(f"  logs in {data / 'logs'}; stop with Ctrl-C")
            self.say("")
            code = self._watch()
        self.say("stopped")
        return code

    def _create_admin(self, env: dict[str, str]) -> None:
        """Create the demo's admin account through the same CLI an operator uses."""
        opts = self.opts
        done = subprocess.run(  # noqa: S603 (our own CLI)
            [
                sys.executable,
                "-m",
                "brightkitchen.cli",
                "users",
                "create",
                "--username",
                opts.admin_user,
                "--role",
                "admin",
                "--password-stdin",
            ],
            input=opts.admin_password,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
            timeout=60,
        )
        # "is taken": a database the demo ran on before (BK_DATABASE_URL, --keep-data); its
        # admin signs in with the same demo password
        if done.returncode != 0 and "is taken" not in done.stdout + done.stderr:
            raise BrightKitchenError(f"could not create the demo admin: {done.stderr.strip()}")

    def _create_accounts(self, base: str, token: str, site_file: Any) -> None:
        """The people beside the admin, made by the admin over HTTP as in the console: the
        region's inspector (执法检查人员), the canteens' food-safety officer (食品安全员, the
        person the alerts go to) and the insurer of the canteens' liability policies, with a
        policy per canteen so that the insurer's risk record has something to show."""
        from bkcommon.localtime import local_date
        from bkcommon.timeutil import utcnow
        from brightkitchen.simulate.duties import http_caller

        call = http_caller(base, token)
        sites = [str(s.id) for s in site_file.sites]
        officer = (site_file.sites[0].people.get("officer") or [None])[0]
        accounts: list[dict[str, Any]] = [
            {"username": self.opts.inspector_user, "role": "inspector",
             "region_id": str(site_file.sites[0].region)},
            {"username": self.opts.officer_user, "role": "officer", "person_id": officer},
            {"username": self.opts.insurer_user, "role": "insurer", "insurer": DEMO_INSURER,
             "site_ids": sites},
        ]  # fmt: skip
        for body in accounts:
            if body.get("person_id", "") is None:
                continue  # a site file without an officer: nobody to sign in as
            status, answer = call(
                "POST", "/api/v1/users", {**body, "password": self.opts.admin_password}
            )
            if status >= 400 and "taken" not in str(answer):  # a data folder run before
                raise BrightKitchenError(f"demo: creating the {body['role']}: {answer}")
        today = local_date(utcnow())
        for n, site_id in enumerate(sites, start=1):
            policy = {
                "site_id": site_id, "insurer": DEMO_INSURER, "policy_no": f"DEMO-FSL-{n:03d}",
                "cover_cny": "1000000", "premium_cny": "3000",
                "starts_on": (today - timedelta(days=90)).isoformat(),
                "ends_on": (today + timedelta(days=275)).isoformat(),
            }  # fmt: skip
            status, answer = call("POST", "/api/v1/policies", policy)
            if status >= 400 and status != 409:  # 409: the policy of an earlier run
                raise BrightKitchenError(f"demo: recording the policy of {site_id}: {answer}")

    def _sign_in(self, base: str) -> str:
        """Log in as the demo admin over HTTP; keep the bearer token for the person and tests."""
        body = json.dumps(
            {"username": self.opts.admin_user, "password": self.opts.admin_password}
        ).encode()
        req = urllib.request.Request(  # noqa: S310 (localhost)
            f"{base}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            token = str(json.loads(resp.read())["access_token"])
        (self.opts.data_dir / "api-token.txt").write_text(token + "\n", encoding="utf-8")
        return token

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.opts.data_dir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 (our own CLI)
            [sys.executable, "-m", "brightkitchen.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def _start_edge(
        self, site_file: Any, site_path: Path, video_file: Path, env: dict[str, str]
    ) -> None:
        """Run ``edge run`` for the demo box on the rendered video (BK_EDGE_* under data_dir)."""
        from brightkitchen.demo_model import demo_model_path

        data = self.opts.data_dir
        model, note = demo_model_path(data / CACHE_DIR)
        port = free_port()
        site_id, box_id = demo_box_ids(site_file)
        edge_env = dict(env)
        edge_env.update(
            {
                "BK_EDGE_DATA_DIR": str((data / "edge").resolve()),
                "BK_EDGE_DISPLAY_PORT": str(port),
                "BK_EDGE_METRICS_PORT": "0",
                "BK_EDGE_MODEL_PATH": str(model.resolve()),
                "BK_EDGE_CLIENT_ID": f"demo-edge-{box_id}"[:64],
                "BK_EDGE_STATUS_INTERVAL_S": "10",
            }
        )
        self._spawn(
            "edge", ["edge", "run", "--config", str(site_path.resolve()), "--box", box_id], edge_env
        )
        self.display_url = f"http://127.0.0.1:{port}/"
        self.say(f"  edge box {box_id} of {site_id}: camera on {video_file} (SYNTHETIC video)")
        self.say(f"  edge {note}")

    def _replay_lunch(self, site_file: Any, meal_end: datetime, mqtt_url: str) -> None:
        """Once ingest stores readings, publish the four cabinets' cycles after the lunch."""
        from brightkitchen.simulate.cabinets import (
            Scenario,
            cabinet_emissions,
            cabinet_name,
            publish_cabinets,
        )

        wait_for(
            lambda: read_counts(self.database_url).readings > 0,
            60,
            "ingest to store the first readings",
            self.procs["ingest"],
        )
        site_id = str(site_file.sites[0].id)
        n = publish_cabinets(mqtt_url, cabinet_emissions(site_id, meal_end))
        import psycopg

        def cycles() -> int:
            with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                row = conn.execute("SELECT count(*) FROM disinfection_cycles").fetchone()
            return int(row[0]) if row else 0

        # Registered "now" until the cycles are stored, so the sweep cannot judge the
        # lunch before its readings arrive; then back-dated so it is judged.
        wait_for(lambda: cycles() >= 3, 60, "the cabinets' cycles", self.procs["ingest"])
        with psycopg.connect(self.database_url) as conn:
            backdate_cabinets(conn, meal_end)
        self.say(
            f"  disinfection: {n} readings of 4 cabinets after lunch at {site_id} ("
            + ", ".join(f"{cabinet_name(sc)} {sc.value}" for sc in Scenario)
            + "); the closed window opens 餐具消毒不达标 / 餐具未消毒 tickets"
        )

    def _seed_workflows(self, base: str, token: str, site_file: Any) -> None:
        """A failed rapid test (its ticket) and a public complaint (in triage), over HTTP."""
        from bkcommon.timeutil import utcnow
        from brightkitchen.simulate.workflows import seed_workflows

        site = site_file.sites[0]
        seeded = seed_workflows(
            base, token, site_id=str(site.id), region_id=str(site.region), now=utcnow()
        )
        self.say(
            f"  rapid test: sample {seeded.rapid_test_id} of 青菜 failed the pesticide test at "
            f"{site.id}: 快检不合格 ticket ({base}/api/v1/rapid-tests)"
        )
        self.say(
            f"  包保 visit {seeded.visit_id}: one checklist 'no' becomes a ticket "
            f"({base}/api/v1/supervision/visits, coverage {base}/api/v1/supervision/coverage)"
        )
        self.say(
            f"  complaint: one from the public page, waiting in triage ({base}/api/v1/complaints);"
            f" tracking {seeded.tracking_url}"
        )
        self.say(
            f"  inspections: the standard checklist (template {seeded.checklist_id}) is ready "
            f"for the inspector ({base}/console/inspections/new)"
        )

    def _seed_duties(self, base: str, token: str, site_file: Any) -> None:
        """Today's duties at every site over HTTP; the last site's daily check is not done."""
        from bkcommon.timeutil import utcnow
        from brightkitchen.simulate.duties import http_caller, play_duties

        now = utcnow()
        sites = [str(s.id) for s in site_file.sites]
        call = http_caller(base, token)
        status, body = call(
            "PUT",
            "/api/v1/settings/deadlines",
            {"region_id": str(site_file.sites[0].region), "rule": "daily_check_missed",
             "hours": DEMO_MISSED_CHECK_H},
        )  # fmt: skip
        if status >= 400:
            raise BrightKitchenError(f"demo: setting the daily check's deadline: {body}")
        deadline = demo_duty_deadline(now)
        plan = demo_duties_plan(sites, now=now, meal_end=demo_meal_end())
        played = play_duties(
            call,
            plan,
            deadline_local=deadline,
            sample_fridge=lambda site: demo_sample_fridge(site_file, site),
        )
        done = [d.site_id for d in plan if d.check_done]
        missed = [d.site_id for d in plan if not d.check_done]
        self.say(
            f"  日管控 daily check due {deadline} China time: done at {', '.join(done) or 'none'};"
            f" not done at {', '.join(missed)}: once due it becomes a 日管控未按时完成 ticket that "
            "climbs the escalation ladder: officer (/hook/officer-1), then director "
            "(/hook/director-1), then the 包保 cadre (/hook/cadre-1); the demo gives the rule "
            f"{DEMO_MISSED_CHECK_H * 3600:.0f} s to rectify and tells the cadre "
            f"{float(DEMO_LADDER_ENV['BK_API_REGULATOR_AFTER_H']) * 3600:.0f} s after "
            f"({base}/api/v1/duties/today, {base}/console/coverage)"
        )
        off = ", ".join(f"{name} at {site}" for site, _day, name in played.off_duty) or "nobody"
        self.say(
            f"  晨检 morning health check: {played.staff_checked} staff checked; off duty today: "
            f"{off} ({base}/api/v1/sites/{{site}}/health-checks?off_duty=true)"
        )
        gaps = ", ".join(f"{meal} at {site}" for site, _day, meal in played.unsampled) or "none"
        grace = os.environ.get("BK_DUTY_SAMPLE_GRACE_MIN") or DEMO_SAMPLE_GRACE_MIN
        self.say(
            f"  留样 food samples: {played.meals_sampled} meals sampled; no sample retained: "
            f"{gaps}: {grace} min after the lunch ended it becomes a 未按规定留样 ticket "
            f"({base}/console/duties, {base}/console/coverage)"
        )

    def _stop_all(self) -> None:
        stop_processes(self.procs, timeout_s=10)

    def _watch(self) -> int:
        opts = self.opts
        t0 = time.monotonic()
        last = Counts()
        next_status = t0
        self.watching = True
        while not self.stop.is_set():
            now = time.monotonic()
            if opts.duration_s and now - t0 >= opts.duration_s:
                break
            for name in ("ingest", "api"):
                proc = self.procs[name]
                if proc.poll() is not None:
                    self.say(
                        f"{name} exited with code {proc.returncode}; "
                        f"see {opts.data_dir / 'logs' / (name + '.log')}"
                    )
                    return 1
            edge = self.procs.get("edge")
            if edge is not None and edge.poll() is not None and not self._edge_reported:
                self._edge_reported = True  # the backend demo goes on without the camera
                self.say(
                    f"edge exited with code {edge.returncode}; "
                    f"see {opts.data_dir / 'logs' / 'edge.log'}"
                )
            if now >= next_status:
                next_status = now + opts.status_every_s
                try:
                    c = read_counts(self.database_url)
                except Exception as exc:  # a status line must never end the demo
                    logger.warning("status query failed: %s", exc)
                else:
                    if c != last and not opts.quiet:
                        self.say(
                            f"[{now - t0:5.0f} s] readings stored {c.readings}, alarms {c.alarms}, "
                            f"violations {c.violations}, tickets {c.tickets}, "
                            f"notifications sent {c.sent}, "
                            f"webhooks received {len(self.sink.received)}"
                            + (f", dead letters {c.dead_letters}" if c.dead_letters else "")
                        )
                    last = c
            self.stop.wait(0.2)
        self.say("stopping...")
        return 0


CACHE_DIR = "cache"
DEMO_BOX = "box-1"
DEMO_INSURER = "示范财险 (demo insurer)"  # the canteens' food-safety liability insurer
DEMO_CAMERA = "cam-kitchen"


DEMO_LUNCH_AGO = timedelta(minutes=70)
"""The demo's lunch ended this long before it starts: its 60-minute window has just closed."""


def demo_meal_end() -> datetime:
    """When the demo's replayed lunch ended (whole minutes, in the past)."""
    from bkcommon.timeutil import utcnow

    return (utcnow() - DEMO_LUNCH_AGO).replace(second=0, microsecond=0)


DEMO_MISSED_CHECK_H = 0.005
"""Hours the demo's region gives a 日管控未按时完成 ticket (18 s, so the ladder plays out
while one watches; a real region sets hours, see docs/duties.md)."""

DEMO_SAMPLE_GRACE_MIN = str(int(DEMO_LUNCH_AGO.total_seconds() // 60) + 2)
"""The replayed lunch's samples fall due a minute or two into the demo: after the demo has
recorded them where they are kept (so a sampled lunch is never flagged), soon enough to see
the unsampled one become a ticket."""

DEMO_LADDER_ENV = {
    "BK_API_REGULATOR_AFTER_H": "0.005",  # overdue 18 s → the 包保 cadre hears
    "BK_API_ESCALATION_INTERVAL_S": "3",
    "BK_DUTY_INTERVAL_S": "3",
    "BK_DUTY_SAMPLE_GRACE_MIN": DEMO_SAMPLE_GRACE_MIN,
    "BK_RISK_REFRESH_MIN": "0.5",  # the overview's risk scores follow the demo's tickets
}
"""API settings the demo runs with unless the environment sets them: the ladder in seconds."""

DEMO_SICK = ("李阿姨", "hand_wound")
"""The staff member the demo's morning health check finds with a symptom (off duty)."""


def with_duty_hooks(site_file: Any, hook_base: str) -> Any:
    """Give the director and the 包保 cadre a webhook each (the officer has one already), so
    the escalation ladder's steps arrive at the demo's sink one after the other."""
    from bkcommon.sitefile import parse_site_file

    data = site_file.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    for person in data["people"]:
        for role, path in (("director", "director-1"), ("cadre", "cadre-1")):
            if str(person["id"]).endswith(f"-{role}") and not person.get("channels"):
                person["channels"] = [{"kind": "webhook", "address": f"{hook_base}/{path}"}]
    return parse_site_file(data, "<demo site file>")


def demo_duty_deadline(now: datetime) -> str:
    """The demo's daily-check deadline (the region's local HH:MM): the next whole minute at
    least 20 s ahead, so the sites that do their check do it in time and the one that does
    not misses it a minute or so into the demo (23:59 at the end of the day)."""
    from bkcommon.localtime import region_zone

    zone = region_zone()
    local = now.astimezone(zone) + timedelta(seconds=80)
    if local.date() != now.astimezone(zone).date():
        return "23:59"
    return local.strftime("%H:%M")


def demo_duties_plan(sites: list[str], *, now: datetime, meal_end: datetime) -> list[Any]:
    """Today at every site: the daily check done except at the last site; four staff checked,
    one of them off duty at the first site; breakfast and the replayed lunch sampled except
    lunch at the second site (the last when there are fewer than three)."""
    from brightkitchen.simulate.duties import STAFF, SiteDay, StaffCheck, china_day

    day = china_day(now)
    meal_day = demo_meal_day(meal_end)
    unsampled = sites[1] if len(sites) > 2 else sites[-1]
    plan = []
    for i, site in enumerate(sites):
        staff = tuple(
            StaffCheck(name, 36.6, (DEMO_SICK[1],))
            if i == 0 and name == DEMO_SICK[0]
            else StaffCheck(name, round(36.3 + 0.1 * k, 1))
            for k, name in enumerate(STAFF[:4])
        )
        sampled = {"breakfast": min(meal_end - timedelta(hours=5), now), "lunch": meal_end}
        if site == unsampled:
            del sampled["lunch"]
        plan.append(
            SiteDay(
                site_id=site,
                day=day,
                check_done=site != sites[-1],
                staff=staff,
                sampled=sampled,
                unsampled=("lunch",) if site == unsampled else (),
                sample_day=meal_day,
            )
        )
    return plan


def demo_sample_fridge(site_file: Any, site_id: str) -> str | None:
    """The site's monitored sample fridge, where its samples are kept."""
    from bkcommon.profiles import Profile

    for site in site_file.sites:
        if str(site.id) == site_id:
            for sensor in site.sensors:
                if sensor.profile is Profile.SAMPLE_FRIDGE:
                    return str(sensor.id)
    return None


def demo_meal_day(meal_end: datetime) -> date:
    """The replayed lunch's date on the demo's meal schedule, whose zone puts the lunch at
    13:xx local (``with_demo_cabinets``); its food samples are recorded under this date."""
    from zoneinfo import ZoneInfo

    from brightkitchen.simulate.cabinets import fixed_zone_at

    return meal_end.astimezone(ZoneInfo(fixed_zone_at(meal_end, 13))).date()


def with_demo_cabinets(site_file: Any, meal_end: datetime) -> Any:
    """Add the simulated cabinets (good, short, cool, missed) to site 0, and the replayed
    lunch to every site's meal schedule, so that its food samples are due everywhere."""
    from bkcommon.sitefile import parse_site_file
    from brightkitchen.simulate.cabinets import with_cabinets

    data = with_cabinets(
        site_file.model_dump(mode="json", exclude_defaults=True, by_alias=True), meal_end
    )
    for site in data["sites"][1:]:
        site["meals"] = data["sites"][0]["meals"]
    return parse_site_file(data, "<demo site file>")


def backdate_cabinets(conn: Any, meal_end: datetime) -> None:
    """Register the demo's cabinets from before its replayed lunch, so that lunch is judged
    (meals before a cabinet's registration never are)."""
    conn.execute(
        "UPDATE disinfection_cabinets SET created_at = %s",
        (meal_end - timedelta(days=1),),
    )


def video_path(cache_dir: Path) -> Path:
    """Where the default demo video is cached (rendered by ``ensure_demo_video``)."""
    from brightkitchen.demo_video import video_file_for

    return video_file_for(cache_dir)


def ensure_demo_video(cache_dir: Path) -> Path:
    """Render (once) and return the demo's synthetic kitchen video."""
    from brightkitchen.demo_video import ensure_demo_video as ensure

    return ensure(cache_dir)


def demo_box_ids(site_file: Any) -> tuple[str, str]:
    """(site id, box id) of the demo's edge box: the first site's box."""
    site = site_file.sites[0]
    return str(site.id), f"{site.id}-{DEMO_BOX}"


def with_edge_box(site_file: Any, video_file: Path) -> Any:
    """Add the demo edge box (one camera on the video, cooked and raw board stations) to site 0."""
    from bkcommon.sitefile import parse_site_file
    from brightkitchen.demo_video import demo_zones

    data = site_file.model_dump(mode="json", exclude_defaults=True)
    site = data["sites"][0]
    site["edge_boxes"] = [
        {
            "id": f"{site['id']}-{DEMO_BOX}",
            "cameras": [
                {
                    "id": f"{site['id']}-{DEMO_CAMERA}",
                    "name": "后厨砧板区 (synthetic kitchen video)",
                    "url": str(video_file.resolve()),
                    "analyse_fps": 5,
                    "zones": demo_zones(),
                }
            ],
        }
    ]
    return parse_site_file(data, "<demo site file>")


def http_up(url: str) -> bool:
    """True when an HTTP server answers ``url`` with anything below 500."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (our own localhost URL)
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def run_demo(opts: DemoOptions) -> int:
    """Run the demo until Ctrl-C, SIGTERM or the duration, and shut it down in order.

    Once the demo is running, Ctrl-C only asks it to stop, as SIGTERM does: an interrupt raised
    wherever the main thread happens to be (inside a status query, say) would skip the orderly
    path. A second Ctrl-C, or one while it is still starting, interrupts at once; the children
    are stopped either way.
    """
    demo = Demo(opts)

    def _term(_sig: int, _frm: object) -> None:
        demo.stop.set()

    def _interrupt(_sig: int, _frm: object) -> None:
        if demo.watching and not demo.stop.is_set():
            demo.stop.set()
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return demo.run()
    except KeyboardInterrupt:
        demo.say("stopped")
        return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "amqtt":
        run_amqtt(int(sys.argv[2]))
    else:
        sys.exit("usage: python -m brightkitchen.demo amqtt PORT (internal: the demo's broker)")
