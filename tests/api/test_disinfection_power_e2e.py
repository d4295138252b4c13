"""Disinfection cabinets with a smart plug, end to end on real Mosquitto and PostgreSQL:
Zigbee2MQTT plug states and the project's own power topic through a real ingest worker
(restarted mid-cycle), hostile plug payloads dead-lettered with the field named, cycles
timed by the plug and judged with the temperature, missed told from failed by the plug,
and the ticket's evidence carrying the power curve."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from bkcommon.topics import power_topic, reading_topic, zigbee_topic
from brightkitchen.registry import sync_registry
from ingest.rules.disinfection_windows import JUDGE_GRACE, sweep_disinfection
from ingest.settings import IngestSettings
from ingest.worker import IngestWorker
from tests.api.conftest import HookServer, site_data
from tests.ingest.conftest import RunningWorker, publisher
from tests.support.services import wait_until


def _noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now about 12:xx local time."""
    n = 12 - now.hour
    if n > 14:
        n -= 24
    if n < -12:
        n += 24
    return f"Etc/GMT{-n:+d}" if n else "Etc/GMT"


def _worker(db_url: str, mqtt_url: str, prefix: str, zigbee: str, client_id: str) -> RunningWorker:
    common = CommonSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_prefix=prefix)
    opts = IngestSettings(
        group=f"g{client_id[-8:]}",
        client_id=client_id,
        flush_interval_ms=20,
        directory_refresh_s=1,
        sweep_interval_s=0.3,
        guard=False,
        zigbee_base=zigbee,
    )
    return RunningWorker(IngestWorker(common, opts))


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _count(conn: psycopg.Connection[Any], sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def _site(hook_url: str, zone: str, start: str, end: str, window_min: int = 60) -> dict[str, Any]:
    data = site_data(hook_url)
    site = data["sites"][0]
    site["sensors"] += [
        {  # a plug on its own contract, and a temperature probe
            "id": "cab-p",
            "name": "消毒柜 插座",
            "profile": "disinfection",
            "cabinet": {"type": "steam", "plug": {}},
        },
        {  # switched on, but its heater is broken: never gets hot
            "id": "cab-cold",
            "name": "消毒柜 不热",
            "profile": "disinfection",
            "cabinet": {"type": "steam", "plug": {}},
        },
        {  # a Zigbee2MQTT plug and no probe at all
            "id": "cab-z",
            "name": "消毒柜 Zigbee",
            "profile": "disinfection",
            "cabinet": {"type": "steam", "plug": {"zigbee_name": "plug-z"}},
        },
        {  # a Zigbee2MQTT plug that only ever shows standby
            "id": "cab-off",
            "name": "消毒柜 未开",
            "profile": "disinfection",
            "cabinet": {"type": "infrared", "plug": {"zigbee_name": "plug-off"}},
        },
    ]
    site["meals"] = {
        "timezone": zone,
        "window_min": window_min,
        "services": [
            {"meal": "lunch", "start": start, "end": end, "weekdays": [1, 2, 3, 4, 5, 6, 7]}
        ],
    }
    return data


def test_zigbee_plug_states_are_stored_hostile_ones_refused_and_judged(
    conn: psycopg.Connection[Any],
    db_url: str,
    mqtt_url: str,
    topic_prefix: str,
    hook: HookServer,
    settings: ApiSettings,
) -> None:
    now = utcnow()
    zone = _noon_zone(now)
    local = now.astimezone(ZoneInfo(zone))
    # A lunch that ended a minute or two ago, with a 5-minute window: the plug's states,
    # stamped on arrival, fall inside it.
    end = (local - timedelta(minutes=1)).replace(second=0, microsecond=0)
    start = end - timedelta(hours=1)
    data = _site(hook.url, zone, f"{start:%H:%M}", f"{end:%H:%M}", window_min=5)
    sync_registry(conn, parse_site_file(data))
    conn.execute("UPDATE sites SET created_at = %s", (now - timedelta(days=1),))
    conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (now,))
    zbase = f"{topic_prefix}/z2m"
    client_id = f"bk-ingest-test-{uuid.uuid4().hex[:8]}"
    pub = publisher(mqtt_url)
    w = _worker(db_url, mqtt_url, topic_prefix, zbase, client_id)
    try:
        plug_z, plug_off = zigbee_topic("plug-z", zbase), zigbee_topic("plug-off", zbase)
        state = {"power": 1180, "current": 5.1, "voltage": 231, "state": "ON", "energy": 3.2}
        pub.publish(plug_z, json.dumps(state).encode(), qos=1).wait_for_publish(10)
        pub.publish(plug_off, b'{"power": 2.1, "state": "ON", "linkquality": 90}', qos=1)
        hostile = [
            (plug_z, b'{"power": -5, "state": "ON"}'),
            (plug_z, b'{"power": NaN}'),
            (plug_z, b'{"power": 1180, "current": 1e9}'),
            (plug_z, b'{"power": 1180, "voltage": 100000}'),
            (plug_z, b'{"power": 1180, "energy": -1}'),
            (plug_z, b'{"power": "lots"}'),
            (plug_z, b"not json"),
            (power_topic("school-001", "fridge-1", topic_prefix), b'{"ts": "X", "power_w": 1}'),
            (power_topic("school-001", "cab-p", topic_prefix), b'{"ts": "%s"}'),
            (power_topic("school-001", "cab-p", topic_prefix), b'{"ts": "%s", "power_w": 1e12}'),
        ]
        stamp = _iso(utcnow()).encode()
        for topic, raw in hostile:
            body = raw.replace(b"%s", stamp).replace(b'"X"', b'"' + stamp + b'"')
            pub.publish(topic, body, qos=1)
        pub.publish(plug_z, b'{"state": "ON", "linkquality": 80}', qos=1)  # no measure: ignored
        time.sleep(1.5)  # the plug draws power 1.5 s: far too short a cycle
        off = {**state, "power": 1.8, "current": 0.01}
        pub.publish(plug_z, json.dumps(off).encode(), qos=1).wait_for_publish(10)
        wait_until(
            lambda: (
                _count(conn, "SELECT count(*) FROM cabinet_power") == 3
                and _count(conn, "SELECT count(*) FROM dead_letters") == len(hostile)
            ),
            15,
            what="plug states stored and hostile ones dead-lettered",
        )
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM disinfection_cycles") == 1, 15, what="cycle"
        )
    finally:
        w.close()
        pub.loop_stop()

    stored = conn.execute(
        "SELECT sensor_id, power_w, current_a, voltage_v, energy_kwh, switch_on "
        "FROM cabinet_power ORDER BY sensor_id, ts"
    ).fetchall()
    assert stored == [
        ("cab-off", 2.1, None, None, None, True),
        ("cab-z", 1180.0, 5.1, 231.0, 3.2, True),
        ("cab-z", 1.8, 0.01, 231.0, 3.2, True),
    ]
    reasons = [
        str(r[0]) for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id").fetchall()
    ]
    expected = ["power", "power", "current", "voltage", "energy", "power", "not JSON"]
    expected += ["power_w", "power_w", "power_w"]
    assert len(reasons) == len(expected)
    for reason, field in zip(reasons, expected, strict=True):
        assert field in reason, (field, reason)
    assert "not a disinfection cabinet with a plug" in reasons[7]
    assert "needs power_w or current_a" in reasons[8]

    # The probe-less cabinet's run was judged by the plug alone: too short.
    [cycle] = conn.execute(
        "SELECT sensor_id, verdict, judged_by, peak_c, peak_w, on_s FROM disinfection_cycles"
    ).fetchall()
    assert cycle[:5] == ("cab-z", "too_short", "power", None, 1180.0)
    assert 1.0 <= cycle[5] < 30
    # The window closes: the plug that drew power failed, the one at standby never ran.
    end_utc = end.astimezone(UTC)
    judged_at = end_utc + timedelta(minutes=5) + JUDGE_GRACE + timedelta(seconds=1)
    # Registered just before this lunch: earlier days' windows are not judged.
    registered = start.astimezone(UTC) - timedelta(minutes=1)
    conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (registered,))
    sweep_disinfection(conn, judged_at)
    checks = conn.execute(
        "SELECT sensor_id, outcome FROM disinfection_checks WHERE meal_end = %s "
        "AND sensor_id IN ('cab-z', 'cab-off') ORDER BY sensor_id",
        (end_utc,),
    ).fetchall()
    assert checks == [("cab-off", "missed"), ("cab-z", "failed")]
    process_findings(conn, now=judged_at, settings=settings)
    details = dict(
        conn.execute(
            "SELECT subject, details FROM tickets WHERE subject IN ('cab-z', 'cab-off')"
        ).fetchall()
    )
    z = details["cab-z"]["payload"]
    assert z["reason"] == "too_short"
    assert z["cycle"]["judged_by"] == "power"
    assert z["curve"] == []  # no probe
    assert [p[1] for p in z["power_curve"]] == [1180.0, 1.8]
    off_payload = details["cab-off"]["payload"]
    assert "never switched on" in off_payload["reason"]
    assert [p[1] for p in off_payload["power_curve"]] == [2.1]


