"""Camera input and configuration: secrets in camera URLs masked everywhere, the site file names
bad cameras (duplicate ids, no URL, a sub-stream that is the main stream, zones), zones of a camera
that changes resolution, a missing video file, the shipped systemd unit."""

from __future__ import annotations

import logging
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bkcommon.errors import ConfigError
from bkcommon.sitefile import Camera, Zone, parse_site_file
from bkcommon.urls import mask_url
from edge.capture import CameraReader, CaptureSettings
from edge.cli import _safe_url
from tests.edge.support import RED, Patch, kitchen_background, render
from tests.support.services import REPO, free_port, wait_until

SECRETS = [
    ("rtsp://admin:Pa@ss2024@127.0.0.1:{port}/Streaming/Channels/101", ["Pa@ss2024", "ss2024"]),
    ("http://127.0.0.1:{port}/cgi-bin/video.cgi?channel=1&user=admin&password=Secr3t", ["Secr3t"]),
    ("rtsp://127.0.0.1:{port}/live?token=t0k3n", ["t0k3n"]),
]


@pytest.mark.parametrize(("url", "secrets"), SECRETS)
def test_camera_urls_are_masked_in_logs_health_and_validate_output(
    url: str, secrets: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The reader's 'cannot open' log and its health error (sent in camera_offline events
    over MQTT) and --validate-config's listing carry no part of the password."""
    url = url.format(port=free_port())
    settings = CaptureSettings(open_timeout_s=0.5, read_timeout_s=0.5, backoff_initial_s=5)
    caplog.set_level(logging.WARNING, logger="edge.capture")
    reader = CameraReader("cam", url, 5.0, settings).start()
    try:
        wait_until(lambda: reader.health().error is not None, timeout=5, what="open fails")
    finally:
        reader.stop(timeout_s=1.0)
    shown = [reader.health().error or "", caplog.text, _safe_url(url), mask_url(url)]
    for text in shown:
        assert "127.0.0.1" in text or text == caplog.text
        for secret in secrets:
            assert secret not in text, text


def _site(*boxes: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "regions": [{"id": "r1", "name": "R"}],
        "sites": [{"id": "s1", "name": "食堂", "region": "r1", "edge_boxes": list(boxes)}],
    }


def _cam(cid: str, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "url": f"rtsp://10.0.0.5/{cid}", **extra}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _site({"id": "b1", "cameras": [_cam("cam-1"), _cam("cam-1")]}),
            "sites.0.edge_boxes.0.cameras.1.id: duplicate camera id 'cam-1'",
        ),
        (
            _site(
                {"id": "b1", "cameras": [_cam("cam-1")]}, {"id": "b2", "cameras": [_cam("cam-1")]}
            ),
            "duplicate camera id 'cam-1' (also in edge box 'b1')",
        ),
        (
            _site({"id": "b1", "cameras": []}, {"id": "b1", "cameras": []}),
            "sites.0.edge_boxes.1.id: duplicate edge box id 'b1'",
        ),
        (_site({"id": "b1", "cameras": [_cam("cam-1", url="")]}), "camera 'cam-1' has no URL"),
        (_site({"id": "b1", "cameras": [_cam("cam-1", url="  ")]}), "camera 'cam-1' has no URL"),
        (
            _site(
                {
                    "id": "b1",
                    "cameras": [
                        _cam(
                            "cam-1",
                            substream={"url": "rtsp://10.0.0.5/cam-1", "main_size": [1920, 1080]},
                        )
                    ],
                }
            ),
            "substream.url: camera 'cam-1': the sub-stream is the main stream",
        ),
        (
            _site(
                {
                    "id": "b1",
                    "cameras": [
                        _cam(
                            "cam-1",
                            zones=[
                                {
                                    "id": "z",
                                    "kind": "prep_room",
                                    "polygon": [[0, 0], [9, 0], [9, 9]],
                                },
                                {"id": "z", "kind": "dish_up", "polygon": [[0, 0], [8, 0], [8, 8]]},
                            ],
                        )
                    ],
                }
            ),
            "zones.1.id: duplicate zone id 'z' in camera 'cam-1'",
        ),
    ],
)
def test_bad_cameras_in_the_site_file_are_named(data: dict[str, Any], message: str) -> None:
    """A second camera with the same id silently replaced the first in the worker (its
    zones unwatched) and in the registry (ON CONFLICT DO UPDATE); an empty URL, a sub-stream
    equal to the main stream and a duplicate zone id passed --validate-config."""
    with pytest.raises(ConfigError) as err:
        parse_site_file(data)
    assert message in str(err.value)


