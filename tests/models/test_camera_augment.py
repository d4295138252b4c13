"""camera_augment: training images get the camera's faults; boxes and validation do not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.camera_augment import CameraDegradation
from models.train_transforms import install

pytest.importorskip("ultralytics")


def _labels(seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    img = np.full((96, 96, 3), 128, np.uint8)
    cv2.circle(img, (48, 48), 20, (40, 40, 220), -1)
    img[:] = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    return {"img": img, "cls": np.array([[1.0]]), "marker": "kept"}


def test_each_fault_changes_pixels_not_shape_or_other_keys() -> None:
    np.random.seed(0)
    before = _labels()
    original = before["img"].copy()  # type: ignore[attr-defined]
    after = CameraDegradation(1.0)(before)
    assert after["img"].shape == original.shape
    assert after["img"].dtype == np.uint8
    assert float(np.abs(after["img"].astype(int) - original.astype(int)).mean()) > 5
    assert after["marker"] == "kept"
    assert after["cls"].tolist() == [[1.0]]


def test_probability_zero_is_the_identity_and_bad_probabilities_are_refused() -> None:
    before = _labels()
    original = before["img"].copy()  # type: ignore[attr-defined]
    assert np.array_equal(CameraDegradation(0.0)(before)["img"], original)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            CameraDegradation(p)


def _yolo_folder(root: Path) -> Path:
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / "images" / "train" / f"{i}.jpg"), _labels(i)["img"])  # type: ignore[arg-type]
        (root / "labels" / "train" / f"{i}.txt").write_text("1 0.5 0.5 0.4 0.4\n")
    return root / "images" / "train"


def test_install_adds_the_faults_to_training_datasets_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.dataset import YOLODataset

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    # Restored after the test: other tests build datasets without the faults.
    monkeypatch.setattr(YOLODataset, "build_transforms", YOLODataset.build_transforms)
    install([CameraDegradation(0.3)])
    install([CameraDegradation(0.3)])  # twice does not stack two transforms
    images = _yolo_folder(tmp_path)
    cfg = get_cfg(overrides={"imgsz": 64, "mosaic": 0.0})
    data = {"names": {0: "with_mask", 1: "without_mask", 2: "incorrect"}, "nc": 3, "channels": 3}
    train = build_yolo_dataset(cfg, str(images), 2, data, mode="train")
    val = build_yolo_dataset(cfg, str(images), 2, data, mode="val")
    kinds = [type(t) for t in train.transforms.transforms]
    assert kinds.count(CameraDegradation) == 1
    assert kinds.index(CameraDegradation) == len(kinds) - 2  # just before the tensor format
    assert CameraDegradation not in [type(t) for t in val.transforms.transforms]
    sample = train[0]
    assert tuple(sample["img"].shape) == (3, 64, 64)
    assert len(sample["cls"]) == 1
