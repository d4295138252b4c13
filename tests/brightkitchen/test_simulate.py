"""The sensor simulator: seeded physics, scheduled faults, and delivery over a real broker."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.messages import ReadingBatch, SensorReading, decode
from bkcommon.settings import parse_mqtt_url
from bkcommon.sitefile import load_site_file
from bkcommon.timeutil import utcnow
from brightkitchen.simulate.duties import days_back, plan_duties
from brightkitchen.simulate.fleet import (
    Emission,
    Fault,
    Fleet,
    FleetConfig,
    generate_site_file,
    site_file_yaml,
)
from tests.conftest import run_cli
from tests.support.services import wait_until

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def _readings(e: Emission) -> list[SensorReading]:
    if e.batch:
        return list(decode(ReadingBatch, e.payload).readings)
    return [decode(SensorReading, e.payload)]


def _fleet(**kw: object) -> tuple[Fleet, list[Emission]]:
    cfg = FleetConfig(
        **{"sites": 2, "per_profile": 1, "duration_s": 8 * 3600, "seed": 7, "start": START, **kw}
    )  # type: ignore[arg-type]
    f = Fleet(cfg)
    return f, list(f.emissions())


def _by_sensor(ems: list[Emission]) -> dict[str, list[SensorReading]]:
    out: dict[str, list[SensorReading]] = {}
    for e in ems:
        out.setdefault(e.sensor_id, []).extend(_readings(e))
    return out


def test_same_seed_same_messages_other_seed_differs() -> None:
    _, a = _fleet()
    _, b = _fleet()
    _, c = _fleet(seed=8)
    assert [(e.topic, e.payload) for e in a] == [(e.topic, e.payload) for e in b]
    assert [e.payload for e in a] != [e.payload for e in c]


def test_compressor_failure_climbs_past_the_fridge_limit_and_stays() -> None:
    f, ems = _fleet()
    target = f.targets.compressor_sensor
    assert target is not None
    assert "fridge" in target
    temps = [(r.ts, r.temp_c) for r in _by_sensor(ems)[target]]
    fail_at = START + timedelta(seconds=f.config.schedule.compressor_fail_s)
    assert all(t <= 8.0 for ts, t in temps if ts < fail_at)
    above = [ts for ts, t in temps if t > 8.0]
    assert above, "the failed fridge never passed 8 °C"
    # Past the limit for longer than the 5-minute alarm delay, and it stays there.
    assert all(t > 8.0 for ts, t in temps if ts >= above[0])
    assert temps[-1][0] - above[0] > timedelta(minutes=30)
    assert temps[-1][1] > 20.0


def test_healthy_sensors_stay_in_range_with_doors_closed() -> None:
    _f, ems = _fleet(faults=frozenset())
    limits = {
        "fridge": (0, 8),
        "freezer": (-40, -12),
        "preproom": (10, 25),
        "samplefridge": (0, 8),
        "hotholding": (60, 90),
    }
    door_opens = 0
    for sid, rs in _by_sensor(ems).items():
        lo, hi = limits[sid.split("-")[2]]
        for r in rs:
            door_opens += bool(r.door_open)
            if not r.door_open:
                assert lo <= r.temp_c <= hi, (sid, r)
    assert door_opens > 0


def test_freezers_defrost_a_few_degrees() -> None:
    _, ems = _fleet(faults=frozenset(), duration_s=16 * 3600)
    for sid, rs in _by_sensor(ems).items():
        if "freezer" in sid:
            closed = [r.temp_c for r in rs if not r.door_open]
            assert max(closed) - min(closed) > 2.5, sid  # a defrost cycle happened


def test_offline_sensor_stops_publishing() -> None:
    f, ems = _fleet()
    sid = f.targets.offline_sensor
    assert sid is not None
    rs = _by_sensor(ems)[sid]
    last = START + timedelta(seconds=f.config.schedule.offline_s)
    assert rs
    assert max(r.ts for r in rs) < last


def test_gateway_replays_an_hour_of_buffered_readings_as_batches() -> None:
    f, ems = _fleet()
    site = f.targets.replay_site
    sched = f.config.schedule
    out_from = START + timedelta(seconds=sched.outage_start_s)
    out_to = out_from + timedelta(seconds=sched.outage_len_s)
    batches = [e for e in ems if e.batch]
    assert batches
    assert all(f"/{site}/sensor/" in e.topic and e.topic.endswith("/readings") for e in batches)
    for e in batches:
        rs = _readings(e)
        assert len(rs) == 60 or (e.sensor_id == f.targets.offline_sensor and len(rs) == 5)
        assert rs[0].ts == out_from
        assert rs[-1].ts < out_to <= e.sim_ts
        assert [r.seq for r in rs] == sorted(r.seq for r in rs)  # type: ignore[type-var]
    # Nothing from that site arrived live during the outage.
    live = [e for e in ems if not e.batch and f"/{site}/" in e.topic]
    assert not [e for e in live if out_from <= e.sim_ts < out_to]


def test_timestamps_never_in_the_future() -> None:
    f = Fleet(FleetConfig(sites=1, duration_s=3 * 3600))
    now = utcnow()
    ems = list(f.emissions())
    assert max(r.ts for e in ems for r in _readings(e)) <= now
    assert min(e.sim_ts for e in ems) >= now - timedelta(hours=3, minutes=1)


def test_batch_mode_groups_every_sensor(tmp_path: object) -> None:
    _, ems = _fleet(faults=frozenset(), batch_every=50, duration_s=100 * 60)
    assert all(e.batch for e in ems)
    assert sum(e.n_readings for e in ems) == 10 * 101


def test_generated_site_file_registers_the_fleet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f, _ = _fleet(sites=3, per_profile=2)
    sf = generate_site_file(3, 2, webhook_url="http://127.0.0.1:9/hook/x")
    p = tmp_path / "site.yaml"
    p.write_text(site_file_yaml(sf), encoding="utf-8")
    loaded = load_site_file(p)
    assert set(loaded.sensor_index()) == {s.sensor_id for s in f.sensors}
    assert len(loaded.sensor_index()) == 3 * 5 * 2
    assert loaded.people[0].channels[0].address == "http://127.0.0.1:9/hook/x"
    # named as a kitchen names its equipment (tickets and alerts show the name), once per site
    names = [s.name for s in loaded.sites[0].sensors]
    assert names[:4] == ["冷藏柜 1", "冷藏柜 2", "冷冻柜 1", "冷冻柜 2"]
    assert len(set(names)) == len(names) == 5 * 2


def test_cli_publishes_exactly_every_message(mqtt_url: str, topic_prefix: str) -> None:
    expected = list(
        Fleet(
            FleetConfig(sites=2, duration_s=2 * 3600, prefix=topic_prefix, faults=frozenset(Fault))
        ).emissions()
    )
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    ep = parse_mqtt_url(mqtt_url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append((msg.topic, msg.payload))

    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_connect = lambda c, *_a: c.subscribe(f"{topic_prefix}/#", qos=1)
    sub.connect(ep.host, ep.port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        env = {"BK_MQTT_URL": mqtt_url, "BK_MQTT_PREFIX": topic_prefix, "PATH": "/usr/bin:/bin"}
        res = run_cli(
            "simulate", "sensors", "--sites", "2", "--speed", "0", "--duration", "7200", env=env
        )
        assert res.returncode == 0, res.stderr
        assert f"{len(expected)} messages (5 batches)" in res.stdout
        wait_until(lambda: len(got) >= len(expected), 15, what="all messages")
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert len(got) == len(expected)
    # The same messages (the readings' timestamps depend on the start time, so compare shape).
    assert sorted(t for t, _ in got) == sorted(e.topic for e in expected)
    assert sum(len(json.loads(p).get("readings", [0])) for _, p in got) == sum(
        e.n_readings for e in expected
    )


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--validate-config", "--sites", "3"], 0, "3 sites x 5 sensors = 15"),
        (["--validate-config", "--scenario", "meteor"], 2, "--scenario"),
        (["--validate-config", "--sites", "0"], 2, "--sites"),
    ],
)
def test_cli_validate_config(args: list[str], code: int, text: str) -> None:
    res = run_cli("simulate", "sensors", *args, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == code, res.stderr
    assert text in res.stdout + res.stderr


def test_duty_plan_is_seeded_and_leaves_out_meals_not_yet_served() -> None:
    now = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 11:00 in China: breakfast served, not lunch
    days = days_back(now, 3)
    assert [d.isoformat() for d in days] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    sites = ["sim-site-000", "sim-site-001"]
    a = plan_duties(sites, days, now=now, seed=5, miss_rate=0.5, sick_rate=0.3)
    assert a == plan_duties(sites, days, now=now, seed=5, miss_rate=0.5, sick_rate=0.3)
    assert a != plan_duties(sites, days, now=now, seed=6, miss_rate=0.5, sick_rate=0.3)
    assert len(a) == 6
    today = [d for d in a if d.day == days[-1]]
    assert all("lunch" not in d.sampled and "lunch" not in d.unsampled for d in today)
    earlier = [d for d in a if d.day != days[-1]]
    assert all(set(d.sampled) | set(d.unsampled) == {"breakfast", "lunch"} for d in earlier)
    # The hour a plan is made changes only which meals are served yet, nothing else.
    later = plan_duties(sites, days, now=now + timedelta(hours=10), seed=5, miss_rate=0.5,
                        sick_rate=0.3)  # fmt: skip
    assert [(d.check_done, d.staff) for d in later] == [(d.check_done, d.staff) for d in a]
    assert any(not d.check_done for d in a)
    assert any(d.check_done for d in a)
    assert all(len(d.staff) == 4 for d in a)
    sick = [s for d in a for s in d.staff if s.off_duty]
    assert sick
    assert all(s.symptoms or s.temperature_c >= 37.3 for s in sick)


def test_cli_simulated_duties_go_through_the_api_and_missed_checks_become_tickets(
    db_url: str, tmp_path: Path
) -> None:
    import psycopg
    import uvicorn

    from api.app import create_app
    from api.services.duty_deadlines import DutySettings, check_deadlines
    from api.services.tickets import process_findings
    from api.settings import ApiSettings
    from bkcommon.settings import CommonSettings
    from brightkitchen.registry import sync_registry
    from tests.api.conftest import make_user_token
    from tests.support.services import free_port

    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, generate_site_file(3, 1, site_prefix="sim"))
        token = make_user_token(conn, username="sim-admin")
    (tmp_path / "token").write_text(token)
    settings = ApiSettings(workers_enabled=False, evidence_dir=tmp_path / "evidence")
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=15, what="uvicorn start")
    args = [
        *("simulate", "duties", "--api-url", f"http://127.0.0.1:{port}"),
        *("--token-file", str(tmp_path / "token"), "--sites", "3", "--days", "5"),
        *("--seed", "7", "--miss-rate", "0.3", "--sick-rate", "0.2", "--deadline", "00:00"),
    ]
    try:
        res = run_cli(*args, env={"PATH": "/usr/bin:/bin"})
        assert res.returncode == 0, res.stdout + res.stderr
        again = run_cli(*args, env={"PATH": "/usr/bin:/bin"})  # a second run adds nothing
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    now = utcnow()
    plan = plan_duties(
        [f"sim-site-{i:03d}" for i in range(3)], days_back(now, 5), now=now, seed=7,
        miss_rate=0.3, sick_rate=0.2,
    )  # fmt: skip
    missed = [d for d in plan if not d.check_done]
    assert missed, "the seed must leave some check undone"
    assert f"{15 - len(missed)} daily checks done, {len(missed)} not done" in res.stdout
    assert "recorded before" in again.stdout
    with psycopg.connect(db_url, autocommit=True) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

        assert one("SELECT count(*) FROM duty_sites") == 3
        assert one("SELECT count(*) FROM daily_checks") == 15 - len(missed)
        assert one("SELECT count(*) FROM health_checks") == 15 * 4
        off = sum(len(d.off_duty) for d in plan)
        assert one("SELECT count(*) FROM health_checks WHERE NOT on_duty") == off
        meals = sum(len(d.sampled) for d in plan)
        assert one("SELECT count(DISTINCT (site_id, meal_date, meal)) FROM food_samples") == meals
        # Every undone day's deadline (00:00 China time) has passed: one finding each, and
        # one ticket per site that missed (a later miss is an occurrence of the open one).
        found = check_deadlines(conn, now=now, settings=DutySettings(lookback_days=4))
        assert found == len(missed)
        process_findings(conn, now=now, settings=settings)
        tickets = one("SELECT count(*) FROM tickets WHERE rule = 'daily_check_missed'")
        assert tickets == len({d.site_id for d in missed})


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--sites", "0"], "--sites"),
        (["--miss-rate", "1.5"], "rates"),
        ([], "BK_API_TOKEN"),
    ],
)
def test_cli_duties_refuses_bad_options(args: list[str], text: str) -> None:
    res = run_cli("simulate", "duties", *args, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 2, res.stdout + res.stderr
    assert text in res.stdout + res.stderr
