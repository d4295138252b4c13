"""Grouped split: near-duplicates (hash or listed) never straddle sides; the file is
deterministic; a look-alike of a training image is never a test image."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.prepare import DatasetConfig, SourceConfig
from models.sources import read_folder
from models.splits import group_keys, phash, sides_for_source
from tests.models.helpers import CLASSES, write_voc


def _near_copy(folder: Path, src: str, dst: str) -> None:
    """A re-encoded, slightly resized and brightened copy under another name, same labels."""
    img = cv2.imread(str(folder / "images" / f"{src}.jpg"))
    h, w = img.shape[:2]
    img = cv2.resize(cv2.resize(img, (w * 9 // 10, h * 9 // 10)), (w, h))
    img = np.clip(img.astype(np.int16) + 8, 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / "images" / f"{dst}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 70])
    xml = (folder / "annotations" / f"{src}.xml").read_text().replace(f"{src}.jpg", f"{dst}.jpg")
    (folder / "annotations" / f"{dst}.xml").write_text(xml)


def _distinct_backgrounds(folder: Path, seed: int) -> None:
    """Give every rendered image its own low-frequency scene (the helper's share one look)."""
    rng = np.random.default_rng(seed)
    for path in sorted((folder / "images").glob("*.jpg")):
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        scene = cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (w, h))
        cv2.imwrite(str(path), cv2.addWeighted(img, 0.3, scene, 0.7, 0))


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    real = write_voc(tmp_path / "real", 24, seed=11, size=128)
    _distinct_backgrounds(real, seed=1)
    for i in range(4):
        _near_copy(real, f"img{i:03d}", f"dup{i:03d}")
    (real / "pairs.json").write_text(json.dumps([["img010.jpg", "img011.jpg"]]))
    write_voc(tmp_path / "synth", 6, seed=12, size=96)
    return tmp_path


def _config() -> DatasetConfig:
    return DatasetConfig(
        name="t",
        classes=CLASSES,
        sources=[
            SourceConfig(path="real", format="voc", split="auto", groups_file="pairs.json"),
            SourceConfig(path="synth", format="voc", split="train"),
        ],
        val_fraction=0.4,
    )


def test_near_copies_hash_close_and_group_together(data_root: Path) -> None:
    res = read_folder(data_root / "real", "voc", {}, CLASSES)
    by_name = {s.image.stem: s for s in res.samples}
    a, b, c = (phash(by_name[n].image) for n in ("img000", "dup000", "img005"))
    assert a is not None
    assert b is not None
    assert c is not None
    assert bin(a ^ b).count("1") <= 6  # a re-encoded copy
    assert bin(a ^ c).count("1") > 14  # another picture
    keys = dict(zip((s.image.stem for s in res.samples), group_keys(res.samples), strict=True))
    for i in range(4):
        assert keys[f"img{i:03d}"] == keys[f"dup{i:03d}"]
    assert len(set(keys.values())) == 28 - 4  # nothing else was merged


def test_split_file_is_deterministic_and_groups_never_straddle(
    data_root: Path, tmp_path: Path
) -> None:
    from brightkitchen.cli import main

    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(json.dumps(_config().model_dump()))  # JSON is YAML
    outs = [tmp_path / "s1.json", tmp_path / "s2.json"]
    for out in outs:
        argv = ["models", "split", "--config", str(cfg), "--data-root", str(data_root)]
        assert main([*argv, "--out", str(out)]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    doc = json.loads(outs[0].read_text())
    real, synth = doc["sources"]
    side_of_group: dict[str, set[str]] = {}
    for im in real["images"]:
        side_of_group.setdefault(im["group"], set()).add(im["side"])
    assert all(len(s) == 1 for s in side_of_group.values())
    side = {im["name"]: im["side"] for im in real["images"]}
    for i in range(4):
        assert side[f"img{i:03d}.jpg"] == side[f"dup{i:03d}.jpg"]
    assert side["img010.jpg"] == side["img011.jpg"]
    assert {im["side"] for im in synth["images"]} == {"train"}
    assert doc["summary"]["real"]["images"] == 28
    assert doc["summary"]["real"]["test"] > 0
    assert doc["leave_one_source_out"] == [
        {"test_source": "real", "train_sources": ["synth"]},
        {"test_source": "synth", "train_sources": ["real"]},
    ]
    # test images are exactly recipe-validation images
    assert all(im["recipe_split"] == "val" for im in real["images"] if im["side"] == "test")


def test_a_look_alike_of_a_training_image_is_never_test() -> None:
    # groups: a = {0, 1} (one image trained on), b = {2, 3} (both recipe val), c = {4}
    recipe_val = [True, False, True, True, False]
    keys = ["a", "a", "b", "b", "c"]
    sides = sides_for_source(recipe_val, keys, val_fraction=0.5, seed=0)
    assert sides[:4] == ["train", "train", "test", "test"]
    assert sides[4] in {"train", "val"}


def test_prepare_with_the_split_file_never_trains_on_its_test_side(
    data_root: Path, tmp_path: Path
) -> None:
    from models.prepare import prepare
    from models.splits import build_split

    doc = build_split(_config(), data_root)
    rep = prepare(_config(), data_root, tmp_path / "ds", split_doc=doc)
    test = {im["name"] for im in doc["sources"][0]["images"] if im["side"] == "test"}
    assert rep.test_images == len(test) > 0
    written = {p.name.removeprefix("s0_") for p in (tmp_path / "ds" / "images").rglob("*.jpg")}
    assert not written & test
    kept_out = {p.name.removeprefix("s0_") for p in (tmp_path / "ds" / "test_voc").rglob("*.jpg")}
    assert kept_out == test
    assert rep.train_images + rep.val_images + rep.test_images == 28 + 6
