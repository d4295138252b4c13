"""``brightkitchen simulate cabinets``: the four cabinets' temperature and their smart plugs
(own ``…/power`` topic and Zigbee2MQTT) published over a real Mosquitto, stored and timed
by a real ingest worker on real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from bkcommon.settings import CommonSettings
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from brightkitchen.simulate.cabinets import cabinet_entries
from ingest.settings import IngestSettings
from ingest.worker import IngestWorker
from tests.conftest import run_cli
from tests.ingest.conftest import RunningWorker
from tests.support.services import wait_until


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_cli_checks_its_options_and_prints_the_site_file_entries(cli_env: dict[str, str]) -> None:
    out = run_cli("simulate", "cabinets", "--site", "s1", "--print-sensors", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "zigbee_name: s1-plug-short" in out.stdout
    assert "plug: {}" in out.stdout
    # named as a kitchen names them: tickets and alerts quote the name
    assert [e["name"] for e in cabinet_entries("s1")] == [f"消毒柜 {i}" for i in (1, 2, 3, 4)]
    bad = run_cli("simulate", "cabinets", "--site", "s1", "--plugs", "wifi", env=cli_env)
    assert bad.returncode != 0
    assert "--plugs" in bad.stderr


def test_cli_publishes_plugs_in_both_forms(
    db_url: str, mqtt_url: str, topic_prefix: str, cli_env: dict[str, str]
) -> None:
    data = {
        "regions": [{"id": "d", "name": "D"}],
        "sites": [{"id": "s1", "name": "S", "region": "d", "sensors": cabinet_entries("s1")}],
    }
    zbase = f"{topic_prefix}/z2m"
    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(data))
        conn.execute("UPDATE sites SET created_at = now() - interval '2 days'")
        common = CommonSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_prefix=topic_prefix)
        opts = IngestSettings(
            group=f"g{uuid.uuid4().hex[:8]}",
            client_id=f"bk-ingest-test-{uuid.uuid4().hex[:8]}",
            flush_interval_ms=20,
            directory_refresh_s=1,
            guard=False,
            zigbee_base=zbase,
        )
        w = RunningWorker(IngestWorker(common, opts))
        try:
            env = {**cli_env, "BK_MQTT_PREFIX": topic_prefix}
            args = ["simulate", "cabinets", "--site", "s1", "--speed", "600"]
            out = run_cli(*args, "--zigbee-base", zbase, env=env, timeout=120)
            assert out.returncode == 0, out.stderr
            assert "plugs: contract, zigbee" in out.stdout
            wait_until(
                lambda: (
                    _count(conn, "SELECT count(*) FROM sensor_readings") == 4 * 101
                    and _count(conn, "SELECT count(*) FROM cabinet_power") == 2 * 101
                ),
                20,
                what="every reading and plug sample stored",
            )
            wait_until(
                lambda: _count(conn, "SELECT count(*) FROM disinfection_cycles") == 3,
                20,
                what="the good, short and cool cycles",
            )
        finally:
            w.close()
        plugs = dict(
            conn.execute(
                "SELECT sensor_id, count(*) FROM cabinet_power GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        assert plugs == {"s1-cab-good": 101, "s1-cab-short": 101}
        assert _count(conn, "SELECT count(*) FROM dead_letters") == 0
        cycles = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT sensor_id, verdict, judged_by FROM disinfection_cycles"
            ).fetchall()
        }
    assert cycles == {
        "s1-cab-good": ("valid", "power_temperature"),  # its own topic: timed by the plug
        # Zigbee2MQTT states are stamped on arrival: at --speed 600 the plug's 14 minutes
        # take 1.4 s, after the probe's (simulated, earlier) readings: judged by the plug
        "s1-cab-short": ("too_short", "power"),
        "s1-cab-cool": ("too_cool", "temperature"),  # no plug
    }
