"""``brightkitchen bench console`` at a tiny scale: it seeds, serves, measures every read and
both loaded phases (back to back, and clients pausing between requests) with no errors, and
the pauses really slow each client down."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from brightkitchen.bench.console_bench import ConsoleBenchOptions, run_console_bench


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_tiny_console_bench_measures_reads_and_both_loaded_phases(
    pg_server: str, tmp_path: Path
) -> None:
    out = io.StringIO()
    opts = ConsoleBenchOptions(
        sites=30,
        tickets=600,
        readings=4000,
        sensors=2,
        repeat=2,
        clients=4,
        duration_s=2.0,
        pg_url=pg_server,
        json_path=str(tmp_path / "console.json"),
        think_ms=(200.0,),
    )
    assert run_console_bench(opts, out) == 0, out.getvalue()
    report = json.loads((tmp_path / "console.json").read_text())
    assert report["seed"]["rows"]["tickets"] == 600
    assert report["seed"]["rows"]["sensor_readings"] == 4000
    reads = report["one_at_a_time"]
    for name in ("overview", "chart_30d_1h", "ledger_page", "ticket_detail"):
        assert reads[name]["bytes"] > 0, name
        assert 0 < reads[name]["server_p50_ms"] <= reads[name]["p95_ms"] + 1, name
    back_to_back = report["under_load"]
    (paced,) = report["under_load_with_pauses"]
    assert paced["think_ms"] == 200.0
    for run in (back_to_back, paced):
        assert run["client"]["errors"] == 0
        assert run["client"]["requests"] > 0
        assert run["server"]["requests"] == run["client"]["requests"]
    # Four clients pausing 200 ms on average offer at most ~20 requests a second.
    assert paced["client"]["rps"] < 25
    assert paced["client"]["rps"] < back_to_back["client"]["rps"]
