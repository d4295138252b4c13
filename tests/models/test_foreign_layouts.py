"""Folders as other tools and datasets lay them out (Roboflow, CVAT, labelImg, the COCO and VOC
releases, Windows editors) read as the same boxes, and what is assumed is said."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.sources import ReadResult, read_folder
from tests.models.helpers import CLASSES, voc_xml, write_voc

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"
Boxes = dict[str, list[tuple[str, int, int, int, int]]]


def _boxes(res: ReadResult) -> Boxes:
    return {
        s.image.stem.lower(): sorted(
            (b.cls, round(b.x1), round(b.y1), round(b.x2), round(b.y2)) for b in s.boxes
        )
        for s in res.samples
    }


def _read(folder: Path, class_map: dict[str, str | None] | None = None) -> ReadResult:
    return read_folder(folder, "auto", class_map or {}, CLASSES)


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    return write_voc(tmp_path / "voc", 4, seed=21)


def _yolo_labels(voc: Path, names: list[str]) -> dict[str, str]:
    """Label file text per image stem, class indices into ``names``."""
    out = {}
    for s in _read(voc).samples:
        out[s.image.stem] = "".join(
            f"{names.index(b.cls)} {(b.x1 + b.x2) / 2 / s.width_px:.6f} "
            f"{(b.y1 + b.y2) / 2 / s.height_px:.6f} {(b.x2 - b.x1) / s.width_px:.6f} "
            f"{(b.y2 - b.y1) / s.height_px:.6f}\n"
            for b in s.boxes
        )
    return out


def test_voc_with_other_folder_and_file_name_spellings(voc: Path, tmp_path: Path) -> None:
    want = _boxes(_read(voc))
    # Windows tools: Images/ + Annotations/; <filename> in another case or without extension
    odd = tmp_path / "odd"
    (odd / "Images").mkdir(parents=True)
    (odd / "Annotations").mkdir()
    for k, img in enumerate(sorted((voc / "images").iterdir())):
        shutil.copy(img, odd / "Images" / f"Frame_{img.stem}.JPG")
        xml = (voc / "annotations" / f"{img.stem}.xml").read_text()
        filename = f"frame_{img.stem}.jpg" if k % 2 else f"Frame_{img.stem}"
        xml = xml.replace(f"<filename>{img.name}</filename>", f"<filename>{filename}</filename>")
        (odd / "Annotations" / f"label{k}.xml").write_text(xml)
    res = _read(odd)
    assert res.issues == []
    assert _boxes(res) == {f"frame_{k}": v for k, v in want.items()}
    # the VOC release unpacked: the folder holds VOCdevkit/VOC2007/{Annotations,JPEGImages}
    devkit = tmp_path / "release" / "VOCdevkit" / "VOC2007"
    shutil.copytree(voc / "images", devkit / "JPEGImages")
    shutil.copytree(voc / "annotations", devkit / "Annotations")
    res = _read(tmp_path / "release")
    assert (res.issues, _boxes(res)) == ([], want)
    res = _read(devkit / "Annotations")  # the annotations folder given for the set
    assert (res.issues, _boxes(res)) == ([], want)


def test_a_copied_voc_xml_does_not_count_one_photo_twice(voc: Path) -> None:
    """labelImg users copy an .xml to start the next photo; its <filename> still names the
    first one, which was then scored twice while the other photo silently vanished."""
    shutil.copy(voc / "annotations" / "img000.xml", voc / "annotations" / "img001.xml")
    res = _read(voc)
    assert sorted(s.image.name for s in res.samples) == ["img000.jpg", "img002.jpg", "img003.jpg"]
    assert sorted((i.path.name, i.reason) for i in res.issues) == [
        ("img001.jpg", "no VOC .xml for this image"),
        ("img001.xml", "its <filename> names an image another .xml already labels"),
    ]


def test_roboflow_yolo_export_and_its_data_yaml(voc: Path, tmp_path: Path) -> None:
    names = ["mask_weared_incorrect", "with_mask", "without_mask"]  # Roboflow sorts them
    labels = _yolo_labels(voc, names)
    export = tmp_path / "export"
    for split, stems in (("train", ["img000", "img001"]), ("valid", ["img002"]), ("test", [])):
        for sub in ("images", "labels"):
            (export / split / sub).mkdir(parents=True)
        for stem in stems:
            shutil.copy(voc / "images" / f"{stem}.jpg", export / split / "images")
            (export / split / "labels" / f"{stem}.txt").write_text(labels[stem])
    (export / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
        f"nc: 3\nnames: {names}\n"
    )
    want = _boxes(_read(voc))
    whole = _read(export)
    assert (whole.issues, whole.unlabelled) == ([], [])
    assert _boxes(whole) == {k: want[k] for k in ("img000", "img001", "img002")}
    assert _boxes(_read(export / "valid")) == {"img002": want["img002"]}  # names from above
    assert _boxes(_read(export / "data.yaml")) == {"img002": want["img002"]}  # its val: split


def test_yolo_labels_beside_the_images(voc: Path, tmp_path: Path) -> None:
    """labelImg's YOLO mode (classes.txt and x.txt beside x.jpg) and CVAT's YOLO 1.1 export
    (obj.names, obj_train_data/ with images and labels together)."""
    labels = _yolo_labels(voc, CLASSES)
    want = _boxes(_read(voc))
    labelimg, cvat = tmp_path / "labelimg", tmp_path / "cvat"
    shutil.copytree(voc / "images", labelimg)
    shutil.copytree(voc / "images", cvat / "obj_train_data")
    for stem, text in labels.items():
        (labelimg / f"{stem}.txt").write_text(text)
        (cvat / "obj_train_data" / f"{stem}.txt").write_text(text)
    (labelimg / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (cvat / "obj.names").write_text("\n".join(CLASSES) + "\n")
    (cvat / "train.txt").write_text("data/obj_train_data/img000.jpg\n")
    for folder in (labelimg, cvat):
        res = _read(folder)
        assert (res.issues, res.unlabelled, _boxes(res)) == ([], [], want)


def test_yolo_files_as_windows_and_numpy_write_them(voc: Path, tmp_path: Path) -> None:
    """A byte-order mark and CRLF, a class index written as 1.0, a polygon line (ultralytics
    segments), .tiff images, Labels/ capitalised and data.yml: the same boxes."""
    import cv2

    labels = _yolo_labels(voc, CLASSES)
    want = _boxes(_read(voc))
    yolo = tmp_path / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "Labels").mkdir()
    for img in (voc / "images").iterdir():
        cv2.imwrite(str(yolo / "images" / f"{img.stem}.tiff"), cv2.imread(str(img)))
    for stem, text in labels.items():
        lines = text.splitlines()
        if stem == "img001":  # numpy.savetxt: every field a float
            lines = [" ".join(f"{float(v):.18e}" for v in ln.split()) for ln in lines]
        if stem == "img002":  # the first box as a four-point polygon
            c, cx, cy, w, h = (float(v) for v in lines[0].split())
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            lines[0] = f"{int(c)} {x1:.6f} {y1:.6f} {x2:.6f} {y1:.6f} {x2:.6f} {y2:.6f} {x1} {y2}"
        (yolo / "Labels" / f"{stem}.txt").write_bytes(
            b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n"
        )
    (yolo / "data.yml").write_text(f"names: {CLASSES}\n", encoding="utf-8-sig")
    res = _read(yolo)
    assert (res.issues, res.unlabelled, _boxes(res)) == ([], [], want)


def test_yolo_names_files_that_are_broken_or_have_gaps(voc: Path, tmp_path: Path) -> None:
    yolo = tmp_path / "yolo"
    shutil.copytree(voc / "images", yolo / "images")
    (yolo / "labels").mkdir()
    (yolo / "labels" / "img000.txt").write_text("2 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n")
    data = yolo / "data.yaml"
    for text, reason in (
        ("names: [with_mask, without_mask\n", "data.yaml: not readable YAML (while parsing"),
        ("names: {a: with_mask}\n", "data.yaml: names must map class ids 0, 1, … to names"),
        ("- with_mask\n", "no classes.txt, obj.names or data.yaml with names"),
    ):
        data.write_text(text)
        (issue,) = _read(yolo).issues
        assert (issue.path, issue.reason[: len(reason)]) == (yolo, reason)
    # ids with a gap: 2 is without_mask, 1 is no class (it was read as the next name)
    data.write_text("names: {0: with_mask, 2: without_mask}\n")
    res = _read(yolo)
    assert [(i.path.name, i.reason) for i in res.issues] == [
        ("img000.jpg", "line 2: unknown class index 1 (field 1; the folder names 2 classes)")
    ]
    (yolo / "labels" / "img000.txt").write_text("2 0.5 0.5 0.25 0.25\n")
    assert _boxes(_read(yolo))["img000"] == [("without_mask", 36, 36, 60, 60)]
    # a stale classes.txt that names the classes otherwise: which one is right is unknown
    (yolo / "classes.txt").write_text("with_mask\nwith_mask\nmask_weared_incorrect\n")
    (issue,) = _read(yolo).issues
    assert issue.reason.startswith("classes.txt and data.yaml name different classes")
    (yolo / "labels" / "img000.txt").write_text("1 0.5 0.5 0.25 0.25\n")
    (yolo / "classes.txt").write_text("With Mask\nWithout-Mask\n")  # the same, spelt otherwise
    data.write_text("names: [with_mask, without_mask]\n")
    assert _read(yolo).issues == []


def test_yolo_images_without_a_label_file_are_said(voc: Path, tmp_path: Path) -> None:
    yolo = tmp_path / "yolo"
    shutil.copytree(voc / "images", yolo / "images")
    (yolo / "labels").mkdir()
    for stem, text in _yolo_labels(voc, CLASSES).items():
        if stem != "img001":
            (yolo / "labels" / f"{stem}.txt").write_text(text)
    (yolo / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    res = _read(yolo)
    assert res.issues == []
    assert [p.name for p in res.unlabelled] == ["img001.jpg"]
    assert next(s for s in res.samples if s.image.stem == "img001").boxes == ()


def test_coco_release_layout_roboflow_coco_export_and_a_bom(voc: Path, tmp_path: Path) -> None:
    samples = _read(voc).samples
    want = _boxes(_read(voc))

    def doc(stems: list[str]) -> str:
        images = [
            {"id": k, "file_name": s.image.name, "width": s.width_px, "height": s.height_px}
            for k, s in enumerate(samples)
            if s.image.stem in stems
        ]
        anns = [
            {
                "id": 10 * k + j,
                "image_id": k,
                "category_id": CLASSES.index(b.cls) + 1,
                "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
                "iscrowd": 0,
            }
            for k, s in enumerate(samples)
            if s.image.stem in stems
            for j, b in enumerate(s.boxes)
        ]
        cats = [{"id": 0, "name": "faces", "supercategory": "none"}]
        cats += [{"id": k + 1, "name": c, "supercategory": "faces"} for k, c in enumerate(CLASSES)]
        return json.dumps({"images": images, "annotations": anns, "categories": cats})

    stems = sorted(want)
    release = tmp_path / "coco"  # annotations/instances_val2017.json ↔ val2017/
    shutil.copytree(voc / "images", release / "val2017")
    (release / "annotations").mkdir()
    (release / "annotations" / "instances_val2017.json").write_text(doc(stems))
    assert (_read(release).issues, _boxes(_read(release))) == ([], want)
    export = tmp_path / "roboflow"  # train/, valid/, each with _annotations.coco.json
    for split, part in (("train", stems[:2]), ("valid", stems[2:])):
        (export / split).mkdir(parents=True)
        for stem in part:
            shutil.copy(voc / "images" / f"{stem}.jpg", export / split)
        (export / split / "_annotations.coco.json").write_text(doc(part), encoding="utf-8-sig")
    (export / "README.roboflow.txt").write_text("exported\n")
    assert (_read(export).issues, _boxes(_read(export))) == ([], want)


def test_a_file_that_is_no_dataset_is_named_as_such(voc: Path) -> None:
    (issue,) = _read(voc / "annotations" / "img000.xml").issues
    assert issue.reason.startswith("a file that is not a COCO .json or a YOLO dataset .yaml")


def test_evaluate_says_how_many_photos_had_no_label_file(
    voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    yolo = tmp_path / "yolo"
    shutil.copytree(voc / "images", yolo / "images")
    (yolo / "labels").mkdir()
    (yolo / "labels" / "img000.txt").write_text(_yolo_labels(voc, CLASSES)["img000"])
    (yolo / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    report = tmp_path / "r.json"
    argv = ["models", "evaluate", "--data", str(yolo), "--weights", str(WEIGHTS)]
    assert main([*argv, "--threads", "1", "--bootstrap", "0", "--json", str(report)]) == 0
    assert "4 images (0 skipped), 3 without a label file read as having no faces" in (
        capsys.readouterr().out
    )
    assert json.loads(report.read_text())["unlabelled"] == 3


def test_voc_xml_beside_images_with_a_stray_name_still_reads(tmp_path: Path) -> None:
    """A <filename> naming a file that is not there falls back to the .xml's own name."""
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((40, 50, 3), 128, np.uint8))
    xml = voc_xml("IMG_2031.JPG", 50, 40, [("with_mask", 5, 5, 20, 20)])
    (tmp_path / "a.xml").write_text(xml)
    res = _read(tmp_path)
    assert (res.issues, _boxes(res)) == ([], {"a": [("with_mask", 5, 5, 20, 20)]})


