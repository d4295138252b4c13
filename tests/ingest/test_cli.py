"""``brightkitchen ingest run --validate-config``: OK, or each error with its key path."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_validate_config_ok(cli_env: dict[str, str], tmp_path: Path) -> None:
    site = Path(__file__).resolve().parents[2] / "brightkitchen/examples/site.yaml"
    res = run_cli("ingest", "run", "--validate-config", "--config", str(site), env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout


def test_validate_config_names_bad_variables_and_key_paths(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad_site = tmp_path / "site.yaml"
    bad_site.write_text(
        "version: 1\nregions: [{id: r, name: R}]\nsites:\n"
        "  - {id: s, name: S, region: r, sensors: [{id: f, profile: oven}]}\n"
    )
    env = {**cli_env, "BK_INGEST_BATCH_MAX": "0", "BK_INGEST_MQTT_PROTOCOL": "4"}
    res = run_cli("ingest", "run", "--validate-config", "--config", str(bad_site), env=env)
    assert res.returncode == 2
    assert "BK_INGEST_BATCH_MAX" in res.stdout
    assert "BK_INGEST_MQTT_PROTOCOL" in res.stdout
    assert "sites.0.sensors.0.profile" in res.stdout


def test_run_refuses_bad_environment(cli_env: dict[str, str]) -> None:
    res = run_cli("ingest", "run", env={**cli_env, "BK_INGEST_MAX_PENDING": "lots"})
    assert res.returncode == 2
    assert "BK_INGEST_MAX_PENDING" in res.stderr
