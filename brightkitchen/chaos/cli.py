"""``brightkitchen chaos``: the fault-and-fuzz command (light imports only)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``chaos`` command."""
    p = subparsers.add_parser(
        "chaos",
        help="kill and restart every service, broker and database under numbered traffic; "
        "reconcile 0 lost / 0 duplicated; fuzz every MQTT payload type",
        description=(
            "Starts its own Mosquitto and PostgreSQL (never the machine's), the real services "
            "as child processes, numbered readings and edge events; injects SIGKILLs, broker "
            "and database restarts, an uplink cut and a full edge disk; then counts every "
            "reading and event in the database. Exit code 1 on any loss, duplicate, crash "
            "or fuzz failure."
        ),
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds over which the faults are spread (default: 480, --short 30)",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help="the CI version: seconds per fault instead of minutes, no fuzz unless asked",
    )
    p.add_argument("--report", help="write the report here (.json: JSON, else Markdown)")
    p.add_argument(
        "--fuzz",
        action="store_true",
        help="only fuzz the payloads (no faults); see --fuzz-cases",
    )
    p.add_argument(
        "--fuzz-cases",
        type=int,
        default=None,
        help="hypothesis cases per payload type (default 10000; --short 0 = no fuzz)",
    )
    p.add_argument("--keep", action="store_true", help="keep the run's directory (logs, data)")
    p.set_defaults(handler=_cmd_chaos)


def _cmd_chaos(args: argparse.Namespace) -> int:
    from brightkitchen.chaos.report import to_json, to_markdown
    from brightkitchen.chaos.run import ChaosOptions, ChaosResult, ChaosRun

    command = "brightkitchen " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cases = args.fuzz_cases
    if args.short:
        opts = ChaosOptions.short(args.duration)
        cases = 0 if cases is None else cases
    else:
        opts = ChaosOptions.full(args.duration)
        cases = 10_000 if cases is None else cases
    if args.keep:
        from dataclasses import replace

        opts = replace(opts, keep_dir=True)
    result = ChaosResult(opts, "") if args.fuzz else ChaosRun(opts, sys.stdout).run()
    if cases > 0:
        from brightkitchen.chaos.fuzz import run_fuzz

        result.fuzz = run_fuzz(cases, sys.stdout)
        if args.fuzz:
            result.total = None
    text = to_markdown(result, command)
    print(text)
    if args.report:
        path = Path(args.report)
        path.write_text(
            to_json(result, command) if path.suffix == ".json" else text, encoding="utf-8"
        )
    if args.fuzz:
        return 0 if result.fuzz and all(f["ok"] for f in result.fuzz) else 1
    return 0 if result.ok else 1
