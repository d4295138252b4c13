"""face_paste: rare-class faces are cut once and pasted, with their boxes, into training images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from models.camera_augment import CameraDegradation
from models.face_paste import (
    BankFace,
    FacePaste,
    build_bank,
    from_dataset,
    paste,
    train_image_dir,
)
from models.train import TrainOptions, _extra_transforms

pytest.importorskip("ultralytics")

NAMES = {0: "with_mask", 1: "without_mask", 2: "mask_weared_incorrect"}
NAMES_LIST = [NAMES[i] for i in range(3)]


def _photo(seed: int, size: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (size, size, 3)).astype(np.uint8)


def _dataset(root: Path) -> Path:
    """A YOLO folder as ``models prepare`` writes it: two sources, three classes, a data.yaml."""
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    rows = {
        # real photo: one incorrect face (40 px tall), one bare face, one 8-px incorrect face
        "s0_street.jpg": ["2 0.25 0.25 0.15 0.2", "1 0.7 0.7 0.2 0.2", "2 0.8 0.1 0.03 0.04"],
        "s0_crowd.jpg": ["0 0.5 0.5 0.2 0.2"],
        "s1_synthetic.jpg": ["2 0.5 0.5 0.6 0.7"],
    }
    for i, (name, lines) in enumerate(rows.items()):
        img = _photo(i)
        cv2.imwrite(str(images / name), img)
        (labels / Path(name).with_suffix(".txt")).write_text("\n".join(lines) + "\n")
    (root / "train.txt").write_text("".join(f"./images/train/{n}\n" for n in rows))
    data = root / "data.yaml"
    data.write_text(
        yaml.safe_dump({"path": ".", "train": "train.txt", "val": "images/train", "names": NAMES})
    )
    return data


def test_bank_holds_the_chosen_class_only_its_source_and_the_face_box(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    assert train_image_dir(data) == (tmp_path / "images" / "train").resolve()
    bank = build_bank(train_image_dir(data), NAMES_LIST, {"mask_weared_incorrect"})
    # the 8-px face is too small to paste; the bare and masked faces are other classes
    assert sorted((f.source, f.cls) for f in bank) == [("s0", 2), ("s1", 2)]
    street = next(f for f in bank if f.source == "s0")
    x1, y1, x2, y2 = street.box
    assert y2 - y1 == pytest.approx(40, abs=0.5)  # 0.2 of 200 px
    # the crop carries a margin on every side, and the face box lies inside it
    h, w = street.pixels.shape[:2]
    assert 0 < x1 < x2 < w
    assert 0 < y1 < y2 < h
    original = cv2.imread(str(tmp_path / "images" / "train" / "s0_street.jpg"))
    # the crop's face region is the photo's face region (same JPEG pixels)
    face_in_crop = street.pixels[round(y1) : round(y2), round(x1) : round(x2)]
    face_in_photo = original[30:70, 35:65]
    assert face_in_crop.shape == face_in_photo.shape
    assert np.array_equal(face_in_crop, face_in_photo)


def test_paste_puts_a_face_of_the_asked_height_where_no_face_is() -> None:
    rng = np.random.default_rng(0)
    bank = _bank_of_one()
    img = np.full((300, 300, 3), 90, np.uint8)
    taken = np.array([[0, 0, 150, 300]], np.float32)  # left half is a labelled face
    for _ in range(20):
        placed = paste(img, taken, bank[0], 30.0, rng)
        assert placed is not None
        out, box = placed
        assert box[3] - box[1] == pytest.approx(30.0, abs=0.5)
        assert box[0] >= 150  # never over the labelled face, margin included
        changed = np.argwhere(np.any(out != img, axis=2))
        assert changed[:, 1].min() >= 150
        assert np.all(out[:, :150] == img[:, :150])


def test_paste_gives_up_when_there_is_no_room() -> None:
    rng = np.random.default_rng(0)
    img = np.full((100, 100, 3), 90, np.uint8)
    full = np.array([[0, 0, 100, 100]], np.float32)
    assert paste(img, full, _bank_of_one()[0], 20.0, rng) is None
    assert (
        paste(img, np.zeros((0, 4), np.float32), _bank_of_one()[0], 400.0, rng) is None
    )  # too big


def _bank_of_one() -> list[BankFace]:
    pixels = np.full((60, 50, 3), 220, np.uint8)
    return [BankFace(pixels=pixels, cls=2, box=(5.0, 6.0, 45.0, 54.0), source="s0")]


def test_transform_adds_boxes_and_classes_and_draws_sources_evenly(tmp_path: Path) -> None:
    from ultralytics.utils.instance import Instances

    bank = build_bank(train_image_dir(_dataset(tmp_path)), NAMES_LIST, {"mask_weared_incorrect"})
    transform = FacePaste(bank, 1.0)
    np.random.seed(0)
    sources = [transform.draw(np.random.default_rng(i)).source for i in range(400)]
    assert 0.4 < sources.count("s0") / 400 < 0.6  # one face each: drawn by source first
    img = np.full((320, 320, 3), 100, np.uint8)
    labels = {
        "img": img,
        "cls": np.array([[0.0]], np.float32),
        "instances": Instances(
            np.array([[10, 10, 50, 60]], np.float32),
            segments=np.zeros((0, 1000, 2), np.float32),  # what ultralytics carries for boxes
            bbox_format="xyxy",
            normalized=False,
        ),
    }
    out = transform(labels)
    n = len(out["cls"])
    assert 2 <= n <= 3
    assert out["cls"][0, 0] == 0
    assert set(out["cls"][1:, 0].tolist()) == {2.0}
    assert len(out["instances"].bboxes) == n
    assert out["instances"].segments.shape[0] == n
    assert not np.array_equal(out["img"], np.full((320, 320, 3), 100, np.uint8))
    # probability zero: nothing happens
    same = FacePaste(bank, 0.0)({"img": img, "cls": np.zeros((0, 1)), "instances": None})
    assert same["img"] is img
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            FacePaste(bank, p)


def test_train_options_build_paste_before_camera_faults_and_refuse_unknown_classes(
    tmp_path: Path,
) -> None:
    data = _dataset(tmp_path)
    two = from_dataset(data, ["mask_weared_incorrect", "without_mask"], 0.5)
    assert sorted(f.cls for f in two.bank) == [1, 2, 2]  # ids as the dataset numbers them
    with pytest.raises(ValueError, match="not in"):
        from_dataset(data, ["helmet"], 0.5)
    built = _extra_transforms(TrainOptions(data=data, face_paste=0.5, camera_augment=0.25))
    assert [type(t) for t in built] == [FacePaste, CameraDegradation]
    assert _extra_transforms(TrainOptions(data=data)) == []
    with pytest.raises(ValueError, match="no face"):
        from_dataset(data, [], 0.5)


def test_pasted_faces_reach_the_training_batch_and_not_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.dataset import YOLODataset

    from models.train_transforms import install

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setattr(YOLODataset, "build_transforms", YOLODataset.build_transforms)
    data = _dataset(tmp_path)
    transform = from_dataset(data, ["mask_weared_incorrect"], 1.0)
    install([transform, CameraDegradation(0.0)])
    install([transform, CameraDegradation(0.0)])  # again: replaces, does not stack
    cfg = get_cfg(overrides={"imgsz": 160, "mosaic": 1.0})
    images = str(tmp_path / "images" / "train")
    train = build_yolo_dataset(
        cfg, images, 2, {"names": NAMES, "nc": 3, "channels": 3}, mode="train"
    )
    val = build_yolo_dataset(cfg, images, 2, {"names": NAMES, "nc": 3, "channels": 3}, mode="val")
    kinds = [type(t) for t in train.transforms.transforms]
    assert kinds[-3:-1] == [FacePaste, CameraDegradation]  # paste, then faults, then Format
    assert FacePaste not in [type(t) for t in val.transforms.transforms]
    np.random.seed(1)
    counts = [int((train[i % 3]["cls"] == 2).sum()) for i in range(12)]
    assert sum(counts) > 0
