"""``models train-classifier``: camera-like crops, the faces it trains and chooses on (never the
test side), and a whole run through the command on rendered photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.detect.crop_classifier import CONF_RULES, CropClassifier
from models.classifier import (
    CONTEXT_FACE_PX,
    THRESHOLDS,
    ClassifierOptions,
    Face,
    augment,
    cache_faces,
    plain_crop,
    split_faces,
)
from models.prepare import DatasetConfig, SourceConfig
from models.sources import Box, Sample
from models.splits import build_split
from tests.edge.support import build_colour_model
from tests.models.helpers import CLASSES, COLOURS, write_voc


def _face(size: int = 80) -> Face:
    rng = np.random.default_rng(5)
    patch = rng.integers(0, 255, (size * 2, size * 2, 3), dtype=np.uint8)
    q = size / 2
    return Face(patch, (q, q, q + size, q + size), 1, "src", "a.jpg")


def test_augment_is_seeded_and_gives_the_crop_size() -> None:
    face = _face()
    a = [augment(face, np.random.default_rng(s), 48, 0.25) for s in (1, 1, 2)]
    assert all(x.shape == (48, 48, 3) and x.dtype == np.uint8 for x in a)
    assert np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], a[2])
    assert plain_crop(face, 48, 0.25).shape == (48, 48, 3)


def test_cache_faces_shrinks_large_faces_and_follows_the_box(tmp_path: Path) -> None:
    import cv2

    img = np.zeros((400, 400, 3), np.uint8)
    img[100:300, 120:280] = 255  # a 200 px tall "face"
    cv2.imwrite(str(tmp_path / "a.png"), img)
    boxes = (
        Box("without_mask", 120, 100, 280, 300),
        Box("with_mask", 10, 10, 30, 34),
        Box("with_mask", 350, 350, 390, 390, difficult=True),
    )
    sample = Sample(tmp_path / "a.png", 400, 400, boxes)
    faces = cache_faces([sample], CLASSES, "src")
    assert [f.label for f in faces] == [1, 0]  # the difficult face is left out
    big, small = faces
    assert big.box[3] - big.box[1] == pytest.approx(CONTEXT_FACE_PX, abs=0.5)  # shrunk
    x1, y1, x2, y2 = (round(v) for v in big.box)
    assert big.patch[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].min() == 255  # the box is the face
    assert small.box[3] - small.box[1] == pytest.approx(24)  # small faces keep their pixels
    only = cache_faces([sample], CLASSES, "src", only="with_mask")
    assert [f.label for f in only] == [0]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    write_voc(tmp_path / "real", 30, seed=21, size=128)
    write_voc(tmp_path / "synth", 6, seed=22, size=96)
    return tmp_path


def _config() -> DatasetConfig:
    return DatasetConfig(
        name="t",
        classes=CLASSES,
        sources=[
            SourceConfig(path="real", format="voc", split="auto"),
            SourceConfig(path="synth", format="voc", split="train"),
        ],
        val_fraction=0.3,
    )


def _val_fold(doc: dict[str, object]) -> int:
    real = doc["sources"][0]  # type: ignore[index]
    folds = [im["fold"] for im in real["images"] if im["side"] == "train"]
    return int(max(set(folds), key=folds.count))


def test_training_faces_never_come_from_the_test_side(data_root: Path, tmp_path: Path) -> None:
    doc = build_split(_config(), data_root)
    fold = _val_fold(doc)
    opts = ClassifierOptions(out=tmp_path / "c.onnx", val_fold=fold, synthetic="synth")
    train, val, photos = split_faces(doc, _config(), data_root, opts)
    side = {(e["path"], im["name"]): im for e in doc["sources"] for im in e["images"]}
    assert train
    assert val
    for f in [*train, *val]:
        assert side[(f.source, f.name)]["side"] == "train"
    assert all(side[("real", f.name)]["fold"] == fold for f in val)
    assert all(side[(f.source, f.name)]["fold"] != fold for f in train)
    assert {f.label for f in train if f.source == "synth"} == {
        CLASSES.index("mask_weared_incorrect")
    }
    assert {f.source for f in val} == {"real"}
    assert {p.image.name for p in photos} == {f.name for f in val}


def test_train_classifier_command_writes_a_model_the_box_loads(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    doc = build_split(_config(), data_root)
    split = tmp_path / "split.json"
    split.write_text(json.dumps(doc))
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(json.dumps(_config().model_dump()))  # JSON is YAML
    detector = build_colour_model(tmp_path / "det.onnx", COLOURS, imgsz=128)
    out = tmp_path / "cls.onnx"
    argv = ["models", "train-classifier", "--split", str(split), "--config", str(cfg)]
    argv += ["--data-root", str(data_root), "--out", str(out), "--detector", str(detector)]
    argv += ["--size", "32", "--width", "4", "--epochs", "2", "--batch", "16"]
    argv += ["--val-fold", str(_val_fold(doc)), "--threads", "1", "--version", "t-cls"]
    assert main(argv) == 0
    assert "confidence rule" in capsys.readouterr().out
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert 1 <= metrics["best_epoch"] <= 2
    assert metrics["max_abs_diff_onnx"] < 1e-4
    assert sum(metrics["val_faces"].values()) > 0
    choice = metrics["choice"]
    assert choice["rule"] in CONF_RULES
    assert choice["threshold"] in THRESHOLDS
    assert set(choice["table"]) == set(CONF_RULES)
    clf = CropClassifier(out, threads=1)
    assert (clf.info.version, clf.info.input_size) == ("t-cls", 32)
    assert (clf.info.conf_rule, clf.info.conf_threshold) == (choice["rule"], choice["threshold"])
