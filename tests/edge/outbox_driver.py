"""A stand-alone edge sender for crash tests: put N violations in the outbox, then publish.

Run as ``python -m tests.edge.outbox_driver --db F --url U ...``; the test kills it
with SIGKILL at chosen moments and starts it again with the same arguments.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import UTC, datetime

from bkcommon.messages import Violation, encode
from bkcommon.topics import violation_topic
from edge.outbox import Outbox
from edge.publish import EdgePublisher


def event_id(i: int) -> str:
    """Deterministic event id of the i-th test violation."""
    return f"evt-{i:06d}"


def main() -> int:
    """Put, then publish until SIGTERM."""
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--site", default="site-1")
    p.add_argument("--box", default="box-1")
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--put-delay", type=float, default=0.0)
    p.add_argument("--inflight", type=int, default=20)
    p.add_argument("--client-id", default="edge-driver")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    ob = Outbox(a.db)
    topic = violation_topic(a.site, a.box, a.prefix)
    pub = EdgePublisher(
        mqtt_url=a.url,
        client_id=a.client_id,
        site_id=a.site,
        box_id=a.box,
        outbox=ob,
        prefix=a.prefix,
        inflight_max=a.inflight,
        status_interval_s=5,
        reconnect_max_s=1,
    )
    pub.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for i in range(a.n):
        v = Violation(
            event_id=event_id(i),
            rule="no_mask",
            camera_id="cam-1",
            zone="prep",
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
            confidence=0.9,
            track_id=i,
            details={"i": i},
        )
        if ob.put(v.event_id, topic, encode(v)):
            pub.wake()
        if a.put_delay:
            stop.wait(a.put_delay)
    print(f"put {a.n}", flush=True)
    stop.wait()
    pub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
