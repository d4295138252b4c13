"""``simulate sensors`` and ``duties``, ``bench ingest`` and ``bench edge`` (light imports only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``simulate`` and ``bench`` command groups."""
    sim = subparsers.add_parser("simulate", help="simulated devices for demos, tests, benchmarks")
    sim_sub = sim.add_subparsers(dest="simulate_command", required=True)
    p = sim_sub.add_parser(
        "sensors",
        help="publish a realistic sensor fleet over MQTT (faults included)",
        description=(
            "N sites x M sensors of each profile (fridge, freezer, prep_room, sample_fridge, "
            "hot_holding) with door openings, defrost cycles, a compressor failure, a sensor "
            "going offline and a gateway replaying an hour of buffered readings. Simulated "
            "time starts DURATION seconds in the past and runs SPEED times faster than the "
            "clock, so readings are never stamped in the future."
        ),
    )
    p.add_argument("--sites", type=int, default=2, help="number of sites (default 2)")
    p.add_argument("--per-profile", type=int, default=1, help="sensors per profile per site")
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per real second; 0 = as fast as possible (default 60)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=6 * 3600.0,
        help="simulated seconds of history to publish (default 21600 = 6 h)",
    )
    p.add_argument("--interval", type=float, default=60.0, help="seconds between readings")
    p.add_argument("--rate", type=float, default=0.0, help="cap in readings/s (0 = none)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--scenario",
        default="compressor,offline,replay",
        help="comma list of faults: compressor, offline, replay; or 'none'",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        help="publish every sensor as gateway batches of this many readings",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="after catching up with the clock keep publishing in real time",
    )
    p.add_argument("--site-prefix", default="sim", help="prefix of the generated ids")
    p.add_argument(
        "--webhook-url",
        default="http://127.0.0.1:8765/hook/officer-1",
        help="officer webhook written into the generated site file",
    )
    p.add_argument(
        "--write-site-file",
        metavar="PATH",
        help="also write the matching site file (YAML) before publishing",
    )
    p.add_argument(
        "--sync-registry",
        action="store_true",
        help="load the matching site file into BK_DATABASE_URL before publishing",
    )
    p.add_argument("--mqtt-url", help="override BK_MQTT_URL")
    p.add_argument(
        "--validate-config",
        action="store_true",
        help="validate the options and the BK_* environment, print the plan, exit",
    )
    p.set_defaults(handler=_cmd_sensors)
    d = sim_sub.add_parser(
        "duties",
        help="record the officers' daily duties (日管控, 晨检, 留样) of many sites over the API",
        description=(
            "Plays DAYS days (up to today, China time) of every site's daily duties through "
            "a running API, as the officers would on their phones: the daily checklist, the "
            "staff's morning health check (anyone with a symptom off duty) and each meal's "
            "food samples. A seeded share of checks is never done (the API's deadline worker "
            "turns each into a ticket that escalates), of staff is sick and of meals goes "
            "unsampled. Sites are those of `simulate sensors` with the same --sites and "
            "--site-prefix; records already there (409) are left as they are."
        ),
    )
    d.add_argument("--api-url", default="http://127.0.0.1:8000", help="the API's base URL")
    d.add_argument(
        "--token-file",
        help="file holding a writer's bearer token (default: the BK_API_TOKEN environment)",
    )
    d.add_argument("--sites", type=int, default=2, help="number of sites (default 2)")
    d.add_argument("--site-prefix", default="sim", help="prefix of the generated ids")
    d.add_argument("--days", type=int, default=7, help="days up to today (default 7)")
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--miss-rate", type=float, default=0.1, help="share of checks not done")
    d.add_argument("--sick-rate", type=float, default=0.05, help="share of staff with a symptom")
    d.add_argument(
        "--unsampled-rate", type=float, default=0.05, help="share of meals without samples"
    )
    d.add_argument("--staff", type=int, default=4, help="staff per site (at most 8)")
    d.add_argument("--deadline", default="10:00", help="daily check due by (China time HH:MM)")
    d.set_defaults(handler=_cmd_duties)
    from brightkitchen.simulate.cabinets_cli import register_cabinets  # argparse only

    register_cabinets(sim_sub)

    bench = subparsers.add_parser("bench", help="benchmarks (not tests)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    b = bench_sub.add_parser(
        "ingest",
        help="end-to-end ingest throughput, latency to the webhook, worker memory",
    )
    b.add_argument("--readings", type=int, default=200_000, help="readings per throughput run")
    b.add_argument("--batch-size", type=int, default=100, help="readings per gateway batch")
    b.add_argument("--latency-probes", type=int, default=20, help="excursions to time")
    b.add_argument("--background-rate", type=float, default=5000.0, help="readings/s of load")
    b.add_argument("--skip", default="", help="comma list of parts to skip: single,batch,latency")
    b.add_argument("--mqtt-url", help="broker to use (default: a private Mosquitto, deploy config)")
    b.add_argument("--pg-url", help="server URL without database (default from BK_DATABASE_URL)")
    b.add_argument(
        "--json",
        dest="json_path",
        default="var/bench/ingest.json",
        help="where to write the results as JSON",
    )
    b.set_defaults(handler=_cmd_bench)
    e = bench_sub.add_parser(
        "edge",
        help="largest number of 1280x720 cameras one edge box sustains at 5 fps (and a baseline)",
    )
    e.add_argument(
        "--cameras",
        default="1,2,4,8,12,16,20,24",
        help="camera counts to try, ascending; stops at the first not sustained",
    )
    e.add_argument("--duration", type=float, default=60.0, help="measured seconds per trial")
    e.add_argument("--warmup", type=float, default=8.0, help="unmeasured seconds per trial")
    e.add_argument("--model", help="ONNX model (default: models/weights/mask_yolo_edge.onnx)")
    e.add_argument(
        "--baseline", action="store_true", help="also run ultralytics predict(imgsz=640)"
    )
    e.add_argument(
        "--baseline-model", help="model for the baseline (.pt or .onnx; default --model)"
    )
    e.add_argument("--baseline-cameras", default="1,2,3,4,6,8", help="baseline camera counts")
    e.add_argument("--keep-going", action="store_true", help="try every count even after a miss")
    e.add_argument(
        "--trials",
        type=int,
        default=1,
        help="trials per camera count; a count is sustained only when all of its trials are",
    )
    e.add_argument("--mqtt-url", help="broker (default: a private Mosquitto, else outbox only)")
    e.add_argument("--json", default="var/bench/edge.json", help="where to write the results")
    e.add_argument("--cache-dir", default="var/bench/cache", help="where the videos are cached")
    e.add_argument("--video-seconds", type=float, default=20.0, help="length of the video loop")
    e.add_argument(
        "--substream",
        action="store_true",
        help="cameras analyse a sub-stream file made from the 720p clip (evidence from the 720p "
        "main stream); the baseline reads the same sub-streams",
    )
    e.add_argument("--substream-size", default="640x360", help="sub-stream WIDTHxHEIGHT")
    e.add_argument("--substream-fps", type=float, default=10.0, help="sub-stream frame rate")
    e.add_argument(
        "--frame-buffers",
        type=int,
        help="decoded-frame buffers each reader reuses (default 0: a new array per frame)",
    )
    e.set_defaults(handler=_cmd_bench_edge)
    from brightkitchen.bench.cli import (  # argparse only
        register_api,
        register_console,
        register_district,
    )

    register_api(bench_sub)
    register_district(bench_sub)
    register_console(bench_sub)