def test_validate_config_names_a_missing_video_file(tmp_path: Path) -> None:
    from edge.cli import _check_video_files

    cams = [Camera(id="cam-9", url=str(tmp_path / "gone.mp4"))]
    with pytest.raises(ConfigError, match="camera 'cam-9': url: video file not found"):
        _check_video_files(cams)
    (tmp_path / "gone.mp4").write_bytes(b"x")
    _check_video_files(cams)


class _NoDetector:
    class_names = ("with_mask", "without_mask", "mask_weared_incorrect")
    input_size = (320, 320)
    model_version = "none"

    def detect(self, images: list[Any]) -> list[Any]:
        from edge.detect.base import Detections

        return [Detections.empty() for _ in images]


def test_a_camera_that_changes_resolution_keeps_its_zones_on_the_scene(
    mask_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera without a sub-stream switches from 640x360 to 320x180 (an NVR profile change):
    the prep-room zone on the right half stayed at x 320..640, beyond the new frame, and the
    unmasked cook in it raised nothing, without a word in the log."""
    from edge.detect.onnx import OnnxDetector
    from edge.pipeline import CameraPipeline, VisionSettings
    from edge.worker import SharedDetector

    camera = Camera(
        id="cam-1",
        url="rtsp://10.0.0.5/101",
        zones=[
            Zone(id="prep", kind="prep_room", polygon=[(320, 0), (640, 0), (640, 360), (320, 360)])
        ],
        rules={"no_mask": {"window_s": 1, "min_frames": 2}},
    )
    pipe = CameraPipeline(
        camera,
        SharedDetector(OnnxDetector(mask_model_path)),
        VisionSettings(detect_every_n_frames=1),
    )
    big, small = kitchen_background(640, 360), kitchen_background(320, 180)
    t0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC).timestamp()
    events = []
    caplog.set_level(logging.WARNING, logger="edge.pipeline")
    for i in range(32):
        frame = (
            big if i < 2 else render(small, [Patch(240 + (i % 3), 90, 24, RED)] if i >= 4 else [])
        )
        events += pipe.process(frame, datetime.fromtimestamp(t0 + i * 0.2, tz=UTC))
    assert "resolution changed from 640x360 to 320x180" in caplog.text
    nm = [e for e in events if e.rule == "no_mask"]
    assert nm, pipe.stats
    assert nm[0].zone_id == "prep"


def test_a_zone_outside_the_frame_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    from edge.pipeline import CameraPipeline

    camera = Camera(
        id="cam-2",
        url="rtsp://10.0.0.5/101",
        zones=[Zone(id="far", kind="prep_room", polygon=[(0, 0), (1920, 0), (1920, 1080)])],
    )
    pipe = CameraPipeline(camera, _NoDetector(), rules=[])
    caplog.set_level(logging.ERROR, logger="edge.pipeline")
    pipe.process(kitchen_background(640, 360), datetime.now(tz=UTC))
    assert (
        "camera cam-2: zone far (0,0)-(1920,1080) lies outside the camera's 640x360" in caplog.text
    )


def test_shipped_edge_unit_does_not_run_as_root_with_world_readable_evidence() -> None:
    """deploy/systemd/brightkitchen-edge.service ran the worker as root, with the state
    directory (the outbox: evidence photos of staff) 0755 and files 0644."""
    text = (REPO / "deploy/systemd/brightkitchen-edge.service").read_text()
    lines = text.splitlines()
    assert any(line.startswith("User=") and line != "User=root" for line in lines)
    assert "StateDirectoryMode=0750" in lines
    assert "UMask=0027" in lines
    assert "EnvironmentFile=-/etc/brightkitchen/device.env" in lines
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "brightkitchen-edge.service"],
        cwd=REPO / "deploy/systemd", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Service runs as root user" not in done.stdout
