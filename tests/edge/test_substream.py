"""Cameras analysed on their sub-stream: config, zone mapping, main-stream evidence, buffers."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bkcommon.errors import ConfigError
from bkcommon.messages import Violation, decode
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import Camera, EdgeBox, Site, SubStream, Zone, parse_site_file
from bkcommon.topics import violation_topic
from edge.capture import (
    CameraReader,
    CaptureSettings,
    FrameRing,
    StillGrabError,
    grab_still,
    retrieve_into,
)
from edge.events import EvidenceBox, ViolationEvent
from edge.pipeline import CameraPipeline, VisionSettings
from edge.settings import EdgeSettings
from edge.substream import main_stream_evidence
from edge.worker import EdgeWorker, SharedDetector, vision_pipeline_factory
from edge.zones import ZoneSet
from tests.edge.mqtt_support import Recorder
from tests.edge.support import RED, Patch, kitchen_background, render, write_video
from tests.support.services import REPO, wait_until

MAIN_W, MAIN_H = 1280, 720
SUB_W, SUB_H = 320, 180


def _site(camera: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "regions": [{"id": "r1", "name": "R"}],
        "sites": [
            {
                "id": "site-s",
                "name": "食堂",
                "region": "r1",
                "edge_boxes": [{"id": "box-s", "cameras": [camera]}],
            }
        ],
    }


def _camera(**extra: Any) -> dict[str, Any]:
    cam: dict[str, Any] = {
        "id": "cam-1",
        "url": "rtsp://10.0.0.5/Streaming/Channels/101",
        "zones": [{"id": "prep", "kind": "prep_room", "polygon": [[0, 0], [1280, 0], [640, 720]]}],
    }
    cam.update(extra)
    return cam


def _main_frames(n: int) -> list[np.ndarray]:
    """Main-stream frames whose green level tells the frame index (20 per step)."""
    out = []
    for i in range(n):
        img = np.zeros((MAIN_H, MAIN_W, 3), np.uint8)
        img[..., 1] = 20 * i
        out.append(img)
    return out


@pytest.fixture
def main_video(tmp_path: Path) -> Path:
    """A 1280x720 10 fps main stream (MJPG), 10 frames of rising green."""
    return write_video(tmp_path / "main.avi", _main_frames(10), fps=10)


def _event_on_sub(frame: np.ndarray) -> ViolationEvent:
    return ViolationEvent(
        rule="no_mask",
        camera_id="cam-1",
        zone_id="prep",
        started_at=datetime(2026, 12, 5, 8, 0, tzinfo=UTC),
        ended_at=None,
        confidence=0.9,
        track_id=3,
        model_version="m",
        frame=frame,
        boxes=[EvidenceBox(40.0, 20.0, 80.0, 60.0, "without_mask", 0.9)],
        zone_polygon=[(0.0, 0.0), (320.0, 0.0), (160.0, 180.0)],
        details={"share": 0.8},
    )


def _sub_camera(url: str, timeout_s: float = 2.0) -> Camera:
    return Camera(
        id="cam-1",
        url=url,
        substream=SubStream(url="unused.mp4", main_size=(MAIN_W, MAIN_H), grab_timeout_s=timeout_s),
    )


# -- configuration -------------------------------------------------------------------------


def test_substream_config_is_read_with_its_defaults() -> None:
    sf = parse_site_file(
        _site(_camera(substream={"url": "rtsp://10.0.0.5/102", "main_size": [1280, 720]}))
    )
    cam = sf.sites[0].edge_boxes[0].cameras[0]
    assert cam.substream is not None
    assert cam.substream.url == "rtsp://10.0.0.5/102"
    assert cam.substream.main_size == (1280, 720)
    assert cam.substream.grab_timeout_s == 3.0
    assert parse_site_file(_site(_camera())).sites[0].edge_boxes[0].cameras[0].substream is None


@pytest.mark.parametrize(
    ("substream", "zones", "message"),
    [
        (
            {"url": "rtsp://x/102"},
            None,
            "sites.0.edge_boxes.0.cameras.0.substream.main_size: Field required",
        ),
        (
            {"url": "rtsp://x/102", "main_size": [1280, 720], "fps": 10},
            None,
            "sites.0.edge_boxes.0.cameras.0.substream.fps: Extra inputs are not permitted",
        ),
        (
            {"url": "rtsp://x/102", "main_size": [0, 720]},
            None,
            "main_size: 0x720 is not a video size",
        ),
        (
            {"url": "rtsp://x/102", "main_size": [1280, 720], "grab_timeout_s": 0},
            None,
            "sites.0.edge_boxes.0.cameras.0.substream.grab_timeout_s",
        ),
        (
            {"url": "rtsp://x/102", "main_size": [640, 360]},
            None,  # the default zones reach 1280x720: drawn on a bigger image than the main stream
            "zones.0.polygon.1: point (1280, 0) lies outside the main stream's 640x360",
        ),
    ],
)
def test_substream_config_errors_name_the_key_path(
    substream: dict[str, Any], zones: list[dict[str, Any]] | None, message: str
) -> None:
    cam = _camera(substream=substream)
    if zones is not None:
        cam["zones"] = zones
    with pytest.raises(ConfigError) as err:
        parse_site_file(_site(cam))
    assert message in str(err.value)


def test_validate_config_shows_substream_and_errors(tmp_path: Path) -> None:
    from tests.edge.support import MASK_CLASSES, build_colour_model

    env = dict(os.environ)
    env["BK_EDGE_DATA_DIR"] = str(tmp_path / "edge")
    env["BK_EDGE_MODEL_PATH"] = str(build_colour_model(tmp_path / "m.onnx", MASK_CLASSES))
    env.pop("BK_EDGE_BOX_ID", None)
    good = tmp_path / "site.yaml"
    good.write_text(
        """
