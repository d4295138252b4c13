"""Motion gate: nothing on a static scene, a box where something moved, lighting ignored."""

from __future__ import annotations

import numpy as np
import pytest

from edge.motion import MotionDetector, MotionSettings, merge_boxes
from tests.edge.support import RED, Patch, kitchen_background, render


def test_static_scene_has_no_motion() -> None:
    bg = kitchen_background(1280, 720)
    gate = MotionDetector()
    assert all(len(gate.detect(bg)) == 0 for _ in range(10))


def test_new_object_is_boxed_in_full_frame_pixels() -> None:
    bg = kitchen_background(1280, 720)
    gate = MotionDetector()
    gate.detect(bg)
    boxes = gate.detect(render(bg, [Patch(900, 300, 80, RED)]))
    assert len(boxes) == 1
    x1, y1, x2, y2 = boxes[0]
    assert x1 <= 860
    assert y1 <= 260
    assert x2 >= 940
    assert y2 >= 340
    assert max(x2 - x1, y2 - y1) < 200


def test_global_lighting_change_is_not_motion() -> None:
    bg = kitchen_background(640, 360)
    gate = MotionDetector(MotionSettings(max_share=0.5))
    gate.detect(bg)
    darker = (bg.astype(np.float32) * 0.5).astype(np.uint8)
    assert len(gate.detect(darker)) == 0
    assert len(gate.detect(darker)) == 0  # the new light level became the background


def test_tiny_changes_are_ignored() -> None:
    bg = kitchen_background(1280, 720)
    gate = MotionDetector(MotionSettings(min_area_frac=0.002))
    gate.detect(bg)
    assert len(gate.detect(render(bg, [Patch(300, 300, 6, RED)]))) == 0


@pytest.mark.parametrize(
    ("boxes", "gap", "expected"),
    [
        ([], 0, []),
        ([[0, 0, 10, 10]], 0, [[0, 0, 10, 10]]),
        ([[0, 0, 10, 10], [20, 0, 30, 10]], 0, [[0, 0, 10, 10], [20, 0, 30, 10]]),
        ([[0, 0, 10, 10], [20, 0, 30, 10]], 10, [[0, 0, 30, 10]]),
        ([[0, 0, 10, 10], [8, 8, 20, 20], [19, 19, 40, 40]], 0, [[0, 0, 40, 40]]),
    ],
)
def test_merge_boxes(boxes: list[list[float]], gap: float, expected: list[list[float]]) -> None:
    out = merge_boxes(np.array(boxes, np.float32).reshape(-1, 4), gap)
    assert sorted(out.tolist()) == sorted(expected)
