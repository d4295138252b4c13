"""One labelled set written as Pascal VOC, YOLO txt and COCO JSON reads the same; malformed
labels are skipped with the file and the field named; ``evaluate`` takes each format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.sources import read_folder
from tests.models.helpers import CLASSES, write_voc

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"


def _boxes_of(folder: Path) -> dict[str, list[tuple[str, int, int, int, int]]]:
    res = read_folder(folder, "auto", {}, CLASSES)
    assert res.issues == []
    return {
        s.image.stem: sorted(
            (b.cls, round(b.x1), round(b.y1), round(b.x2), round(b.y2)) for b in s.boxes
        )
        for s in res.samples
    }


def _as_yolo(voc: Path, out: Path) -> Path:
    (out / "labels").mkdir(parents=True)
    shutil.copytree(voc / "images", out / "images")
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for s in read_folder(voc, "voc", {}, CLASSES).samples:
        lines = [
            f"{CLASSES.index(b.cls)} {(b.x1 + b.x2) / 2 / s.width_px:.6f} "
            f"{(b.y1 + b.y2) / 2 / s.height_px:.6f} {(b.x2 - b.x1) / s.width_px:.6f} "
            f"{(b.y2 - b.y1) / s.height_px:.6f}"
            for b in s.boxes
        ]
        (out / "labels" / f"{s.image.stem}.txt").write_text("\n".join(lines) + "\n")
    return out


def _as_coco(voc: Path, out: Path, names: dict[str, str] | None = None) -> Path:
    shutil.copytree(voc / "images", out / "images")
    names = names or {}
    cats = [{"id": i + 1, "name": names.get(c, c)} for i, c in enumerate(CLASSES)]
    images, anns = [], []
    for k, s in enumerate(read_folder(voc, "voc", {}, CLASSES).samples):
        images.append(
            {"id": k, "file_name": s.image.name, "width": s.width_px, "height": s.height_px}
        )
        for b in s.boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": k,
                    "category_id": CLASSES.index(b.cls) + 1,
                    "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
                    "iscrowd": 0,
                }
            )
    (out / "annotations").mkdir()
    doc = {"images": images, "annotations": anns, "categories": cats}
    (out / "annotations" / "instances_test.json").write_text(json.dumps(doc))
    return out


def test_voc_yolo_and_coco_of_one_set_read_the_same(tmp_path: Path) -> None:
    voc = write_voc(tmp_path / "voc", 4, seed=3)
    expected = _boxes_of(voc)
    assert len(expected) == 4
    assert _boxes_of(_as_yolo(voc, tmp_path / "yolo")) == expected
    assert _boxes_of(_as_coco(voc, tmp_path / "coco")) == expected
    # the JSON file itself is a dataset too
    assert _boxes_of(tmp_path / "coco" / "annotations" / "instances_test.json") == expected


def _coco_doc(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    folder = _as_coco(write_voc(tmp_path / "voc", 2, seed=4), tmp_path / "coco")
    path = folder / "annotations" / "instances_test.json"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("change", "reason", "readable"),
    [
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "(id 1): field bbox", 1),
        (lambda d: d["annotations"][0].update(bbox=[1, "x", 3, 4]), "field bbox must be", 1),
        (lambda d: d["annotations"][0].update(category_id=99), "field category_id 99", 1),
        # an annotation of no image cannot skip one; it is reported on its own
        (lambda d: d["annotations"][0].pop("image_id"), "(id 1): field image_id missing", 2),
    ],
)
def test_malformed_coco_annotation_names_file_and_field(
    tmp_path: Path, change: object, reason: str, readable: int
) -> None:
    path, doc = _coco_doc(tmp_path)
    change(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    res = read_folder(path.parent.parent, "auto", {}, CLASSES)
    assert len(res.samples) == readable  # the other image is still read
    assert len(res.issues) == 1
    assert "instances_test.json" in res.issues[0].reason
    assert reason in res.issues[0].reason


def test_coco_file_that_is_not_coco_is_one_clear_issue(tmp_path: Path) -> None:
    path, doc = _coco_doc(tmp_path)
    doc["categories"] = "with_mask"
    path.write_text(json.dumps(doc))
    res = read_folder(path, "coco", {}, CLASSES)
    assert res.samples == []
    assert [i.reason for i in res.issues] == [
        "malformed COCO JSON: field 'categories' missing or not a list"
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("0 0.5 zero 0.2 0.2", "line 1: field 3 (y_center) is 'zero', not a number"),
        ("x 0.5 0.5 0.2 0.2", "line 1: field 1 (class) is 'x', not a whole number"),
        ("0 0.5 0.5 0.2", "expected 5 fields (class x_center y_center width height), got 4"),
    ],
)
def test_malformed_yolo_line_names_the_field(tmp_path: Path, line: str, reason: str) -> None:
    yolo = _as_yolo(write_voc(tmp_path / "voc", 2, seed=5), tmp_path / "yolo")
    (yolo / "labels" / "img000.txt").write_text(line + "\n")
    res = read_folder(yolo, "auto", {}, CLASSES)
    assert [i.path.name for i in res.issues] == ["img000.jpg"]
    assert reason in res.issues[0].reason


def test_malformed_voc_box_names_object_and_field(tmp_path: Path) -> None:
    voc = write_voc(tmp_path / "voc", 2, seed=6)
    xml = voc / "annotations" / "img001.xml"
    first_xmax = xml.read_text().split("<xmax>")[1].split("<")[0]
    xml.write_text(xml.read_text().replace(f"<xmax>{first_xmax}<", "<xmax>wide<", 1))
    res = read_folder(voc, "auto", {}, CLASSES)
    assert [i.path.name for i in res.issues] == ["img001.xml"]
    assert res.issues[0].reason.startswith("object 1 (")
    assert "bndbox/xmax is 'wide', not a number" in res.issues[0].reason


def test_evaluate_takes_coco_with_a_class_map_and_gives_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    voc = write_voc(tmp_path / "voc", 3, seed=2)
    coco = _as_coco(voc, tmp_path / "coco", {"without_mask": "Bare Face"})
    report = tmp_path / "r.json"
    argv = ["models", "evaluate", "--data", str(coco), "--weights", str(WEIGHTS), "--threads", "1"]
    argv += ["--map", "Bare Face=without_mask", "--bootstrap", "50", "--json", str(report)]
    assert main(argv) == 0
    assert "95% bootstrap intervals (50 resamples" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert (data["images"], data["skipped"], data["bootstrap_resamples"]) == (3, 0, 50)
    assert [c["instances"] for c in data["classes"]] == [2, 2, 2]
    lo, hi = data["ci"]["map50"]
    assert 0.0 <= lo <= data["map50"] <= hi <= 1.0


def test_folders_labelled_elsewhere_are_read_whole_and_every_leftover_is_named(
    tmp_path: Path,
) -> None:
    """Layouts other people use: VOC in sub-folders per camera, COCO file names with their
    sub-folder; and what cannot count is said, not silently left out of the numbers."""
    voc = write_voc(tmp_path / "voc", 4, seed=8)
    flat = _boxes_of(voc)
    nested = tmp_path / "nested"
    for sub in ("annotations", "images"):
        (nested / sub / "cam1").mkdir(parents=True)
        for f in (voc / sub).iterdir():
            shutil.copy(f, nested / sub / "cam1" / f.name)
    assert _boxes_of(nested) == flat
    coco = _as_coco(voc, tmp_path / "coco")
    (coco / "images" / "cam1").mkdir()
    for f in list((coco / "images").glob("*.jpg")):
        f.rename(coco / "images" / "cam1" / f.name)
    ann = next(coco.rglob("*.json"))
    doc = json.loads(ann.read_text())
    for im in doc["images"]:
        im["file_name"] = f"cam1/{im['file_name']}"
    ann.write_text(json.dumps(doc))
    assert _boxes_of(coco) == flat
    # an image without its XML, a YOLO label without its image: named, not dropped unsaid
    (voc / "annotations" / "img002.xml").unlink()
    assert [(i.path.name, i.reason) for i in read_folder(voc, "auto", {}, CLASSES).issues] == [
        ("img002.jpg", "no VOC .xml for this image")
    ]
    yolo = _as_yolo(write_voc(tmp_path / "voc2", 2, seed=9), tmp_path / "yolo")
    (yolo / "images" / "img001.jpg").unlink()
    issues = read_folder(yolo, "auto", {}, CLASSES).issues
    assert [(i.path.name, i.reason) for i in issues] == [
        ("img001.txt", "no image for this label file")
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    (reason,) = [i.reason for i in read_folder(empty, "auto", {}, CLASSES).issues]
    assert reason.startswith("no labels found: no VOC .xml, COCO .json or YOLO")


def test_a_truncated_photo_and_a_map_to_no_class_are_refused_by_name(tmp_path: Path) -> None:
    voc = write_voc(tmp_path / "voc", 2, seed=10)
    jpg = voc / "images" / "img000.jpg"
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])  # decodes, half grey
    res = read_folder(voc, "auto", {}, CLASSES)
    assert [i.path.name for i in res.issues] == ["img000.xml"]
    assert res.issues[0].reason.startswith("truncated or corrupt image")
    other = write_voc(tmp_path / "other", 3, seed=11)
    res = read_folder(other, "auto", dict.fromkeys(CLASSES, "withmask"), CLASSES)
    assert res.samples == []
    assert all(
        "mapped to 'withmask', which is not a class of the model" in i.reason for i in res.issues
    )
    # a target in another spelling of a model class is that class
    ok = read_folder(other, "auto", {c: c.replace("_", " ").title() for c in CLASSES}, CLASSES)
    assert ok.issues == []


def test_broken_coco_ids_and_sizes_are_named_not_tracebacks(tmp_path: Path) -> None:
    coco = _as_coco(write_voc(tmp_path / "voc", 3, seed=12), tmp_path / "coco")
    ann = next(coco.rglob("*.json"))
    doc = json.loads(ann.read_text())
    doc["images"][0]["id"] = [1]  # an id must be a number or text
    doc["images"][1]["width"] = "abc"
    doc["annotations"][-1]["image_id"] = {"a": 1}
    ann.write_text(json.dumps(doc))
    res = read_folder(coco, "auto", {}, CLASSES)
    reasons = [i.reason for i in res.issues]
    assert any("images[0]: needs an id (a number or text)" in r for r in reasons)
    assert "field width is 'abc', not a number" in reasons
    assert any("field image_id is {'a': 1}" in r for r in reasons)
    wide = next(i for i in res.issues if "width" in i.reason)
    assert wide.path.parent.name == "images"  # the photo's own path, not annotations/…
