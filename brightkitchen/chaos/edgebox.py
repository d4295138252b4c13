"""A chaos edge box: numbered violations through the edge box's own delivery stack.

Run as a child process (``python -m brightkitchen.chaos.edgebox ...``) so the chaos run can
SIGKILL it. It builds each violation as the vision pipeline hands it over (a
:class:`edge.events.ViolationEvent` with a frame), and hands it to the same
:class:`edge.delivery.Delivery`, :class:`edge.outbox.Outbox` and
:class:`edge.publish.EdgePublisher` that ``brightkitchen edge run`` uses: evidence JPEG
rendered and inlined, the row fsynced into SQLite before ``put`` returns, QoS 1, deleted
only on PUBACK. Event ``n`` always has the id ``<run>-ev-<n>``; after a restart the box
resumes at the number after the last one it stored (the progress file is written after
the durable put, so at worst one event is put twice and the outbox ignores the copy).

Control files in ``--data-dir`` let the run steer it without restarting: ``budget_mb``
(the outbox's disk budget, the emulated disk quota where no small filesystem can be
mounted) and ``stop_producing``. The box writes ``state.json`` (produced, outbox depth,
drops, evidence pruned, free disk) for the report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import numpy as np

from bkcommon.logs import setup_logging
from bkcommon.timeutil import utcnow
from brightkitchen.chaos.reconcile import event_id
from edge.delivery import Delivery
from edge.events import EvidenceBox, ViolationEvent
from edge.outbox import Outbox
from edge.publish import EdgePublisher

logger = logging.getLogger("brightkitchen.chaos.edgebox")

RULE = "no_mask"


def _frame(n: int) -> np.ndarray:
    """A small, slightly different frame per event (so each evidence JPEG differs)."""
    rng = np.random.default_rng(n)
    img = rng.integers(0, 255, size=(180, 320, 3), dtype=np.uint8)
    img[40:140, 100:200] = (n * 37) % 255
    return img


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> None:
    """Produce numbered violations at ``args.rate`` until SIGTERM; deliver the outbox."""
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    progress = data / "produced"
    produced = int(_read_float(progress) or 0)
    outbox = Outbox(
        data / f"outbox-{args.box}.sqlite",
        max_bytes=int(args.outbox_max_mb * 1024 * 1024),
        max_rows=args.outbox_max_rows,
        disk_reserve_bytes=int(args.disk_reserve_kb * 1024),
    )
    publisher = EdgePublisher(
        mqtt_url=args.mqtt_url,
        client_id=f"chaos-edge-{args.box}"[:64],
        site_id=args.site,
        box_id=args.box,
        outbox=outbox,
        prefix=args.prefix,
        resend_after_s=args.resend_after_s,
        status_interval_s=5.0,
        keepalive_s=5,
        reconnect_max_s=2,
    )
    delivery = Delivery(
        site_id=args.site,
        box_id=args.box,
        outbox=outbox,
        prefix=args.prefix,
        publisher=publisher,
        max_width_px=320,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    publisher.start()
    logger.info("chaos edge box %s resuming at event %d", args.box, produced)
    period = 1.0 / args.rate
    next_at = time.monotonic()
    next_state = 0.0
    try:
        while not stop.is_set():
            budget = _read_float(data / "budget_mb")
            outbox.max_bytes = int((budget or args.outbox_max_mb) * 1024 * 1024)
            now = time.monotonic()
            if not (data / "stop_producing").exists() and now >= next_at:
                next_at = max(next_at + period, now - period)
                _deliver(delivery, args, produced)
                produced += 1
                progress.write_text(str(produced), encoding="utf-8")
            if now >= next_state:
                next_state = now + 0.5
                st = outbox.stats()
                _write_json(
                    data / "state.json",
                    {
                        "produced": produced,
                        "depth": st.depth,
                        "bytes": st.bytes_total,
                        "dropped_total": st.dropped_total,
                        "evidence_pruned_total": st.evidence_pruned_total,
                        "max_bytes": st.max_bytes,
                        "connected": publisher.connected,
                        "disk_free": shutil.disk_usage(data).free,
                        "at": time.time(),
                    },
                )
            stop.wait(0.05)
    finally:
        publisher.stop()
        outbox.close()


def _deliver(delivery: Delivery, args: argparse.Namespace, n: int) -> None:
    now = utcnow()
    event = ViolationEvent(
        rule=RULE,
        camera_id=args.camera,
        zone_id="prep",
        started_at=now,
        ended_at=now,
        confidence=0.9,
        track_id=n,
        model_version="chaos",
        frame=_frame(n),
        boxes=[EvidenceBox(100, 40, 200, 140, "without_mask", 0.9)],
        details={"chaos_n": n},
    )
    delivery.deliver(event, event_id(args.run_id, n))


def main() -> None:
    """Entry point of the child process."""
    p = argparse.ArgumentParser(prog="python -m brightkitchen.chaos.edgebox")
    p.add_argument("--mqtt-url", required=True)
    p.add_argument("--prefix", default="bk/v1")
    p.add_argument("--site", required=True)
    p.add_argument("--box", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--rate", type=float, default=2.0, help="violations per second")
    p.add_argument("--outbox-max-mb", type=float, default=64.0)
    p.add_argument("--outbox-max-rows", type=int, default=100_000)
    p.add_argument("--resend-after-s", type=float, default=10.0)
    p.add_argument(
        "--disk-reserve-kb", type=float, default=32 * 1024, help="free disk the outbox keeps"
    )
    args = p.parse_args()
    setup_logging(os.environ.get("BK_LOG_LEVEL", "INFO"), "text")
    run(args)


if __name__ == "__main__":
    main()