def test_a_big_coco_file_with_categories_last_and_one_file_per_split(
    voc: Path, tmp_path: Path
) -> None:
    """The COCO release writes ``categories`` after megabytes of annotations (the file was
    taken for no dataset); two split files sharing ``images/`` were read as the first alone."""
    samples = _read(voc).samples
    images = [
        {"id": k, "file_name": s.image.name, "width": s.width_px, "height": s.height_px}
        for k, s in enumerate(samples)
    ]
    polygon = [[float(v % 90) for v in range(4000)]]  # segmentations make COCO files big
    anns = [
        {
            "id": 10 * k + j,
            "image_id": k,
            "category_id": CLASSES.index(b.cls),
            "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
            "segmentation": polygon,
            "iscrowd": 0,
        }
        for k, s in enumerate(samples)
        for j, b in enumerate(s.boxes)
    ]
    cats = [{"id": k, "name": c} for k, c in enumerate(CLASSES)]
    coco = tmp_path / "coco"
    shutil.copytree(voc / "images", coco / "images")
    (coco / "annotations").mkdir()
    big = {"images": images, "annotations": anns * 20, "categories": cats}
    text = json.dumps(big)
    assert text.index('"categories"') > 2_000_000
    (coco / "annotations" / "instances_val.json").write_text(text)
    res = _read(coco)
    assert res.issues == []
    assert len(res.samples) == 4
    small = {"images": images[:1], "annotations": anns[:1], "categories": cats}
    (coco / "annotations" / "instances_train.json").write_text(json.dumps(small))
    (issue,) = _read(coco).issues
    assert issue.reason == (
        "2 COCO files (instances_train.json, instances_val.json): give the one to evaluate "
        "as --data"
    )
    assert len(_read(coco / "annotations" / "instances_train.json").samples) == 1
