"""Session fixtures: a migrated template database, a per-test database, the MQTT broker."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.support.databases import PathDb, PathUnavailableError, SchemaPath, Templates, clone, drop
from tests.support.services import (
    Broker,
    port_open,
    postgres_base_url,
    private_broker,
)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL (no database) of a reachable PostgreSQL server."""
    url, handle = postgres_base_url()
    yield url
    if handle is not None:
        handle.cleanup()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def db_templates(pg_server: str) -> Iterator[Templates]:
    """Migrated template databases of this session, one per schema path, made on first use."""
    templates = Templates(pg_server, f"bk_tpl_{os.getpid()}")
    yield templates
    templates.cleanup()


@pytest.fixture(scope="session")
def template_db(db_templates: Templates) -> str:
    """Name of the database migrated once per session (on the path ``migrate`` chooses for
    the server), used as the template of test databases."""
    return db_templates.default()[0]


@pytest.fixture
def db_url(pg_server: str, template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated database for one test, dropped afterwards."""
    name = f"bk_t_{uuid.uuid4().hex[:12]}"
    url = clone(pg_server, template_db, name)
    yield url
    drop(pg_server, name)


@pytest.fixture(params=["plain", "timescale"])
def path_db(
    request: pytest.FixtureRequest, pg_server: str, db_templates: Templates
) -> Iterator[PathDb]:
    """A fresh database on each schema path: tests using it run on plain PostgreSQL and, where
    the server can create the extension, on TimescaleDB (skipped with the reason otherwise)."""
    path: SchemaPath = request.param
    try:
        template = db_templates.for_path(path)
    except PathUnavailableError as exc:
        pytest.skip(str(exc))
    name = f"bk_t_{uuid.uuid4().hex[:12]}"
    url = clone(pg_server, template, name)
    yield PathDb(path, url)
    drop(pg_server, name)


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """URL of a reachable MQTT broker: the machine's Mosquitto, else a throwaway one."""
    env = os.environ.get("BK_TEST_MQTT_URL")
    if env:
        yield env
        return
    if port_open("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    with private_broker() as b:
        yield b.url


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A private Mosquitto (production config, persistence on) the test may stop and restart."""
    with private_broker() as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix unique to one test, so tests sharing a broker never see each other."""
    return f"bktest/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cli_env(db_url: str, mqtt_url: str) -> dict[str, str]:
    """Environment for running ``brightkitchen`` subprocesses against the test services."""
    env = dict(os.environ)
    env.update({"BK_DATABASE_URL": db_url, "BK_MQTT_URL": mqtt_url, "BK_LOG_LEVEL": "INFO"})
    return env


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the brightkitchen CLI in a subprocess and return the completed process."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
