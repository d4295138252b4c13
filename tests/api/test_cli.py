"""The ``brightkitchen api`` commands as an operator runs them (real subprocesses)."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import httpx
import psycopg
import pytest

from api.settings import ApiSettings
from tests.api.conftest import HookServer, insert_finding
from tests.conftest import run_cli
from tests.support.services import free_port, wait_until


@pytest.mark.parametrize("command", ["run", "worker"])
def test_validate_config_ok(command: str, cli_env: dict[str, str]) -> None:
    res = run_cli("api", command, "--validate-config", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "configuration OK" in res.stdout


def test_validate_config_names_every_bad_variable(cli_env: dict[str, str]) -> None:
    env = {
        **cli_env,
        "BK_API_PORT": "eighty",
        "BK_API_MAX_ATTEMPTS": "0",
    }
    res = run_cli("api", "run", "--validate-config", env=env)
    assert res.returncode == 2
    assert "BK_API_PORT" in res.stderr
    assert "BK_API_MAX_ATTEMPTS" in res.stderr
    bad_common = run_cli(
        "api", "worker", "--validate-config", env={**cli_env, "BK_MQTT_URL": "http://nope"}
    )
    assert bad_common.returncode == 2
    assert "mqtt_url" in bad_common.stderr


def test_validate_config_checks_auth_and_risk_settings(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "BK_AUTH_MAX_FAILURES": "0", "BK_RISK_W_OVERDUE": "-1"}
    res = run_cli("api", "run", "--validate-config", env=env)
    assert res.returncode == 2
    assert "BK_AUTH_MAX_FAILURES" in res.stderr
    assert "BK_RISK_W_OVERDUE" in res.stderr


@pytest.mark.usefixtures("registry")
def test_risk_compute_stores_due_scores_once(
    cli_env: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    sites = conn.execute("SELECT count(*) FROM sites").fetchone()
    assert sites is not None
    assert sites[0] > 0
    first = run_cli("risk", "compute", env=cli_env)
    assert first.returncode == 0, first.stderr
    assert f"stored for {sites[0]} site(s)" in first.stdout
    stored = conn.execute("SELECT count(DISTINCT site_id) FROM risk_scores").fetchone()
    assert stored == (sites[0],)
    again = run_cli("risk", "compute", env=cli_env)  # all fresh: nothing due
    assert "stored for 0 site(s)" in again.stdout
    forced = run_cli("risk", "compute", "--all", env=cli_env)
    assert f"stored for {sites[0]} site(s)" in forced.stdout
    total = conn.execute("SELECT count(*) FROM risk_scores").fetchone()
    assert total == (2 * sites[0],)


def test_validate_config_cross_field_rule(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "BK_API_DEADLINE_TIER1_H": "200"}
    res = run_cli("api", "worker", "--validate-config", env=env)
    assert res.returncode == 2
    assert "deadline_tier1_h <= deadline_tier2_h" in res.stderr


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "brightkitchen.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


@pytest.mark.slow
@pytest.mark.usefixtures("registry")
def test_api_run_serves_http(cli_env: dict[str, str], admin_headers: dict[str, str]) -> None:
    port = free_port()
    proc = _spawn(["api", "run", "--port", str(port), "--no-workers"], cli_env)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=20, what="api run to answer /healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/sites").status_code == 401
        sites = httpx.get(f"http://127.0.0.1:{port}/api/v1/sites", headers=admin_headers).json()
        assert [s["id"] for s in sites["data"]] == ["school-001", "school-002"]
    finally:
        code, out = _stop(proc)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit shows the signal.
    assert code in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out


@pytest.mark.slow
@pytest.mark.usefixtures("registry")
def test_api_worker_delivers_without_http(
    cli_env: dict[str, str],
    conn: psycopg.Connection[Any],
    hook: HookServer,
    settings: ApiSettings,
) -> None:
    env = {**cli_env, "BK_API_SMTP_HOST": "127.0.0.1", "BK_API_SMTP_PORT": str(settings.smtp_port)}
    proc = _spawn(["api", "worker"], env)
    try:
        insert_finding(conn, key="alarm:1:raised")
        wait_until(lambda: len(hook.requests) == 1, timeout=20, what="worker to deliver")
    finally:
        code, out = _stop(proc)
    assert code == 0, out
    assert hook.requests[0].body["subject"] == "fridge-1"
