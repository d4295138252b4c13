"""Replay: video files → CameraReader → CameraPipeline with a real ONNX model → rules → events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from bkcommon.sitefile import Camera, Zone
from edge.capture import CameraReader, CaptureSettings
from edge.detect.base import Detections
from edge.detect.onnx import OnnxDetector
from edge.events import ViolationEvent
from edge.pipeline import CameraPipeline, VisionSettings
from tests.edge.support import GREEN, RED, YELLOW, Patch, kitchen_background, render, write_video

W, H, FPS = 640, 360, 10.0
PREP = Zone(id="prep", kind="prep_room", polygon=[(0, 0), (320, 0), (320, 360), (0, 360)])
RAW = Zone(id="raw", kind="raw_area", polygon=[(320, 0), (640, 0), (640, 360), (320, 360)])


class CountingDetector:
    """The real ONNX detector, counting calls (to prove the motion gate skips work)."""

    def __init__(self, inner: OnnxDetector) -> None:
        self.inner = inner
        self.calls = 0
        self.crop_shapes: list[tuple[int, ...]] = []

    @property
    def class_names(self) -> list[str]:
        return self.inner.class_names

    @property
    def input_size(self) -> tuple[int, int]:
        return self.inner.input_size

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        self.calls += 1
        self.crop_shapes += [i.shape for i in images]
        return self.inner.detect(images)


def face_video(
    path: Path,
    seconds: float,
    colour_at: Callable[[int], tuple[int, int, int] | None],
    where: tuple[int, int] = (160, 180),
) -> Path:
    """A kitchen; from frame 10 (1 s) a worker whose face colour the script picks per frame."""
    bg = kitchen_background(W, H)
    frames = []
    for i in range(round(seconds * FPS)):
        colour = colour_at(i) if i >= 10 else None
        if colour is None:
            frames.append(bg)
            continue
        img = bg.copy()  # a worker in a white coat, the face (16 px) above the shoulders
        x, y = where
        cv2.rectangle(img, (x - 18, y + 10), (x + 18, y + 70), (235, 235, 235), -1)
        frames.append(render(img, [Patch(x, y, 16, colour)]))
    return write_video(path, frames, FPS)


def replay(
    video: Path, cam: Camera, model: Path, settings: VisionSettings | None = None
) -> tuple[list[ViolationEvent], CameraPipeline, CountingDetector]:
    detector = CountingDetector(OnnxDetector(model, threads=1))
    pipe = CameraPipeline(cam, detector, settings)
    reader = CameraReader.from_camera(
        cam, CaptureSettings(file_pacing="lossless", loop_files=False)
    ).start()
    events: list[ViolationEvent] = []
    try:
        while (frame := reader.take(timeout_s=5.0)) is not None:
            events += pipe.process(frame.image, frame.ts)
    finally:
        reader.stop()
    return events, pipe, detector


def camera(video: Path, zones: list[Zone], rules: dict[str, object] | None = None) -> Camera:
    return Camera(id="cam-prep", url=str(video), analyse_fps=5.0, zones=zones, rules=rules or {})


def test_face_without_mask_in_prep_room_raises_exactly_one_violation(
    tmp_path: Path, mask_model_path: Path
) -> None:
    video = face_video(tmp_path / "nomask.avi", 6.0, lambda i: RED)
    events, pipe, det = replay(video, camera(video, [PREP, RAW]), mask_model_path)
    assert len(events) == 1
    e = events[0]
    assert e.rule == "no_mask"
    assert e.camera_id == "cam-prep"
    assert e.zone_id == "prep"
    assert e.track_id is not None
    assert e.model_version == "test-colour-1"
    assert e.frame.shape == (H, W, 3)
    box = e.boxes[0]
    assert box.label == "without_mask"
    assert abs((box.x1 + box.x2) / 2 - 160) < 4
    assert abs((box.y1 + box.y2) / 2 - 180) < 4
    assert e.zone_polygon == [(0, 0), (320, 0), (320, 360), (0, 360)]
    # the face is small: it was seen through a crop, never the whole frame shrunk
    assert all(s[:2] != (H, W) for s in det.crop_shapes)
    stats = pipe.stats
    assert stats.frames_analysed == 30
    assert stats.frames_motion_skipped >= 5  # the empty first second costs no inference
    assert stats.detector_calls == det.calls
    assert stats.inference_ms_avg > 0


def test_face_with_mask_raises_nothing(tmp_path: Path, mask_model_path: Path) -> None:
    video = face_video(tmp_path / "mask.mp4", 6.0, lambda i: GREEN)
    events, pipe, det = replay(video, camera(video, [PREP, RAW]), mask_model_path)
    assert events == []
    # the face was looked at (every n-th analysed frame: 25 frames with something to see)
    looks = -(-25 // VisionSettings().detect_every_n_frames)
    assert det.calls >= looks
    assert pipe.stats.detections >= looks


def test_face_without_mask_in_raw_area_raises_nothing(
    tmp_path: Path, mask_model_path: Path
) -> None:
    video = face_video(tmp_path / "raw.avi", 6.0, lambda i: RED, where=(480, 180))
    events, _, det = replay(video, camera(video, [PREP, RAW]), mask_model_path)
    assert events == []
    assert det.calls >= 8


def test_flicker_below_share_raises_nothing(tmp_path: Path, mask_model_path: Path) -> None:
    # analysed frames are every other video frame: alternate per analysed frame (50% bad)
    video = face_video(tmp_path / "flicker.avi", 6.0, lambda i: RED if (i // 2) % 2 else GREEN)
    events, _, _ = replay(video, camera(video, [PREP]), mask_model_path)
    assert events == []


def test_cooldown_is_respected(tmp_path: Path, mask_model_path: Path) -> None:
    video = face_video(tmp_path / "long.avi", 10.0, lambda i: RED)
    events, _, _ = replay(
        video, camera(video, [PREP], {"no_mask": {"cooldown_s": 4}}), mask_model_path
    )
    assert len(events) == 2
    assert len({e.track_id for e in events}) == 1
    gap = events[1].started_at - events[0].started_at
    assert 4.0 <= gap.total_seconds() <= 5.0


def test_static_scene_never_calls_the_detector(tmp_path: Path, mask_model_path: Path) -> None:
    bg = kitchen_background(W, H)
    video = write_video(tmp_path / "static.avi", [bg] * 40, FPS)
    events, pipe, det = replay(video, camera(video, [PREP]), mask_model_path)
    assert events == []
    assert det.calls == 0
    assert pipe.stats.frames_analysed == 20
    assert pipe.stats.frames_motion_skipped == 20


def test_red_board_at_cooked_station_in_video(tmp_path: Path, mask_model_path: Path) -> None:
    bg = kitchen_background(W, H)
    frames = []
    for i in range(50):
        img = bg.copy()
        colour = RED if i >= 10 else YELLOW
        cv2.rectangle(img, (60, 220), (200, 320), colour, -1)
        frames.append(img)
    video = write_video(tmp_path / "board.avi", frames, FPS)
    st = Zone(
        id="st1",
        kind="board_station",
        polygon=[(40, 200), (220, 200), (220, 340), (40, 340)],
        board_type="cooked",
    )
    cooked = Zone(id="cooked", kind="cooked_area", polygon=[(0, 0), (320, 0), (320, 360), (0, 360)])
    events, _, _ = replay(video, camera(video, [cooked, st]), mask_model_path)
    assert [(e.rule, e.zone_id, e.details["board_type"]) for e in events] == [
        ("mixed_cutting_board", "st1", "raw_meat")
    ]


def test_two_workers_far_apart_are_tracked_separately(
    tmp_path: Path, mask_model_path: Path
) -> None:
    bg = kitchen_background(1280, 720)
    faces = [Patch(200, 200, 24, RED), Patch(1000, 500, 24, RED)]
    frames = [bg] * 10 + [render(bg, faces)] * 40
    video = write_video(tmp_path / "two.avi", frames, FPS)
    whole = Zone(id="prep", kind="prep_room", polygon=[(0, 0), (1280, 0), (1280, 720), (0, 720)])
    events, _, det = replay(video, camera(video, [whole]), mask_model_path)
    assert len(events) == 2
    assert len({e.track_id for e in events}) == 2
    centres = sorted(round((e.boxes[0].x1 + e.boxes[0].x2) / 2) for e in events)
    assert centres == [200, 1000]
    assert max(s[1] for s in det.crop_shapes) < 1280  # two crops, not the shrunk frame


@pytest.mark.parametrize(("every", "calls", "stride_skipped"), [(1, 25, 0), (3, 9, 16), (4, 7, 18)])
def test_detector_stride_keeps_the_violation(
    tmp_path: Path, mask_model_path: Path, every: int, calls: int, stride_skipped: int
) -> None:
    video = face_video(tmp_path / "stride.avi", 6.0, lambda i: RED)
    settings = VisionSettings(detect_every_n_frames=every)
    events, pipe, det = replay(video, camera(video, [PREP]), mask_model_path, settings)
    assert [e.rule for e in events] == ["no_mask"]  # the tracker carries the face between looks
    assert det.calls == calls
    assert pipe.stats.frames_stride_skipped == stride_skipped
    assert pipe.stats.frames_motion_skipped == 5
    assert events[0].details["frames"] >= 3  # the window counts only the frames the model saw


def test_small_face_crops_are_zoomed(tmp_path: Path, mask_model_path: Path) -> None:
    video = face_video(tmp_path / "zoom.avi", 3.0, lambda i: RED)
    _, _, det = replay(video, camera(video, [PREP]), mask_model_path, VisionSettings(crop_zoom=2))
    # the 320 px model sees crops of about 160 px: a 16 px face fills twice as many pixels
    assert det.crop_shapes
    assert max(max(s[:2]) for s in det.crop_shapes) <= 200
