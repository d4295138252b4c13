"""The edge worker wiring: real readers on real files, the outbox, MQTT, page and metrics.

The per-camera pipeline here is a small stand-in that decides on pixel colour
(the vision half's ``CameraPipeline`` has its own tests and its own end-to-end
test through ``edge run``); everything after ``process()`` is the real thing.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from bkcommon.messages import EdgeStatus, Violation, decode
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import Camera, EdgeBox, Site
from bkcommon.topics import status_topic, violation_topic
from edge.capture import CameraReader, CaptureSettings
from edge.events import EvidenceBox, ViolationEvent
from edge.settings import EdgeSettings
from edge.worker import EdgeWorker, Pipeline
from tests.edge.mqtt_support import Recorder
from tests.edge.support import RED, Patch, kitchen_background, render, write_video
from tests.support.services import wait_until


class RedPatchPipeline:
    """Stand-in vision: one no_mask event when a red patch is in the frame."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self.fired = False

    def process(self, frame_bgr: npt.NDArray[np.uint8], ts: datetime) -> list[ViolationEvent]:
        red = (frame_bgr[..., 2] > 200) & (frame_bgr[..., 1] < 40)
        if self.fired or red.sum() < 100:
            return []
        self.fired = True
        ys, xs = np.nonzero(red)
        return [
            ViolationEvent(
                rule="no_mask",
                camera_id=self.camera.id,
                zone_id="prep",
                started_at=ts,
                ended_at=None,
                confidence=0.9,
                track_id=1,
                model_version="stand-in",
                frame=frame_bgr,
                boxes=[
                    EvidenceBox(
                        float(xs.min()),
                        float(ys.min()),
                        float(xs.max()),
                        float(ys.max()),
                        "without_mask",
                        0.9,
                    )
                ],
                zone_polygon=[(0, 0), (639, 0), (639, 359), (0, 359)],
            )
        ]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    bg = kitchen_background()
    frames = [render(bg, [Patch(320, 180, 60, RED)] if i >= 5 else []) for i in range(40)]
    return write_video(tmp_path / "kitchen.avi", frames, fps=10)


@pytest.fixture
def running(
    tmp_path: Path, video: Path, mqtt_url: str, topic_prefix: str
) -> Iterator[tuple[EdgeWorker, Recorder]]:
    site = Site(
        id="site-w",
        name="食堂",
        region="r",
        edge_boxes=[
            EdgeBox(
                id="box-w",
                cameras=[
                    Camera(id="cam-good", name="凉菜专间", url=str(video), analyse_fps=10),
                    Camera(id="cam-bad", url=str(tmp_path / "missing.avi"), analyse_fps=5),
                ],
            )
        ],
    )
    box = site.edge_boxes[0]
    settings = EdgeSettings(
        data_dir=tmp_path / "edge",
        display_port=0,
        metrics_port=0,
        status_interval_s=0.5,
        camera_alarm_cooldown_s=600,
        client_id=f"edge-{uuid.uuid4().hex[:8]}",
    )
    common = CommonSettings(mqtt_url=mqtt_url, mqtt_prefix=topic_prefix)
    cap = CaptureSettings(offline_after_s=1, problem_after_s=0, backoff_max_s=1)
    pipelines: dict[str, Pipeline] = {}

    def factory(camera: Camera) -> Pipeline:
        if camera.id == "cam-bad":
            raise RuntimeError("this camera's pipeline is broken too")
        pipelines[camera.id] = RedPatchPipeline(camera)
        return pipelines[camera.id]

    rec = Recorder(mqtt_url, f"{topic_prefix}/#", client_id=f"sub-{uuid.uuid4().hex[:8]}")
    worker = EdgeWorker(
        site=site,
        box=box,
        settings=settings,
        common=common,
        pipeline_factory=factory,
        model_version="stand-in",
        reader_factory=lambda c: CameraReader(c.id, c.url, c.analyse_fps, cap),
    )
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    yield worker, rec
    worker.stop_event.set()
    t.join(15)
    assert not t.is_alive()
    st = status_topic("site-w", "box-w", topic_prefix)
    rec.client.publish(st, b"", qos=1, retain=True).wait_for_publish(5)
    rec.close()


def _violations(rec: Recorder, topic: str) -> list[Violation]:
    return [decode(Violation, p) for t, p, _ in list(rec.messages) if t == topic]


def test_worker_delivers_violation_and_camera_offline(
    running: tuple[EdgeWorker, Recorder], topic_prefix: str
) -> None:
    worker, rec = running
    vt = violation_topic("site-w", "box-w", topic_prefix)
    st = status_topic("site-w", "box-w", topic_prefix)
    wait_until(
        lambda: {v.rule for v in _violations(rec, vt)} >= {"no_mask", "camera_offline"},
        20,
        what="no_mask and camera_offline violations",
    )
    vs = {v.rule: v for v in _violations(rec, vt)}
    nm = vs["no_mask"]
    assert nm.camera_id == "cam-good"
    assert nm.evidence is not None
    assert nm.evidence.jpeg_b64
    off = vs["camera_offline"]
    assert off.camera_id == "cam-bad"
    assert off.details["problem"] == "offline"
    # cooldown: one camera_offline finding, not one per second
    assert sum(1 for v in _violations(rec, vt) if v.rule == "camera_offline") == 1
    wait_until(lambda: worker.outbox.depth() == 0, 10, what="outbox drained")

    def status() -> EdgeStatus | None:
        ps = [p for t, p, _ in list(rec.messages) if t == st and p]
        return decode(EdgeStatus, ps[-1]) if ps else None

    wait_until(
        lambda: (
            (s := status()) is not None
            and len(s.cameras) == 2
            and any(c.fps > 0 for c in s.cameras)
        ),
        10,
        what="status with camera fps",
    )
    s = status()
    assert s is not None
    assert s.online
    cams = {c.camera_id: c for c in s.cameras}
    assert not cams["cam-bad"].online
    assert cams["cam-bad"].problem == "offline"
    assert cams["cam-good"].online
    # metrics and page are served
    metrics = httpx.get(f"http://127.0.0.1:{worker.metrics_port}/metrics").text
    assert 'edge_camera_fps{camera_id="cam-good"}' in metrics
    assert 'edge_violations_total{camera_id="cam-good",rule="no_mask"} 1.0' in metrics
    assert 'edge_camera_errors_total{camera_id="cam-bad"}' in metrics
    assert httpx.get(worker.display.url + "/healthz").text == "ok\n"
    nm_snap = httpx.get(f"{worker.display.url}/snapshot/{nm.event_id}.jpg")
    assert nm_snap.status_code == 200
    # the kitchen's pop-up names the camera from the site file, not by its id
    recent = {r["event_id"]: r for r in httpx.get(f"{worker.display.url}/recent").json()}
    assert recent[nm.event_id]["camera_name"] == "凉菜专间"
