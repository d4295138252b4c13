"""Board colour classifier on rendered (synthetic) boards under different lighting; calibration."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.boards import BoardColourModel
from models.boards import BOARD_BGR, calibrate, lighting, load_crops, render_board, write_synthetic
from models.sources import read_voc

LIGHTS = [
    (1.0, (1.0, 1.0, 1.0)),
    (0.6, (1.0, 1.0, 1.0)),
    (1.25, (1.0, 1.0, 1.0)),
    (0.9, (0.85, 1.0, 1.15)),
    (1.0, (1.1, 1.0, 0.9)),
]


@pytest.mark.parametrize("board_type", sorted(BOARD_BGR))
@pytest.mark.parametrize(("gain", "tint"), LIGHTS)
def test_default_ranges_classify_rendered_boards(
    board_type: str, gain: float, tint: tuple[float, float, float]
) -> None:
    rng = np.random.default_rng(1)
    crop = lighting(render_board(board_type, (80, 60), rng), gain, tint)
    found, score = BoardColourModel().classify(crop)
    assert found == board_type
    assert score > 0.5


def test_grey_steel_is_no_board() -> None:
    steel = np.full((40, 40, 3), 170, np.uint8)
    assert BoardColourModel().classify(steel)[0] is None


def test_calibration_learns_a_site_palette_and_generalises_to_new_lighting(tmp_path: Path) -> None:
    # A site whose "cooked" boards are white-ish blue-grey would fail; here: a site with
    # purple allergen boards besides red raw meat (not in the default ranges).
    palette = {"allergen": (160, 40, 130), "raw_meat": (40, 40, 200)}
    rng = np.random.default_rng(2)
    for name, bgr in palette.items():
        BOARD_BGR[name] = bgr
    try:
        for name in palette:
            (tmp_path / name).mkdir()
            for i in range(4):
                tint = (0.9 + 0.05 * i, 1.0, 1.05 - 0.05 * i)  # the site's own lamps
                crop = lighting(render_board(name, (60, 40), rng), 0.8 + 0.1 * i, tint)
                cv2.imwrite(str(tmp_path / name / f"{i}.png"), crop)
        (tmp_path / "raw_meat" / "broken.jpg").write_bytes(b"no")
        config = calibrate(load_crops(tmp_path))
        assert set(config.types) == set(palette)
        model = BoardColourModel(config)
        for name in palette:
            fresh = lighting(render_board(name, (70, 50), rng), 0.75, (0.95, 1.0, 1.0))
            assert model.classify(fresh)[0] == name
        assert len(config.types["raw_meat"]) == 2  # red wraps around hue 0/179
        assert (
            BoardColourModel().classify(
                lighting(render_board("allergen", (70, 50), rng), 1.0, (1, 1, 1))
            )[0]
            != "allergen"
        )
    finally:
        BOARD_BGR.pop("allergen")
        BOARD_BGR["raw_meat"] = (40, 40, 200)


def test_calibration_refuses_grey_crops() -> None:
    with pytest.raises(ValueError, match="grey"):
        calibrate({"cooked": [np.full((10, 10, 3), 128, np.uint8)]})


def test_synthetic_scenes_are_labelled_voc_and_classifiable(tmp_path: Path) -> None:
    paths = list(write_synthetic(tmp_path, 6, seed=3))
    assert len(paths) == 6
    assert "synthetic" in (tmp_path / "SYNTHETIC.txt").read_text().lower()
    res = read_voc(tmp_path, {}, sorted(BOARD_BGR))
    assert not res.issues
    model = BoardColourModel()
    right = total = 0
    for s in res.samples:
        img = cv2.imread(str(s.image))
        for b in s.boxes:
            found, _ = model.classify(img[int(b.y1) : int(b.y2), int(b.x1) : int(b.x2)])
            right += found == b.cls
            total += 1
    assert total == 18
    assert right / total >= 0.9
