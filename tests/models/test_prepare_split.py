"""prepare: reproducible group-aware split, near-duplicates together, bad files skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from models.prepare import DatasetConfig, SourceConfig, prepare
from tests.models.helpers import CLASSES, write_voc


def _config(**kw: object) -> DatasetConfig:
    return DatasetConfig(
        name="t",
        classes=CLASSES,
        sources=[SourceConfig(path="a", format="voc", **kw)],  # type: ignore[arg-type]
        val_fraction=0.4,
    )


def _split(out: Path) -> dict[str, set[str]]:
    return {s: {p.stem for p in (out / "images" / s).glob("*")} for s in ("train", "val")}


def test_split_is_reproducible_and_keeps_pairs_together(tmp_path: Path) -> None:
    src = write_voc(tmp_path / "a", 20, seed=5)
    pairs = [
        ["img000.jpg", "img001.jpg"],
        ["img002.jpg", "img003.jpg"],
        ["img004.jpg", "img005.jpg"],
    ]
    (src / "pairs.json").write_text(json.dumps(pairs))
    (src / "annotations" / "broken.xml").write_text("<annotation>")
    r1 = prepare(_config(groups_file="pairs.json"), tmp_path, tmp_path / "o1")
    r2 = prepare(_config(groups_file="pairs.json"), tmp_path, tmp_path / "o2")
    s1, s2 = _split(tmp_path / "o1"), _split(tmp_path / "o2")
    assert s1 == s2
    assert s1["train"]
    assert s1["val"]
    assert r1.train_images + r1.val_images == 20
    assert [i.path.name for i in r1.issues] == ["broken.xml"]
    assert r2.issues
    for a, b in pairs:
        stem_a, stem_b = f"s0_{Path(a).stem}", f"s0_{Path(b).stem}"
        assert (stem_a in s1["val"]) == (stem_b in s1["val"])
    labels = (tmp_path / "o1" / "labels" / "train").glob("*.txt")
    first = next(iter(labels)).read_text().split()
    assert len(first) % 5 == 0
    assert all(0 <= float(v) <= 1 for v in first[1:5])


def test_exact_copy_under_another_name_is_grouped(tmp_path: Path) -> None:
    src = write_voc(tmp_path / "a", 12, seed=6)
    shutil.copy(src / "images" / "img000.jpg", src / "images" / "zz_copy.jpg")
    shutil.copy(src / "annotations" / "img000.xml", src / "annotations" / "zz_copy.xml")
    xml = (src / "annotations" / "zz_copy.xml").read_text().replace("img000.jpg", "zz_copy.jpg")
    (src / "annotations" / "zz_copy.xml").write_text(xml)
    for seed in range(5):
        cfg = _config()
        cfg.seed = seed
        prepare(cfg, tmp_path, tmp_path / f"o{seed}")
        split = _split(tmp_path / f"o{seed}")
        assert ("s0_img000" in split["val"]) == ("s0_zz_copy" in split["val"])


def test_max_images_keeps_the_same_reproducible_subset(tmp_path: Path) -> None:
    write_voc(tmp_path / "a", 12, seed=2)
    cfg = DatasetConfig(
        name="t",
        classes=CLASSES,
        sources=[SourceConfig(path="a", format="voc", split="train", max_images=5)],
        val_fraction=0.4,
    )
    r1 = prepare(cfg, tmp_path, tmp_path / "o1")
    r2 = prepare(cfg, tmp_path, tmp_path / "o2")
    assert r1.train_images == r2.train_images == 5
    assert _split(tmp_path / "o1") == _split(tmp_path / "o2")
    labels = list((tmp_path / "o1" / "labels" / "train").glob("*.txt"))
    assert len(labels) == 5
    assert sum(r1.boxes_per_class["train"].values()) == 10  # 2 objects per rendered image


def test_repeat_with_lists_rare_class_training_images_again(tmp_path: Path) -> None:
    write_voc(tmp_path / "a", 15, seed=7)
    plain = prepare(_config(), tmp_path, tmp_path / "plain")
    assert plain.train_listed == plain.train_images
    assert not (tmp_path / "plain" / "train.txt").exists()
    rep = prepare(_config(repeat_with={"mask_weared_incorrect": 3}), tmp_path, tmp_path / "rep")
    out = tmp_path / "rep"
    spec = yaml.safe_load((out / "data.yaml").read_text())
    assert spec["train"] == "train.txt"
    assert spec["val"] == "images/val"  # validation is never repeated
    lines = (out / "train.txt").read_text().splitlines()
    assert all(line.startswith("./images/train/") for line in lines)
    assert all((out / line[2:]).is_file() for line in lines)  # ultralytics: "./" = list's folder
    rare = {
        p.stem for p in (out / "labels" / "train").glob("*.txt") if "\n2 " in "\n" + p.read_text()
    }
    assert rare
    assert rep.train_images == plain.train_images
    assert len(lines) == rep.train_listed == rep.train_images + 2 * len(rare)
    assert all(lines.count(f"./images/train/{s}.jpg") == 3 for s in rare)
    assert json.loads((out / "prepare_report.json").read_text())["train_listed"] == len(lines)


def test_repeat_with_rejects_unknown_classes_and_counts_below_one() -> None:
    with pytest.raises(ValidationError, match="unknown classes"):
        _config(repeat_with={"hat": 2})
    with pytest.raises(ValidationError, match="at least 1"):
        _config(repeat_with={"with_mask": 0})


def test_a_recipe_with_no_usable_image_says_so_and_keeps_the_old_dataset(tmp_path: Path) -> None:
    """Every file skipped (here: a class the recipe does not know) is an error naming the
    first reason, raised before the previous dataset in ``out`` is removed."""
    from bkcommon.errors import ModelError

    src = write_voc(tmp_path / "a", 2, seed=1)
    for xml in (src / "annotations").glob("*.xml"):
        text = xml.read_text()
        for cls in CLASSES:
            text = text.replace(f"<name>{cls}</name>", "<name>needs_label</name>")
        xml.write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.yaml").write_text("kept: true\n")
    with pytest.raises(ModelError, match=r"no usable image.*2 file\(s\) skipped.*needs_label"):
        prepare(_config(), tmp_path, out)
    assert (out / "data.yaml").read_text() == "kept: true\n"
