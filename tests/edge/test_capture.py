"""Capture: files (lossless and paced), bad URLs that refuse or hang, and camera health."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import CameraReader, CaptureSettings, HealthProblem, open_capture, source_kind
from tests.edge.support import GREEN, Patch, kitchen_background, render, write_video
from tests.support.services import free_port, wait_until


def moving_video(path: Path, seconds: float = 2.0, fps: float = 10.0) -> Path:
    """A textured scene with a square moving across it."""
    bg = kitchen_background(320, 180)
    n = int(seconds * fps)
    return write_video(
        path, [render(bg, [Patch(40 + 8 * i, 90, 30, GREEN)]) for i in range(n)], fps
    )


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("0", "device"),
        ("rtsp://u:p@cam/1", "stream"),
        ("http://x/y.mjpg", "stream"),
        ("/v/a.mp4", "file"),
        ("file:///v/a.mp4", "file"),
        ("rtmp://live/x", "stream"),
    ],
)
def test_source_kind(url: str, kind: str) -> None:
    assert source_kind(url) == kind


def test_one_decoder_thread_per_camera_by_default(tmp_path: Path) -> None:
    video = moving_video(tmp_path / "threads.avi", seconds=0.5)
    cap = open_capture(str(video), CaptureSettings())
    try:
        assert cap.isOpened()
        assert cap.grab()
        assert cap.get(cv2.CAP_PROP_N_THREADS) == 1.0
    finally:
        cap.release()


def test_lossless_file_samples_at_analyse_rate_with_video_time(tmp_path: Path) -> None:
    video = moving_video(tmp_path / "a.avi", seconds=2.0, fps=10.0)
    settings = CaptureSettings(file_pacing="lossless", loop_files=False)
    reader = CameraReader("cam1", str(video), analyse_fps=5.0, settings=settings).start()
    frames = []
    try:
        while (f := reader.take(timeout_s=3.0)) is not None:
            frames.append(f)
    finally:
        reader.stop()
    assert len(frames) == 10
    gaps = {round((b.ts - a.ts).total_seconds(), 3) for a, b in itertools.pairwise(frames)}
    assert gaps == {0.2}
    assert frames[0].image.shape == (180, 320, 3)
    assert [f.seq for f in frames] == list(range(1, 11))
    assert reader.health().frames_skipped == 0


def test_paced_file_loops_and_counts_skipped_frames(tmp_path: Path) -> None:
    video = moving_video(tmp_path / "b.mp4", seconds=0.5, fps=20.0)
    reader = CameraReader("cam1", str(video), analyse_fps=10.0).start()
    try:
        # Nobody takes frames: every newer sampled frame overwrites the slot and is counted.
        wait_until(lambda: reader.health().frames_sampled >= 12, timeout=5, what="sampled frames")
        h = reader.health()
    finally:
        reader.stop()
    assert h.online
    assert h.problem is None
    assert h.frames_read > 10  # 0.5 s file looped
    assert h.frames_skipped == h.frames_sampled - 1
    assert 5 <= h.fps <= 15  # paced near 10 fps, not as fast as decoding allows
    assert h.skipped_fps > 0


def test_refusing_and_hanging_urls_go_offline_while_file_camera_runs(
    tmp_path: Path, hanging_server: int
) -> None:
    settings = CaptureSettings(open_timeout_s=1.0, read_timeout_s=1.0, offline_after_s=2.0)
    good = CameraReader("good", str(moving_video(tmp_path / "g.avi")), 5.0, settings).start()
    refused = CameraReader("refused", f"rtsp://127.0.0.1:{free_port()}/x", 5.0, settings).start()
    hung = CameraReader("hung", f"rtsp://127.0.0.1:{hanging_server}/x", 5.0, settings).start()
    try:
        wait_until(lambda: not refused.health().online, timeout=3, what="refused offline")
        wait_until(lambda: not hung.health().online, timeout=4, what="hung offline")
        assert refused.health().problem is HealthProblem.OFFLINE
        assert hung.health().problem is HealthProblem.OFFLINE
        seen = 0
        for _ in range(5):
            if good.take(timeout_s=1.0) is not None:
                seen += 1
        assert seen >= 4
        assert good.health().online
    finally:
        for r in (good, refused, hung):
            r.stop(timeout_s=0.1)
    assert refused.health().error is not None


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: np.zeros((180, 320, 3), np.uint8), HealthProblem.COVERED),
        (lambda: cv2.GaussianBlur(kitchen_background(320, 180), (0, 0), 9), HealthProblem.BLURRED),
        (lambda: kitchen_background(320, 180), HealthProblem.FROZEN),
    ],
)
def test_image_health_problems(tmp_path: Path, make: object, problem: HealthProblem) -> None:
    image = make()  # type: ignore[operator]
    video = write_video(tmp_path / "h.avi", [image] * 10, fps=10)
    settings = CaptureSettings(problem_after_s=0.5, frozen_after_s=0.8, health_every_s=0.1)
    reader = CameraReader("cam", str(video), 5.0, settings).start()
    try:
        wait_until(lambda: reader.health().problem is problem, timeout=5, what=problem)
        assert reader.health().online
        assert reader.health().problem_since is not None
    finally:
        reader.stop()


def test_healthy_moving_scene_has_no_problem(tmp_path: Path) -> None:
    settings = CaptureSettings(problem_after_s=0.3, frozen_after_s=0.3, health_every_s=0.1)
    reader = CameraReader("cam", str(moving_video(tmp_path / "m.avi")), 5.0, settings).start()
    try:
        wait_until(lambda: reader.health().frames_sampled >= 6, timeout=5)
        assert reader.health().problem is None
    finally:
        reader.stop()