version: 1
regions: [{id: r1, name: R}]
sites:
  - id: site-s
    name: 食堂
    region: r1
    edge_boxes:
      - id: box-s
        cameras:
          - id: cam-1
            url: rtsp://user:secret@10.0.0.5/Streaming/Channels/101
            substream:
              url: rtsp://user:secret@10.0.0.5/Streaming/Channels/102
              main_size: [1920, 1080]
            zones:
              - {id: prep, kind: prep_room, polygon: [[0, 0], [1920, 0], [1920, 1080]]}
""",
        encoding="utf-8",
    )

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "brightkitchen.cli",
                "edge",
                "run",
                "--validate-config",
                "--config",
                str(path),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    r = run(good)
    assert r.returncode == 0, r.stderr
    assert "substream url=rtsp://user:***@10.0.0.5/Streaming/Channels/102" in r.stdout
    assert "main stream 1920x1080 only for evidence" in r.stdout
    assert "secret" not in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("[1920, 1080]]", "[2000, 1080]]"), encoding="utf-8")
    r = run(bad)
    assert r.returncode == 2
    assert "sites.0.edge_boxes.0.cameras.0" in r.stderr
    assert "zones.0.polygon.2: point (2000, 1080) lies outside" in r.stderr


# -- zones between the two resolutions ------------------------------------------------------


def test_zone_set_scales_main_stream_zones_to_the_frame() -> None:
    zones = [
        Zone(id="prep", kind="prep_room", polygon=[(0, 0), (1280, 0), (1280, 720), (0, 720)]),
        Zone(id="st", kind="board_station", polygon=[(640, 360), (960, 360), (960, 540)]),
    ]
    same = ZoneSet.for_frame(zones, (1280, 720), 1280, 720)
    assert same.zones[1].points() == [(640.0, 360.0), (960.0, 360.0), (960.0, 540.0)]
    d1 = ZoneSet.for_frame(zones, (1280, 720), 704, 576)  # a D1 sub-stream: x and y differ
    pts = [c for xy in d1.zones[1].points() for c in xy]
    assert pts == pytest.approx([352.0, 288.0, 528.0, 288.0, 528.0, 432.0])
    assert d1.zones[1].bbox == (352, 288, 528, 432)
    pt = np.array([[500.0, 300.0]], np.float32)  # inside the scaled station, not the original
    assert d1.zones[1].contains(pt).tolist() == [True]
    assert same.zones[1].contains(pt).tolist() == [False]
    assert ZoneSet.for_frame(zones, None, 640, 360).zones[0].points()[2] == (1280.0, 720.0)


def test_pipeline_on_substream_frames_scales_zones_and_boxes(mask_model_path: Path) -> None:
    """A red face in the prep zone on 320x180 frames of a 1280x720 camera raises no_mask there."""
    from edge.detect.onnx import OnnxDetector

    camera = Camera(
        id="cam-1",
        url="main.mp4",
        substream=SubStream(url="sub.mp4", main_size=(MAIN_W, MAIN_H)),
        zones=[
            Zone(
                id="prep", kind="prep_room", polygon=[(640, 0), (1280, 0), (1280, 720), (640, 720)]
            )
        ],
        rules={"no_mask": {"window_s": 1, "min_frames": 2}},
    )
    det = SharedDetector(OnnxDetector(mask_model_path))
    pipe = CameraPipeline(camera, det, VisionSettings(detect_every_n_frames=1))
    bg = kitchen_background(SUB_W, SUB_H)
    events: list[ViolationEvent] = []
    t0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC).timestamp()
    for i in range(30):
        frame = render(bg, [Patch(240 + (i % 3), 90, 24, RED)] if i >= 2 else [])
        events += pipe.process(frame, datetime.fromtimestamp(t0 + i * 0.2, tz=UTC))
    # zones: main-stream pixels scaled by 1/4 to the sub-stream
    assert pipe.zones.zones[0].points() == [
        (160.0, 0.0),
        (320.0, 0.0),
        (320.0, 180.0),
        (160.0, 180.0),
    ]
    nm = [e for e in events if e.rule == "no_mask"]
    assert nm, pipe.stats
    ev = nm[0]
    assert ev.zone_id == "prep"
    assert ev.frame.shape[:2] == (SUB_H, SUB_W)
    assert ev.zone_polygon == [(160.0, 0.0), (320.0, 0.0), (320.0, 180.0), (160.0, 180.0)]
    b = ev.boxes[0]
    assert 220 <= b.x1 <= 232, b  # in sub-stream pixels
    assert 248 <= b.x2 <= 262, b
    # a face left of x=160 (main 640) is outside the scaled zone: no event for it
    pipe2 = CameraPipeline(camera, det, VisionSettings(detect_every_n_frames=1))
    quiet: list[ViolationEvent] = []
    for i in range(30):
        frame = render(bg, [Patch(80 + (i % 3), 90, 24, RED)] if i >= 2 else [])
        quiet += pipe2.process(frame, datetime.fromtimestamp(t0 + i * 0.2, tz=UTC))
    assert [e for e in quiet if e.rule == "no_mask"] == []
    assert pipe2.stats.detections > 0  # it was seen, just not in a mask zone


# -- evidence from the main stream ----------------------------------------------------------


def test_evidence_comes_from_the_main_stream_at_the_frames_position(main_video: Path) -> None:
    sub_frame = np.full((SUB_H, SUB_W, 3), 90, np.uint8)
    ev = main_stream_evidence(
        _sub_camera(str(main_video)), _event_on_sub(sub_frame), CaptureSettings(), 0.6
    )
    assert ev.frame.shape == (MAIN_H, MAIN_W, 3)
    assert ev.details == {"share": 0.8, "evidence_source": "main_stream"}
    green = float(ev.frame[..., 1].mean())
    assert abs(green - 120) < 12, green  # frame 6 of the main stream (0.6 s at 10 fps)
    b = ev.boxes[0]
    assert (b.x1, b.y1, b.x2, b.y2) == (160.0, 80.0, 320.0, 240.0)  # x4 to main pixels
    assert ev.zone_polygon == [(0.0, 0.0), (1280.0, 0.0), (640.0, 720.0)]
    assert (ev.rule, ev.zone_id, ev.track_id, ev.confidence) == ("no_mask", "prep", 3, 0.9)


def test_grab_still_opens_grabs_and_closes(main_video: Path) -> None:
    img = grab_still(str(main_video), CaptureSettings(), 2.0)
    assert img.shape == (MAIN_H, MAIN_W, 3)
    assert float(img[..., 1].mean()) < 12  # a stream without a position: its first frame


def test_evidence_falls_back_to_the_substream_frame_when_the_main_stream_is_missing(
    tmp_path: Path,
) -> None:
    sub_frame = np.full((SUB_H, SUB_W, 3), 90, np.uint8)
    ev = main_stream_evidence(
        _sub_camera(str(tmp_path / "gone.avi")), _event_on_sub(sub_frame), CaptureSettings()
    )
    assert ev.frame is sub_frame
    assert ev.boxes[0].x1 == 40.0  # still in the sub-stream frame's pixels
    assert ev.details["evidence_source"] == "substream"
    assert "main stream unavailable (cannot open the main stream)" in ev.details["evidence_note"]
    assert "320x180 analysis stream" in ev.details["evidence_note"]
    assert ev.details["share"] == 0.8


def test_a_hanging_main_stream_costs_at_most_the_grab_timeout(hanging_server: int) -> None:
    sub_frame = np.full((SUB_H, SUB_W, 3), 90, np.uint8)
    cam = _sub_camera(f"rtsp://127.0.0.1:{hanging_server}/Streaming/Channels/101", timeout_s=1.0)
    t0 = time.monotonic()
    ev = main_stream_evidence(cam, _event_on_sub(sub_frame), CaptureSettings())
    assert time.monotonic() - t0 < 2.0
    assert ev.frame is sub_frame
    assert ev.details["evidence_source"] == "substream"
    with pytest.raises(StillGrabError):
        grab_still(f"http://127.0.0.1:{hanging_server}/main", CaptureSettings(), 0.5)


# -- the box end to end: sub-stream analysed, main-stream photo sent ------------------------


@pytest.fixture
def streams(tmp_path: Path) -> tuple[Path, Path]:
    """A 1280x720 main stream and its 320x180 sub-stream: a red face from frame 5 on."""
    bg_main = kitchen_background(MAIN_W, MAIN_H)
    main = [render(bg_main, [Patch(960, 360, 96, RED)] if i >= 5 else []) for i in range(40)]
    sub = [cv2.resize(f, (SUB_W, SUB_H), interpolation=cv2.INTER_AREA) for f in main]
    return (
        write_video(tmp_path / "main.mp4", main, fps=10),
        write_video(tmp_path / "sub.avi", sub, fps=10),
    )


@pytest.fixture
def worker_on(
    tmp_path: Path, mqtt_url: str, topic_prefix: str, mask_model_path: Path
) -> Iterator[Any]:
    started: list[tuple[EdgeWorker, threading.Thread, Recorder]] = []

    def start(main_url: str, sub_url: str) -> tuple[EdgeWorker, Recorder]:
        cam = Camera(
            id="cam-1",
            url=main_url,
            analyse_fps=5,
            substream=SubStream(url=sub_url, main_size=(MAIN_W, MAIN_H), grab_timeout_s=1.0),
            zones=[
                Zone(
                    id="prep",
                    kind="prep_room",
                    polygon=[(0, 0), (MAIN_W, 0), (MAIN_W, MAIN_H), (0, MAIN_H)],
                )
            ],
            rules={"no_mask": {"window_s": 1, "min_frames": 2}},
        )
        site = Site(
            id="site-s", name="食堂", region="r", edge_boxes=[EdgeBox(id="box-s", cameras=[cam])]
        )
        settings = EdgeSettings(
            data_dir=tmp_path / f"edge-{len(started)}",
            display_port=0,
            metrics_port=0,
            model_path=mask_model_path,
            detect_every_n_frames=1,
            client_id=f"edge-{uuid.uuid4().hex[:8]}",
        )
        factory, version = vision_pipeline_factory(settings)
        rec = Recorder(mqtt_url, f"{topic_prefix}/#", client_id=f"sub-{uuid.uuid4().hex[:8]}")
        worker = EdgeWorker(
            site=site,
            box=site.edge_boxes[0],
            settings=settings,
            common=CommonSettings(mqtt_url=mqtt_url, mqtt_prefix=topic_prefix),
            pipeline_factory=factory,
            model_version=version,
        )
        t = threading.Thread(target=worker.run, daemon=True)
        t.start()
        started.append((worker, t, rec))
        return worker, rec

    yield start
    for worker, t, rec in started:
        worker.stop_event.set()
        t.join(15)
        rec.close()


def _decoded(v: Violation) -> np.ndarray:
    import base64

    assert v.evidence is not None
    assert v.evidence.jpeg_b64
    img = cv2.imdecode(np.frombuffer(base64.b64decode(v.evidence.jpeg_b64), np.uint8), 1)
    assert img is not None
    return img


@pytest.mark.slow
def test_worker_analyses_the_substream_and_sends_the_main_stream_photo(
    worker_on: Any, streams: tuple[Path, Path], topic_prefix: str
) -> None:
    main, sub = streams
    worker, rec = worker_on(str(main), str(sub))
    assert worker.cams["cam-1"].reader.url == str(sub)  # only the sub-stream is read
    vt = violation_topic("site-s", "box-s", topic_prefix)

    def no_mask() -> list[Violation]:
        return [
            v
            for t, p, _ in list(rec.messages)
            if t == vt and (v := decode(Violation, p)).rule == "no_mask"
        ]

    wait_until(lambda: bool(no_mask()), 30, what="no_mask from the sub-stream camera")
    v = no_mask()[0]
    assert v.details["evidence_source"] == "main_stream"
    img = _decoded(v)
    assert img.shape[1] == MAIN_W  # the 1280x720 photo (plus its caption bar)
    assert img.shape[0] > MAIN_H
    box = v.evidence.boxes[0] if v.evidence and v.evidence.boxes else None
    assert box is not None
    assert 890 <= box.x1 <= 925, box  # the face, in main pixels
    assert 995 <= box.x2 <= 1030, box


@pytest.mark.slow
def test_worker_falls_back_to_the_substream_photo_with_a_note(
    worker_on: Any, streams: tuple[Path, Path], topic_prefix: str, tmp_path: Path
) -> None:
    _, sub = streams
    _, rec = worker_on(str(tmp_path / "no-main-stream.mp4"), str(sub))
    vt = violation_topic("site-s", "box-s", topic_prefix)

    def no_mask() -> list[Violation]:
        return [
            v
            for t, p, _ in list(rec.messages)
            if t == vt and (v := decode(Violation, p)).rule == "no_mask"
        ]

    wait_until(lambda: bool(no_mask()), 30, what="no_mask despite a dead main stream")
    v = no_mask()[0]
    assert v.details["evidence_source"] == "substream"
    assert "main stream unavailable" in v.details["evidence_note"]
    assert _decoded(v).shape[1] == SUB_W


# -- the readers' reused frame buffers ------------------------------------------------------


def test_frame_ring_reuses_only_buffers_nobody_holds(tmp_path: Path) -> None:
    frames = [np.full((SUB_H, SUB_W, 3), 10 * i, np.uint8) for i in range(12)]
    video = write_video(tmp_path / "ring.avi", frames, fps=10)
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    ring = FrameRing(2)
    held = []
    try:
        for _ in range(3):  # all held: each frame is a new array, the ring keeps two
            assert cap.grab()
            img = retrieve_into(cap, ring)
            assert img is not None
            held.append(img)
        assert len(ring) == 2
        assert ring.allocated == 3
        assert ring.reused == 0
        assert len({id(a) for a in held}) == 3
        first_value = int(held[0][0, 0, 0])
        view = held[0][10:20]  # a crop still refers to the first buffer
        del held[:]
        gc.collect()
        assert cap.grab()
        img = retrieve_into(cap, ring)
        assert img is not None
        assert ring.reused == 1  # the second buffer (free) was decoded into
        assert int(view[0, 0, 0]) == first_value  # the held one was not touched
        assert not np.shares_memory(img, view)
    finally:
        cap.release()
    assert FrameRing(0).free() is None


def test_reader_frames_stay_intact_while_held(tmp_path: Path) -> None:
    frames = [np.full((SUB_H, SUB_W, 3), 8 * i, np.uint8) for i in range(30)]
    video = write_video(tmp_path / "held.avi", frames, fps=10)
    reader = CameraReader(
        "cam-r",
        str(video),
        analyse_fps=10,
        settings=CaptureSettings(file_pacing="lossless", loop_files=False, frame_buffers=3),
    ).start()
    kept = []  # every third frame is held on to (as a rule keeping its evidence would)
    positions = []
    try:
        while len(positions) < 30:
            f = reader.take(timeout_s=5)
            if f is None:
                break
            positions.append(f.video_pos_s)
            if f.seq % 3 == 0:
                kept.append((f.image, int(f.image[0, 0, 0])))
            del f
    finally:
        reader.stop()
    assert len(positions) == 30
    assert positions[5] == pytest.approx(0.5)
    # frames let go were decoded into again until held frames took the ring's 3 buffers
    assert reader.ring.reused >= 3
    # every held frame still shows what it showed when taken (nothing decoded over it)
    assert [int(img[0, 0, 0]) for img, _ in kept] == [v for _, v in kept]
    assert len({id(img) for img, _ in kept}) == len(kept) == 10


def test_substream_reader_reads_the_substream(tmp_path: Path) -> None:
    cam = Camera(
        id="c",
        url="rtsp://10.0.0.5/101",
        substream=SubStream(url="/x/sub.mp4", main_size=(1280, 720)),
    )
    assert CameraReader.from_camera(cam).url == "/x/sub.mp4"
    assert CameraReader.from_camera(Camera(id="c", url="/x/main.mp4")).url == "/x/main.mp4"