def _faults(text: str) -> frozenset[Any]:
    from bkcommon.errors import ConfigError
    from brightkitchen.simulate.fleet import Fault

    if text.strip() in ("", "none"):
        return frozenset()
    try:
        return frozenset(Fault(x.strip()) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc}; choose from compressor, offline, replay") from exc


def _cmd_sensors(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bkcommon.errors import ConfigError
    from bkcommon.settings import load_common_settings
    from brightkitchen.simulate.fleet import Fleet, FleetConfig, generate_site_file, site_file_yaml
    from brightkitchen.simulate.publisher import checked_broker_url

    if args.sites < 1 or args.per_profile < 1:
        raise ConfigError("--sites and --per-profile must be at least 1")
    if args.speed < 0 or args.duration <= 0 or args.interval <= 0 or args.rate < 0:
        raise ConfigError("--speed/--rate must be >= 0, --duration/--interval > 0")
    settings = load_common_settings()
    url = checked_broker_url(args.mqtt_url or settings.mqtt_url)
    cfg = FleetConfig(
        sites=args.sites,
        per_profile=args.per_profile,
        duration_s=args.duration,
        interval_s=args.interval,
        seed=args.seed,
        faults=_faults(args.scenario),
        batch_every=args.batch,
        prefix=settings.mqtt_prefix,
        site_prefix=args.site_prefix,
    )
    site_file = generate_site_file(
        args.sites, args.per_profile, site_prefix=args.site_prefix, webhook_url=args.webhook_url
    )
    fleet = Fleet(cfg)
    n_sensors = len(fleet.sensors)
    real_s = args.duration / args.speed if args.speed else 0
    plan = (
        f"fleet: {args.sites} sites x {len(fleet.sensors) // args.sites} sensors = {n_sensors}; "
        f"{fleet.ticks()} readings each over {args.duration:.0f} simulated s "
        f"(~{real_s:.0f} s real at speed {args.speed:g}); faults: "
        f"compressor={fleet.targets.compressor_sensor} offline={fleet.targets.offline_sensor} "
        f"replay={fleet.targets.replay_site}; broker {url}"
    )
    if args.validate_config:
        print(plan)
        print("configuration OK")
        return 0
    if args.write_site_file:
        Path(args.write_site_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write_site_file).write_text(site_file_yaml(site_file), encoding="utf-8")
        print(f"wrote site file {args.write_site_file} ({n_sensors} sensors)")
    if args.sync_registry:
        import psycopg

        from brightkitchen.registry import sync_registry

        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            res = sync_registry(conn, site_file)
        print(f"registry synced: {res.sites} sites, {res.sensors} sensors")
    print(plan, flush=True)
    return _publish(fleet, url, args)


def _cmd_duties(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from bkcommon.errors import ConfigError
    from bkcommon.timeutil import utcnow
    from brightkitchen.simulate.duties import days_back, http_caller, plan_duties, play_duties
    from brightkitchen.simulate.fleet import site_id_for

    rates = (args.miss_rate, args.sick_rate, args.unsampled_rate)
    if args.sites < 1 or not 1 <= args.days <= 366 or not all(0 <= r <= 1 for r in rates):
        raise ConfigError("--sites >= 1, --days 1..366, rates between 0 and 1")
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("BK_API_TOKEN", "").strip()
    if not token:
        raise ConfigError("give --token-file or set BK_API_TOKEN (a writer's bearer token)")
    now = utcnow()
    sites = [site_id_for(args.site_prefix, i) for i in range(args.sites)]
    plan = plan_duties(
        sites,
        days_back(now, args.days),
        now=now,
        seed=args.seed,
        miss_rate=args.miss_rate,
        sick_rate=args.sick_rate,
        unsampled_rate=args.unsampled_rate,
        staff=args.staff,
    )
    played = play_duties(http_caller(args.api_url, token), plan, deadline_local=args.deadline)
    print(
        f"duties: {played.sites} sites x {args.days} days: {played.checks} daily checks done, "
        f"{len(played.checks_missed)} not done (tickets once their deadline passes); "
        f"{played.staff_checked} morning checks, {len(played.off_duty)} staff off duty; "
        f"{played.meals_sampled} meals sampled, {len(played.unsampled)} without samples"
        + (f"; {played.recorded_before} recorded before" if played.recorded_before else ""),
        flush=True,
    )
    return 0


def _publish(fleet: Any, url: str, args: argparse.Namespace) -> int:
    import signal
    import uuid

    from brightkitchen.simulate.publisher import Publisher, connect, print_progress

    client = connect(url, client_id=f"bk-sim-{uuid.uuid4().hex[:8]}")
    pub = Publisher(client, speed=args.speed, rate=args.rate, progress=print_progress)

    def _stop(_sig: int, _frm: object) -> None:
        pub.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    try:
        stats = pub.run(fleet.emissions(follow=args.follow))
    except KeyboardInterrupt:
        pub.stop_event.set()
        return 130
    finally:
        client.disconnect()
        client.loop_stop()
    print(
        f"done: {stats.messages} messages ({stats.batches} batches), {stats.readings} readings "
        f"in {stats.elapsed_s:.1f} s",
        flush=True,
    )
    return 0


def _cmd_bench_edge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bkcommon.errors import ConfigError
    from brightkitchen.bench.edge_bench import EdgeBenchOptions, run_edge_bench

    def counts(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError as exc:
            raise ConfigError(f"camera counts must be integers: {text!r}") from exc
        if not values or min(values) < 1:
            raise ConfigError(f"camera counts must be >= 1: {text!r}")
        return values

    if args.duration <= 0 or args.warmup < 0:
        raise ConfigError("--duration must be > 0 and --warmup >= 0")
    try:
        sub_w, sub_h = (int(x) for x in args.substream_size.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--substream-size: WIDTHxHEIGHT, got {args.substream_size!r}") from exc
    if not (16 <= sub_w <= 1280 and 16 <= sub_h <= 720) or not 1 <= args.substream_fps <= 25:
        raise ConfigError("--substream-size within 16x16..1280x720, --substream-fps 1..25")
    if args.frame_buffers is not None and not 0 <= args.frame_buffers <= 16:
        raise ConfigError("--frame-buffers must be 0..16")
    if not 1 <= args.trials <= 20:
        raise ConfigError("--trials must be 1..20")
    opts = EdgeBenchOptions(
        cameras=counts(args.cameras),
        duration_s=args.duration,
        warmup_s=args.warmup,
        model=Path(args.model) if args.model else None,
        baseline=args.baseline,
        baseline_model=Path(args.baseline_model) if args.baseline_model else None,
        baseline_cameras=counts(args.baseline_cameras),
        json_path=Path(args.json),
        cache_dir=Path(args.cache_dir),
        mqtt_url=args.mqtt_url,
        keep_going=args.keep_going,
        video_loop_s=args.video_seconds,
        substream=args.substream,
        substream_size=(sub_w, sub_h),
        substream_fps=args.substream_fps,
        frame_buffers=args.frame_buffers,
        trials=args.trials,
    )
    return run_edge_bench(opts, out=sys.stdout)


def _cmd_bench(args: argparse.Namespace) -> int:
    from brightkitchen.bench.ingest_bench import BenchOptions, run_bench

    opts = BenchOptions(
        readings=args.readings,
        batch_size=args.batch_size,
        latency_probes=args.latency_probes,
        background_rate=args.background_rate,
        skip=frozenset(x.strip() for x in args.skip.split(",") if x.strip()),
        mqtt_url=args.mqtt_url,
        pg_url=args.pg_url,
        json_path=args.json_path,
    )
    return run_bench(opts, out=sys.stdout)
