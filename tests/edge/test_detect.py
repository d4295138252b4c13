"""Detector contract and the ONNX backend on a real (tiny) ONNX model."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import onnx
import pytest

from bkcommon.errors import ModelError
from edge.detect.base import Detections, Detector, nms
from edge.detect.crop_classifier import CropClassifier
from edge.detect.onnx import OnnxDetector, decode_output, letterbox, parse_names
from tests.edge.classifier_support import build_tiny_classifier
from tests.edge.support import (
    GREEN,
    MASK_CLASSES,
    RED,
    Patch,
    build_colour_model,
    kitchen_background,
    render,
)

DoesNotRaise = nullcontext


@pytest.mark.parametrize(
    ("xyxy", "conf", "cls", "tid", "expectation"),
    [
        (np.zeros((0, 4)), np.zeros(0), np.zeros(0), None, DoesNotRaise()),
        ([], [], [], None, DoesNotRaise()),
        ([[0, 0, 1, 1]], [0.5], [0], [3], DoesNotRaise()),
        (
            [[0, 0, 1]],
            [0.5],
            [0],
            None,
            pytest.raises(ValueError, match=r"xyxy must be shape \(n, 4\)"),
        ),
        (
            [[0, 0, 1, 1]],
            [0.5, 0.4],
            [0],
            None,
            pytest.raises(ValueError, match=r"confidence must be shape \(1,\), got \(2,\)"),
        ),
        ([[0, 0, 1, 1]], [0.5], [], None, pytest.raises(ValueError, match="class_id")),
        ([[0, 0, 1, 1]], [0.5], [1], [1, 2], pytest.raises(ValueError, match="tracker_id")),
    ],
)
def test_detections_validation(
    xyxy: object,
    conf: object,
    cls: object,
    tid: object,
    expectation: AbstractContextManager[object],
) -> None:
    with expectation:
        Detections(xyxy, conf, cls, tid)  # type: ignore[arg-type]


def test_detections_helpers() -> None:
    d = Detections(np.array([[0, 0, 10, 20], [5, 5, 7, 7]]), np.array([0.9, 0.2]), np.array([1, 0]))
    assert d.anchors("bottom_center").tolist() == [[5, 20], [6, 7]]
    assert len(d.select(d.confidence > 0.5)) == 1
    assert d.shifted(100, 10, scale=2).xyxy[0].tolist() == [100, 10, 120, 50]
    assert len(Detections.merge([d, Detections.empty(), d])) == 4


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("{0: 'a', 1: 'b'}", ["a", "b"]), ("['x']", ["x"]), ("{1: 'b', 0: 'a'}", ["a", "b"])],
)
def test_parse_names(raw: str, expected: list[str]) -> None:
    assert parse_names(raw) == expected


@pytest.mark.parametrize("raw", ["{0: 'a', 2: 'b'}", "not python", "42"])
def test_parse_names_rejects(raw: str) -> None:
    with pytest.raises(ModelError):
        parse_names(raw)


def test_nms_and_decode() -> None:
    b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    assert nms(b, np.array([0.5, 0.9, 0.7], np.float32), 0.5).tolist() == [1, 2]
    # two overlapping boxes of different classes both survive per-class NMS
    out = np.array(
        [[5, 5, 50], [5, 5, 50], [10, 10, 4], [10, 10, 4], [0.9, 0.1, 0.2], [0.1, 0.8, 0.1]],
        np.float32,
    )
    d = decode_output(out, 0.25, 0.45)
    assert sorted(d.class_id.tolist()) == [0, 1]
    assert d.xyxy[d.class_id == 0][0].tolist() == [0, 0, 10, 10]
    # as faces for a second stage, the same face is one box (the most confident)
    faces = decode_output(out, 0.25, 0.45, agnostic=True)
    assert (len(faces), faces.class_id.tolist()) == (1, [0])
    assert faces.confidence == pytest.approx([0.9])


def test_letterbox_geometry() -> None:
    chw, scale, px, py = letterbox(np.zeros((360, 640, 3), np.uint8), (320, 320))
    assert chw.shape == (3, 320, 320)
    assert chw.dtype == np.float32
    assert (scale, px, py) == (0.5, 0, 70)
    assert chw[0, 0, 0] == pytest.approx(114 / 255)


def test_onnx_detector_reads_metadata(mask_model_path: Path) -> None:
    det = OnnxDetector(mask_model_path, threads=1)
    assert isinstance(det, Detector)
    assert det.class_names == ["with_mask", "without_mask", "mask_weared_incorrect"]
    assert det.input_size == (320, 320)
    assert det.model_version == "test-colour-1"
    assert det.info.dynamic_batch


@pytest.mark.parametrize("dynamic", [True, False])
def test_onnx_detector_boxes_follow_the_image(tmp_path: Path, dynamic: bool) -> None:
    path = build_colour_model(tmp_path / "m.onnx", MASK_CLASSES, imgsz=256, dynamic_batch=dynamic)
    det = OnnxDetector(path)
    bg = kitchen_background(1280, 720)
    img = render(bg, [Patch(200, 150, 80, RED), Patch(1000, 500, 120, GREEN)])
    crop = img[100:300, 100:400]
    results = det.detect([img, bg, crop])
    assert [len(r) for r in results] == [2, 0, 1]
    full = results[0]
    red = full.xyxy[full.class_id == 1][0]
    green = full.xyxy[full.class_id == 0][0]
    assert np.allclose(red, [160, 110, 240, 190], atol=6)
    assert np.allclose(green, [940, 440, 1060, 560], atol=6)
    assert np.allclose(results[2].xyxy[0], [60, 10, 140, 90], atol=3)
    assert results[2].confidence[0] == pytest.approx(0.9)


def test_missing_and_malformed_models_raise_model_error(
    tmp_path: Path, mask_model_path: Path
) -> None:
    with pytest.raises(ModelError, match="not found"):
        OnnxDetector(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxDetector(tmp_path / "junk.onnx")
    model = onnx.load(str(mask_model_path))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "nometa.onnx"))
    with pytest.raises(ModelError, match="names"):
        OnnxDetector(tmp_path / "nometa.onnx")


def test_second_stage_names_the_faces_the_detector_found(tmp_path: Path) -> None:
    det_path = build_colour_model(tmp_path / "m.onnx", MASK_CLASSES, imgsz=256)
    always_incorrect = CropClassifier(
        build_tiny_classifier(tmp_path / "c.onnx", favour=2, threshold=0.5), threads=1
    )
    det = OnnxDetector(det_path, classifier=always_incorrect)
    assert (det.model_version, det.info.conf_threshold) == ("test-colour-1+test-cls-1", 0.5)
    bg = kitchen_background(1280, 720)
    img = render(bg, [Patch(200, 150, 80, RED), Patch(1000, 500, 120, GREEN)])
    plain = OnnxDetector(det_path).detect([img, bg])
    results = det.detect([img, bg])
    assert [len(r) for r in results] == [2, 0]
    assert results[0].class_id.tolist() == [2, 2]
    assert np.allclose(results[0].xyxy, plain[0].xyxy)  # same boxes, in the image's pixels
    assert results[0].confidence == pytest.approx([0.9, 0.9], abs=1e-4)  # face 0.9 x prob ~1


def test_second_stage_threshold_and_random_classifier(tmp_path: Path) -> None:
    det_path = build_colour_model(tmp_path / "m.onnx", MASK_CLASSES, imgsz=256)
    clf = CropClassifier(build_tiny_classifier(tmp_path / "c.onnx", seed=4), threads=1)
    img = render(
        kitchen_background(640, 360), [Patch(100, 100, 40, RED), Patch(400, 200, 60, GREEN)]
    )
    faces = OnnxDetector(det_path).detect([img])[0]
    probs = clf.probabilities(clf.crops([img], [faces.xyxy]))
    got = OnnxDetector(det_path, classifier=clf, conf_threshold=0.01).detect([img])[0]
    assert got.class_id.tolist() == probs.argmax(axis=1).tolist()
    assert got.confidence == pytest.approx(0.9 * probs.max(axis=1), abs=1e-5)
    # a final threshold above every face x probability keeps nothing
    high = float(got.confidence.max()) + 1e-3
    assert len(OnnxDetector(det_path, classifier=clf, conf_threshold=high).detect([img])[0]) == 0


def test_second_stage_must_name_the_detectors_classes(tmp_path: Path) -> None:
    det_path = build_colour_model(tmp_path / "m.onnx", MASK_CLASSES, imgsz=256)
    other = build_tiny_classifier(tmp_path / "c.onnx", classes=["mask", "no_mask", "wrong"])
    with pytest.raises(ModelError, match="differ from the detector"):
        OnnxDetector(det_path, classifier=CropClassifier(other))
