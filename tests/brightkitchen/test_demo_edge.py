"""The demo's edge box: rendered kitchen video → edge run → violation → ticket (real processes)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import psycopg
import pytest

from bkcommon.sitefile import parse_site_file
from brightkitchen.demo import demo_box_ids, with_edge_box
from brightkitchen.demo_model import write_placeholder_model
from brightkitchen.demo_video import (
    COOKED_STATION,
    RAW_STATION,
    SceneSpec,
    demo_zones,
    ensure_demo_video,
)
from brightkitchen.simulate.fleet import generate_site_file
from edge.boards import BoardColourModel
from edge.detect.onnx import OnnxDetector
from tests.brightkitchen.demo_support import count, running_demo
from tests.support.services import wait_until


def _frame_at(path: Path, t_s: float, fps: float) -> npt.NDArray[np.uint8]:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, round(t_s * fps))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return np.asarray(frame, np.uint8)


def test_video_is_cached_and_shows_the_red_board_on_the_cooked_station_on_schedule(
    tmp_path: Path,
) -> None:
    spec = SceneSpec(width=640, height=360, loop_s=4.0, violation_from_s=1.0, violation_to_s=3.0)
    path = ensure_demo_video(tmp_path, spec)
    mtime = path.stat().st_mtime_ns
    assert ensure_demo_video(tmp_path, spec) == path
    assert path.stat().st_mtime_ns == mtime  # cached, not rendered again
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 100
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)
    cap.release()
    colours = BoardColourModel()

    def boards(t: float) -> tuple[str | None, str | None]:
        frame = _frame_at(path, t, spec.fps)
        out = []
        for box in (COOKED_STATION, RAW_STATION):
            x1, y1, x2, y2 = (v // 2 for v in box)
            out.append(colours.classify(frame[y1:y2, x1:x2])[0])
        return out[0], out[1]

    assert boards(0.4) == ("cooked", "raw_meat")
    assert boards(2.0) == ("raw_meat", None)  # the raw board sits on the cooked station
    assert boards(3.6) == ("cooked", "raw_meat")
    # The zones scale with the frame and sit where the boards are drawn.
    station = next(z for z in demo_zones(spec) if z["id"] == "cooked-board")
    polygon = station["polygon"]
    assert isinstance(polygon, list)
    assert polygon[0] == (COOKED_STATION[0] / 2, COOKED_STATION[1] / 2)


def test_placeholder_model_loads_and_detects_nothing(tmp_path: Path) -> None:
    det = OnnxDetector(write_placeholder_model(tmp_path / "p.onnx"))
    assert det.class_names == ["with_mask", "without_mask", "mask_weared_incorrect"]
    frame = _frame_at(
        ensure_demo_video(tmp_path, SceneSpec(width=320, height=180, loop_s=1)), 0, 25
    )
    assert [len(d) for d in det.detect([frame, frame])] == [0, 0]


def test_demo_site_file_gets_one_box_with_stations(tmp_path: Path) -> None:
    sf = with_edge_box(generate_site_file(2, 1, site_prefix="demo"), tmp_path / "v.mp4")
    site_id, box_id = demo_box_ids(sf)
    box = sf.sites[0].edge_boxes[0]
    assert (site_id, box.id) == (sf.sites[0].id, box_id)
    assert box.cameras[0].url == str((tmp_path / "v.mp4").resolve())
    kinds = {(z.kind, z.board_type) for z in box.cameras[0].zones}
    assert ("board_station", "cooked") in kinds
    assert ("board_station", "raw_meat") in kinds
    assert not sf.sites[1].edge_boxes
    parse_site_file(sf.model_dump(mode="json"), "<roundtrip>")


@pytest.mark.slow
def test_demo_edge_box_turns_the_raw_board_on_the_cooked_station_into_a_ticket(
    db_url: str, tmp_path: Path
) -> None:
    with running_demo(db_url, tmp_path, "--sites", "1", "--duration", "100") as run:
        assert "kitchen display: http://127.0.0.1:" in run.text()
        assert "SYNTHETIC" in run.text()
        wait_until(
            lambda: (
                count(db_url, "SELECT count(*) FROM violations WHERE rule = 'mixed_cutting_board'")
                > 0
            ),
            45,
            what="a mixed_cutting_board violation stored",
        )
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT camera_id, zone FROM violations WHERE rule = 'mixed_cutting_board'"
            ).fetchone()
        assert row is not None
        assert row[1] == "cooked-board", row
        wait_until(
            lambda: (
                count(db_url, "SELECT count(*) FROM tickets WHERE rule = 'mixed_cutting_board'")
                == 1
            ),
            20,
            what="a ticket for the violation",
        )
    assert run.proc.returncode == 0, run.text()
    logs = (run.data_dir / "logs" / "edge.log").read_text()
    assert "stopped" in logs, logs[-2000:]
