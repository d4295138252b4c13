"""The failure-picture tool: counting a photo's errors, choosing photos, drawing, the CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.failures import draw, main, photo_errors, select
from models.sources import Box, Sample
from tests.models.helpers import CLASSES, write_voc


def _sample(path: Path, boxes: list[Box]) -> Sample:
    cv2.imwrite(str(path), np.full((100, 200, 3), 90, np.uint8))
    return Sample(path, 200, 100, tuple(boxes))


def test_counts_match_wrong_class_miss_and_false_alarm(tmp_path: Path) -> None:
    s = _sample(
        tmp_path / "a.jpg",
        [
            Box("with_mask", 10, 10, 30, 30),  # found
            Box("mask_weared_incorrect", 50, 10, 70, 30),  # found as without_mask
            Box("without_mask", 100, 10, 120, 30),  # missed
        ],
    )
    det = np.array([[11, 10, 30, 31], [50, 11, 70, 30], [150, 50, 170, 70]], np.float32)
    cls = np.array([0, 1, 1], np.int64)
    err = photo_errors(s, CLASSES, det, cls, np.array([0.9, 0.8, 0.7], np.float32))
    assert err.counts == {"missed": 1, "false_alarm": 2, "wrong_class": 1}
    assert err.bad_gt == [1, 2]
    assert err.false_dets == [1, 2]
    assert err.confusions == [("mask_weared_incorrect", "without_mask")]
    img = draw(err, CLASSES)
    assert img.shape == (400, 800, 3)  # 200 px enlarged ×4 (whole number, at least 640)
    assert (img[80, 80] == 90).all()  # inside a found face: the photo, untouched
    assert (img[4 * 10 : 4 * 30, 4 * 100] == 255).all()  # the white left edge of the miss
    assert tuple(img[4 * 60, 4 * 150]) == (40, 40, 230)  # the false alarm's red edge, 2 px
    assert tuple(img[4 * 60, 4 * 150 + 1]) == (40, 40, 230)


def test_one_detection_cannot_match_two_faces(tmp_path: Path) -> None:
    s = _sample(tmp_path / "b.jpg", [Box("with_mask", 10, 10, 30, 30)] * 2)
    err = photo_errors(
        s, CLASSES, np.array([[10, 10, 30, 30]], np.float32), np.array([0]), np.ones(1, np.float32)
    )
    assert err.counts == {"missed": 0, "false_alarm": 0, "wrong_class": 1}


def test_difficult_faces_are_neither_missed_nor_false_alarms(tmp_path: Path) -> None:
    s = _sample(
        tmp_path / "d.jpg",
        [
            Box("without_mask", 10, 10, 30, 30, difficult=True),  # found: no false alarm
            Box("with_mask", 50, 10, 70, 30, difficult=True),  # not found: no miss
            Box("with_mask", 100, 10, 120, 30),  # required and missed
        ],
    )
    det = np.array([[10, 10, 30, 30], [150, 50, 170, 70]], np.float32)
    err = photo_errors(s, CLASSES, det, np.array([1, 1]), np.array([0.9, 0.8], np.float32))
    assert err.counts == {"missed": 1, "false_alarm": 1, "wrong_class": 0}
    assert err.false_dets == [1]
    img = draw(err, CLASSES)
    assert (img[4 * 10 : 4 * 30, 4 * 100] == 255).all()  # the required miss is outlined
    assert not (img[4 * 10 : 4 * 30, 4 * 50] == 255).all()  # the difficult one is not


def test_select_ranks_by_count_then_name_and_skips(tmp_path: Path) -> None:
    errs = []
    for name, misses in (("c.jpg", 2), ("a.jpg", 2), ("b.jpg", 5), ("d.jpg", 0)):
        s = _sample(tmp_path / name, [Box("with_mask", 10, 10, 30, 30)] * misses)
        errs.append(
            photo_errors(
                s,
                CLASSES,
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, np.float32),
            )
        )
    assert [e.sample.image.name for e in select(errs, "missed", 5)] == ["b.jpg", "a.jpg", "c.jpg"]
    skip = frozenset({tmp_path / "b.jpg"})
    assert [e.sample.image.name for e in select(errs, "missed", 1, skip)] == ["a.jpg"]
    assert select(errs, "false_alarm", 3) == []


def test_cli_draws_each_kind_once_with_the_edge_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_voc(tmp_path / "voc", 6, seed=2)
    weights = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"
    assert (
        main(
            [
                "--data",
                str(tmp_path / "voc"),
                "--weights",
                str(weights),
                "--out",
                str(tmp_path / "card"),
                "--count",
                "2",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    written = sorted(p.name for p in (tmp_path / "card").glob("*.jpg"))
    assert len(lines) == len(written) > 0
    shown = [line.split(": ")[1].split(" ")[0] for line in lines]
    assert len(shown) == len(set(shown))  # a photo illustrates one kind only
    for p in (tmp_path / "card").glob("*.jpg"):
        assert cv2.imread(str(p)) is not None
