"""Metric arithmetic of evaluate: AP, matching, confusion matrix on hand-made cases."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from models.evaluate import ap_per_class, confusion, match_tp
from tests.models.helpers import write_voc

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
GT_CLS = np.array([0, 1])


def test_perfect_detections_give_ap_one() -> None:
    conf = np.array([0.9, 0.8], np.float32)
    tp = match_tp(GT, GT_CLS, conf, GT, GT_CLS)
    assert tp.all()
    ap = ap_per_class(tp, conf, GT_CLS, [1, 1])
    assert ap == pytest.approx(np.ones((2, 10)), abs=0.006)  # 101-point trapezoid: 0.995


def test_wrong_class_duplicate_and_miss() -> None:
    det = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    cls = np.array([0, 0, 0])
    conf = np.array([0.9, 0.8, 0.7], np.float32)
    tp = match_tp(det, cls, conf, GT, GT_CLS)
    assert tp[:, 0].tolist() == [True, False, False]
    ap = ap_per_class(tp, conf, cls, [1, 1])
    assert ap[0, 0] == pytest.approx(1.0, abs=0.006)
    assert ap[1, 0] == 0.0
    cm = confusion(det, cls, GT, GT_CLS, nc=2)
    # rows predicted (0, 1, background), columns true (0, 1, background)
    assert cm.tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 0]]


def test_loose_box_counts_at_05_not_at_095() -> None:
    det = np.array([[0, 0, 10, 12]], np.float32)  # IoU 0.833 with GT[0]
    tp = match_tp(det, np.array([0]), np.array([0.9], np.float32), GT[:1], GT_CLS[:1])
    assert tp[0, 0]
    assert not tp[0, -1]


def test_long_evaluation_reports_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import models.evaluate

    write_voc(tmp_path / "voc", 3, seed=4)
    monkeypatch.setattr(models.evaluate, "PROGRESS_EVERY_S", 0.0)
    weights = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"
    with caplog.at_level(logging.INFO, logger="models.evaluate"):
        report, issues = models.evaluate.evaluate(tmp_path / "voc", weights, threads=1)
    assert report.images == 3
    assert issues == []
    assert "evaluated 2 of 3 photos" in caplog.text


def test_difficult_faces_are_neither_required_nor_false_alarms() -> None:
    """VOC protocol: a detection on a ``difficult`` face is left out of the curve."""
    from models.evaluate import ignored_detections

    det = np.array([[0, 0, 10, 10], [40, 40, 50, 50], [80, 80, 90, 90]], np.float32)
    cls = np.array([0, 0, 0])
    conf = np.array([0.9, 0.8, 0.7], np.float32)
    easy, easy_cls = GT[:1], GT_CLS[:1]
    hard, hard_cls = np.array([[40, 40, 50, 51]], np.float32), np.array([0])
    tp = match_tp(det, cls, conf, easy, easy_cls)
    ign = ignored_detections(det, cls, tp, hard, hard_cls)
    assert tp[:, 0].tolist() == [True, False, False]
    assert ign[:, 0].tolist() == [False, True, False]  # found the difficult face
    assert not ign[1, -1]  # IoU 0.91 < 0.95: at 0.95 it is a false alarm like any other
    # one required face, one true and one false detection: with the difficult one ignored
    # the curve is (1.0 precision up to recall 1), without the flag it would include it as FP
    ap = ap_per_class(tp, conf, cls, [1], ign)
    assert ap[0, 0] == pytest.approx(1.0, abs=0.006)
    no_flag = ap_per_class(tp, conf, cls, [1])
    assert no_flag[0, 0] == pytest.approx(ap[0, 0])  # the FP comes after full recall
    late = np.array([0.8, 0.9, 0.5], np.float32)  # the difficult hit now ranks first
    assert ap_per_class(tp, late, cls, [1], ign)[0, 0] == pytest.approx(1.0, abs=0.006)
    assert ap_per_class(tp, late, cls, [1])[0, 0] < 0.6


def test_evaluate_leaves_difficult_boxes_out_of_the_counts(tmp_path: Path) -> None:
    import models.evaluate

    folder = write_voc(tmp_path / "voc", 2, seed=4)
    first = folder / "annotations" / "img000.xml"
    first.write_text(first.read_text().replace("<bndbox>", "<difficult>1</difficult><bndbox>", 1))
    weights = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"
    report, issues = models.evaluate.evaluate(folder, weights, threads=1)
    assert issues == []
    assert report.difficult == 1
    assert sum(c.instances for c in report.classes) == 3  # 4 boxes, one difficult
    assert "1 boxes marked difficult ignored" in models.evaluate.format_report(report)


def test_ap_does_not_depend_on_the_order_of_equal_scores() -> None:
    """An INT8 model gives many equal confidences; read in another order (file names, a COCO
    file's image list) they gave another AP. Equal scores are one threshold."""
    import numpy as np

    from models.evaluate import ap_per_class

    conf = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.2], np.float32)
    tp = np.array([[True], [True], [False], [True], [False], [True]])
    cls = np.zeros(6, np.int64)
    a = ap_per_class(tp, conf, cls, [5])
    flipped = np.array([0, 2, 4, 1, 3, 5])  # the tied four in another order
    b = ap_per_class(tp[flipped], conf[flipped], cls, [5])
    assert a[0, 0] == b[0, 0]
