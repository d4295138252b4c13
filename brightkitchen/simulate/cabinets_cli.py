"""``brightkitchen simulate cabinets``: one site's four disinfection cabinets after a meal,
their temperature and their smart plugs (own ``…/power`` topic and Zigbee2MQTT), over MQTT.

Light imports only at registration; the work is in :mod:`brightkitchen.simulate.cabinets`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

FORMS = ("contract", "zigbee")


def register_cabinets(sim_sub: Any) -> None:
    """Add ``simulate cabinets`` to the ``simulate`` command group."""
    c = sim_sub.add_parser(
        "cabinets",
        help="publish a site's disinfection cabinets after a meal, with their smart plugs",
        description=(
            "Four cabinets of SITE after a meal (good, short, cool, missed; "
            "docs/disinfection.md): every --interval seconds each publishes its temperature, "
            "and the plugged ones their plug: 'good' on the gateway's own "
            "bk/v1/<site>/sensor/<cabinet>/power topic, 'short' as a Zigbee2MQTT plug state on "
            "<zigbee-base>/<site>-plug-short. The 50 simulated minutes run in real time, or "
            "--speed times faster (a Zigbee2MQTT state is stamped on arrival, so its run is "
            "compressed too); --replay publishes a meal that ended an hour ago at once (own "
            "topics only). Register the cabinets first: --print-sensors prints their site-file "
            "entries."
        ),
    )
    c.add_argument("--site", required=True, help="site id the cabinets belong to")
    c.add_argument("--mqtt-url", help="broker (default BK_MQTT_URL)")
    c.add_argument("--zigbee-base", default="zigbee2mqtt", help="Zigbee2MQTT base topic")
    c.add_argument("--plugs", default="contract,zigbee", help="plug forms to publish")
    c.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    c.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    c.add_argument("--seed", type=int, default=42)
    c.add_argument(
        "--replay", action="store_true", help="publish a meal that ended an hour ago at once"
    )
    c.add_argument(
        "--print-sensors", action="store_true", help="print the cabinets' site-file entries, exit"
    )
    c.add_argument("--validate-config", action="store_true", help="print the plan and exit")
    c.set_defaults(handler=_cmd_cabinets)


def _forms(text: str) -> tuple[str, ...]:
    from bkcommon.errors import ConfigError

    forms = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [f for f in forms if f not in FORMS]
    if bad:
        raise ConfigError(f"--plugs: unknown form {bad[0]!r}; choose from contract, zigbee")
    return forms


def _cmd_cabinets(args: argparse.Namespace) -> int:
    from datetime import timedelta

    import yaml

    from bkcommon.errors import ConfigError, TopicError
    from bkcommon.settings import load_common_settings
    from bkcommon.timeutil import utcnow
    from bkcommon.topics import check_id
    from brightkitchen.simulate.cabinets import SPAN, cabinet_emissions, cabinet_entries
    from brightkitchen.simulate.publisher import checked_broker_url

    try:
        check_id(args.site, "site")
    except TopicError as exc:
        raise ConfigError(f"--site: {exc}") from exc
    if args.interval <= 0 or args.speed < 1:
        raise ConfigError("--interval must be > 0 and --speed at least 1")
    forms = _forms(args.plugs)
    if args.print_sensors:
        print(yaml.safe_dump(cabinet_entries(args.site), allow_unicode=True, sort_keys=False))
        return 0
    settings = load_common_settings()
    url = checked_broker_url(args.mqtt_url or settings.mqtt_url)
    now = utcnow()
    if args.replay:
        forms = tuple(f for f in forms if f != "zigbee")  # its states carry no time
        meal_end = now - timedelta(hours=1)
    else:  # the last sample lands at its own time; every one is in the past when it is sent
        meal_end = now - SPAN + SPAN / args.speed
    emissions = cabinet_emissions(
        args.site,
        meal_end,
        prefix=settings.mqtt_prefix,
        interval_s=args.interval,
        seed=args.seed,
        plugs=forms,
        zigbee_base=args.zigbee_base,
    )
    real_s = 0.0 if args.replay else SPAN.total_seconds() / args.speed
    plan = (
        f"cabinets of {args.site}: {len(emissions)} messages (plugs: {', '.join(forms) or 'none'})"
        f" after a meal that ended {meal_end:%Y-%m-%d %H:%M:%S} UTC, over ~{real_s:.0f} s; "
        f"broker {url}"
    )
    print(plan, flush=True)
    if args.validate_config:
        print("configuration OK")
        return 0
    return _publish(url, emissions, meal_end, args.speed, args.replay)


def _publish(url: str, emissions: list[Any], meal_end: Any, speed: float, replay: bool) -> int:
    from brightkitchen.simulate.cabinets import publish_cabinets
    from brightkitchen.simulate.publisher import connect

    if replay:
        n = publish_cabinets(url, emissions)
        print(f"published {n} messages")
        return 0
    client = connect(url, client_id="")
    start = time.monotonic()
    info = None
    try:
        for e in emissions:
            due = start + (e.sim_ts - meal_end).total_seconds() / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            info = client.publish(e.topic, e.payload, qos=1)
        if info is not None:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"published {len(emissions)} messages")
    return 0
