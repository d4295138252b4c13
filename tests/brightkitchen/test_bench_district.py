"""``brightkitchen bench district`` at a tiny scale: everything published is stored, every
probe alarm reaches the webhook in both phases, and the lag arithmetic is right."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bkcommon.errors import ConfigError
from brightkitchen.bench.district import DistrictOptions, run_district
from brightkitchen.bench.measure import lag_stats
from brightkitchen.demo import mosquitto_path


def test_lag_is_the_time_until_the_committed_count_catches_up() -> None:
    # (t, published so far, committed so far, worker lag gauge)
    samples = [(0.0, 100, 0, 0.0), (1.0, 200, 100, 0.0), (2.0, 200, 150, 0.0), (3.0, 200, 200, 0.0)]
    stats = lag_stats(samples)
    # Published by t=0: stored at t=1 (1 s); by t=1: at t=3 (2 s); by t=2: at t=3 (1 s);
    # by t=3: at once (0 s). Backlog: 100 readings published and not yet stored.
    assert stats == {"p50": 1.0, "p99": 2.0, "max": 2.0, "backlog": 100, "gauge": 0.0}


def test_options_that_describe_no_district_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="--outage-share"):
        DistrictOptions(outage_share=0).check()
    with pytest.raises(ConfigError, match="--canteens"):
        DistrictOptions(canteens=0).check()


@pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto is not installed")
def test_tiny_district_stores_everything_and_every_alarm_alerts(
    pg_server: str, tmp_path: Path
) -> None:
    out = io.StringIO()
    opts = DistrictOptions(
        canteens=3,
        steady_hours=0.2,
        speed=360.0,
        violations_per_canteen_hour=4.0,
        evidence_kb=2,
        outage_s=600.0,
        outage_share=0.67,
        probes=2,
        pg_url=pg_server,
        json_path=str(tmp_path / "district.json"),
    )
    assert run_district(opts, out) == 0, out.getvalue()
    result = json.loads((tmp_path / "district.json").read_text())
    steady, burst = result["phases"]
    assert steady["readings"] == 3 * 5 * 12  # 12 simulated minutes, one reading each
    assert burst["readings"] == 2 * 5 * 10  # two of three gateways replay 10 minutes
    assert steady["statuses"] == 3 * 12
    for phase in (steady, burst):
        assert phase["alert_latency"]["received"] == 2
        assert 0 < phase["alert_latency"]["p99_s"] < 30
        assert phase["lag_p99_s"] is not None
    db = result["database"]
    probes = 4
    assert db["readings"] == steady["readings"] + burst["readings"] + probes
    assert db["violations"] == steady["violations"]
    assert db["dead_letters"] == 0
    assert db["notifications_sent"] >= probes
    assert result["resources"]["ingest_worker"]["peak_rss_mib"] > 0
