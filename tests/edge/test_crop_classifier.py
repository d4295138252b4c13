"""The second stage on its own: square face crops, the confidence rules, the classifier file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from bkcommon.errors import ModelError
from edge.detect.base import Detections
from edge.detect.crop_classifier import CROP_FILL, CropClassifier, combine, crop_square
from tests.edge.classifier_support import MASK_NAMES, build_tiny_classifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny classifier (32 px crops, threshold 0.25, rule face x prob)."""
    return build_tiny_classifier(tmp_path_factory.mktemp("cls") / "cls.onnx")


def _ramp(h: int = 120, w: int = 200) -> np.ndarray:
    """An image whose pixels say where they are: B = column, G = row."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = np.arange(w, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.arange(h, dtype=np.uint8)[:, None]
    return img


@pytest.mark.parametrize(
    ("box", "grey_at"),
    [
        ([40, 40, 60, 80], None),  # inside: no fill
        ([0, 0, 20, 20], (0, 0)),  # top-left corner: the margin there is filled
        ([190, 100, 200, 120], (-1, -1)),  # bottom-right corner
        ([500, 500, 520, 520], (20, 20)),  # wholly outside: all grey
    ],
)
def test_crop_square_takes_the_box_with_its_margin(
    box: list[float], grey_at: tuple[int, int] | None
) -> None:
    crop = crop_square(_ramp(), np.array(box, np.float32), 0.25, 40)
    assert crop.shape == (40, 40, 3)
    assert crop.dtype == np.uint8
    if grey_at is not None:
        assert (crop[grey_at] == CROP_FILL).all()
    else:
        # side = 40 x 1.5 = 60 around the centre (50, 60): columns 20..80, rows 30..90
        assert crop[0, 0, 0] == pytest.approx(20, abs=2)
        assert crop[0, 0, 1] == pytest.approx(30, abs=2)
        assert crop[-1, -1, 0] == pytest.approx(79, abs=2)
        assert crop[-1, -1, 1] == pytest.approx(89, abs=2)


def test_confidence_rules() -> None:
    face = np.array([0.5, 0.9], np.float32)
    prob = np.array([0.8, 0.5], np.float32)
    assert combine(face, prob, "face_x_prob") == pytest.approx([0.4, 0.45])
    assert combine(face, prob, "face") == pytest.approx([0.5, 0.9])
    with pytest.raises(ModelError, match="unknown confidence rule"):
        combine(face, prob, "mean")


def test_classifier_reads_its_metadata(tiny: Path) -> None:
    clf = CropClassifier(tiny, threads=1)
    assert clf.class_names == MASK_NAMES
    assert (clf.info.input_size, clf.info.margin) == (32, 0.25)
    assert (clf.info.conf_rule, clf.info.conf_threshold) == ("face_x_prob", 0.25)
    assert clf.info.version == "test-cls-1"
    assert CropClassifier(tiny, conf_threshold=0.5, conf_rule="face").info.conf_rule == "face"
    probs = clf.probabilities(np.random.default_rng(0).random((70, 3, 32, 32), dtype=np.float32))
    assert probs.shape == (70, 3)  # two runs of at most 64 crops
    assert probs.sum(axis=1) == pytest.approx(np.ones(70), abs=1e-5)


def test_relabel_names_each_face_from_its_crop(tiny: Path) -> None:
    clf = CropClassifier(tiny, threads=1)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(2)]
    faces = [
        Detections(
            np.array([[10, 10, 40, 50], [100, 20, 130, 60]], np.float32),
            np.array([0.9, 0.6], np.float32),
            np.array([0, 0]),
        ),
        Detections(
            np.array([[50, 30, 70, 60]], np.float32), np.array([0.8], np.float32), np.array([1])
        ),
    ]
    out = clf.relabel(images, faces, threshold=0.0)
    assert [len(d) for d in out] == [2, 1]
    for img, face, got in zip(images, faces, out, strict=True):
        crops = clf.crops([img], [face.xyxy])
        probs = clf.probabilities(crops)
        assert got.class_id.tolist() == probs.argmax(axis=1).tolist()
        assert got.confidence == pytest.approx(face.confidence * probs.max(axis=1), abs=1e-6)
    kept = clf.relabel(images, faces, threshold=float(out[0].confidence.max()))
    assert [len(d) for d in kept] == [1, 0]
    assert clf.relabel([], []) == []


def test_missing_and_malformed_classifiers_raise_model_error(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        CropClassifier(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        CropClassifier(tmp_path / "junk.onnx")
    model = onnx.load(str(tiny))
    keep = [p for p in model.metadata_props if p.key != "bk_input_size"]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    onnx.save(model, str(tmp_path / "nosize.onnx"))
    with pytest.raises(ModelError, match="bk_input_size"):
        CropClassifier(tmp_path / "nosize.onnx")
    with pytest.raises(ModelError, match="unknown confidence rule"):
        CropClassifier(tiny, conf_rule="mean")