def test_plug_timed_cycles_survive_a_restart_and_tell_failed_from_missed(
    conn: psycopg.Connection[Any],
    db_url: str,
    mqtt_url: str,
    topic_prefix: str,
    hook: HookServer,
    settings: ApiSettings,
) -> None:
    now = utcnow()
    zone = _noon_zone(now)
    data = _site(hook.url, zone, "09:00", "10:00")
    sync_registry(conn, parse_site_file(data))
    conn.execute("UPDATE sites SET created_at = %s", (now - timedelta(days=1),))
    conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (now,))
    local = now.astimezone(ZoneInfo(zone))
    meal_end = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
    t0 = meal_end + timedelta(minutes=5)

    # cab-p: switched on at t0 for 16 min; the probe reaches 101 °C at t0+3 and holds it
    # 12 min, then the plug switches off while the cabinet is still hot.
    temps_p = [30.0, 60.0, 85.0, *[101.0] * 13, 95.0, 70.0, 50.0]
    watts_p = [1800.0] * 16 + [3.0, 3.0, 3.0]
    # cab-cold: switched on 20 min, but its temperature never passes 50 °C.
    temps_c = [24.0, 35.0, *[48.0] * 18, 40.0]
    watts_c = [1500.0] * 20 + [2.0]

    def messages() -> list[tuple[str, bytes]]:
        out = []
        for sid, temps, watts in (("cab-p", temps_p, watts_p), ("cab-cold", temps_c, watts_c)):
            for i, (t, p) in enumerate(zip(temps, watts, strict=True)):
                ts = _iso(t0 + timedelta(minutes=i))
                body = {"ts": ts, "seq": i, "power_w": p, "current_a": round(p / 225, 3)}
                out.append((power_topic("school-001", sid, topic_prefix), json.dumps(body)))
                reading = {"ts": ts, "seq": i, "temp_c": t}
                out.append((reading_topic("school-001", sid, topic_prefix), json.dumps(reading)))
        return [(topic, body.encode()) for topic, body in out]

    msgs = messages()
    half = [m for m in msgs if "cab-p" in m[0]][:16]  # cab-p's first 8 minutes
    client_id = f"bk-ingest-test-{uuid.uuid4().hex[:8]}"
    pub = publisher(mqtt_url)
    try:
        w = _worker(db_url, mqtt_url, topic_prefix, f"{topic_prefix}/z2m", client_id)
        for topic, body in half:
            info = pub.publish(topic, body, qos=1)
        info.wait_for_publish(10)
        wait_until(lambda: _count(conn, "SELECT count(*) FROM cabinet_power") == 8, 15, what="half")
        [running] = conn.execute(
            "SELECT state FROM rule_state WHERE rule = 'disinfection' AND sensor_id = 'cab-p'"
        ).fetchone() or [None]
        assert running is not None
        assert (running["running"], running["driver"]) == (True, "power")
        w.close()  # stopped mid-cycle; the next worker carries on from the committed state
        w = _worker(db_url, mqtt_url, topic_prefix, f"{topic_prefix}/z2m", client_id)
        for topic, body in msgs:  # the gateway resends everything: duplicates
            info = pub.publish(topic, body, qos=1)
        info.wait_for_publish(10)
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM disinfection_cycles") == 2, 15, what="cycles"
        )
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM cabinet_power") == len(msgs) // 2,
            15,
            what="all plug samples",
        )
        registered = meal_end - timedelta(hours=1, minutes=1)  # just before this lunch
        conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (registered,))
        wait_until(
            lambda: (
                _count(
                    conn, "SELECT count(*) FROM disinfection_checks WHERE meal_end = %s", meal_end
                )
                >= 4
            ),
            15,
            what="sweep",
        )
    finally:
        w.close()
        pub.loop_stop()

    cycles = conn.execute(
        "SELECT sensor_id, verdict, judged_by, peak_c, held_s, on_s, peak_w, "
        "started_at, ended_at FROM disinfection_cycles ORDER BY sensor_id"
    ).fetchall()
    assert [c[:7] for c in cycles] == [
        ("cab-cold", "too_cool", "power_temperature", 48.0, 0.0, 1200.0, 1500.0),
        ("cab-p", "valid", "power_temperature", 101.0, 720.0, 960.0, 1800.0),
    ]
    # The cycle runs from the plug's switch-on to its switch-off, counted once.
    assert (cycles[1][7], cycles[1][8]) == (t0, t0 + timedelta(minutes=16))
    assert _count(conn, "SELECT count(*) FROM sensor_readings") == len(msgs) // 2
    checks = dict(
        conn.execute(
            "SELECT sensor_id, outcome FROM disinfection_checks WHERE meal_end = %s", (meal_end,)
        ).fetchall()
    )
    # Without its plug cab-cold would be "missed" (never reached 60 °C); the plug shows it
    # ran: a failed cycle. cab-z and cab-off sent nothing: missed.
    assert checks == {"cab-p": "done", "cab-cold": "failed", "cab-z": "missed", "cab-off": "missed"}
    process_findings(conn, now=utcnow(), settings=settings)
    [(details,)] = conn.execute(
        "SELECT details FROM tickets WHERE subject = 'cab-cold' AND rule = 'disinfection_failed'"
    ).fetchall()
    payload = details["payload"]
    assert payload["reason"] == "too_cool"
    assert payload["cycle"]["judged_by"] == "power_temperature"
    assert max(p[1] for p in payload["curve"]) == 48.0
    assert {p[1] for p in payload["power_curve"]} == {1500.0, 2.0}
    assert [p[2] for p in payload["power_curve"]][:1] == [round(1500 / 225, 3)]
