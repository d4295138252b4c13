"""Parsers: good and malformed Pascal VOC and YOLO-txt files are read or reported, never fatal."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.sources import load_image, read_folder, read_voc, read_yolo
from tests.models.helpers import CLASSES, voc_xml, with_exif_orientation

MAP = {"mask": "with_mask", "ignored_thing": None}


def _img(path: Path, w: int = 100, h: int = 80) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((h, w, 3), np.uint8))


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("<annotation><object>", "malformed XML"),
        (voc_xml("a.jpg", 100, 80, [("cat", 1, 1, 10, 10)]), "unknown class 'cat'"),
        (voc_xml("a.jpg", 100, 80, [("with_mask", 50, 10, 140, 30)]), "outside"),
        (voc_xml("a.jpg", 100, 80, [("with_mask", 50, 10, 40, 30)]), "outside"),
        (voc_xml("a.jpg", 100, 80, [("with_mask", "x", 1, 2, 3)]), "non-numeric"),
        ("<annotation><object><name>with_mask</name></object></annotation>", "bndbox"),
    ],
)
def test_bad_voc_file_is_reported_and_skipped(tmp_path: Path, xml: str, reason: str) -> None:
    _img(tmp_path / "images" / "a.jpg")
    _img(tmp_path / "images" / "b.jpg")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text(xml)
    good = voc_xml("b.jpg", 100, 80, [("mask", 1, 1, 101, 20), ("ignored_thing", 1, 1, 5, 5)])
    (tmp_path / "annotations" / "b.xml").write_text(good)
    res = read_voc(tmp_path, MAP, CLASSES)
    assert [s.image.name for s in res.samples] == ["b.jpg"]
    # mapped name, dropped class, and a 1 px overhang clipped to the image
    assert [(b.cls, b.x2) for b in res.samples[0].boxes] == [("with_mask", 100.0)]
    assert len(res.issues) == 1
    assert reason in res.issues[0].reason


def test_unreadable_image_and_missing_image_are_reported(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text(voc_xml("a.jpg", 10, 10, []))
    (tmp_path / "annotations" / "c.xml").write_text(voc_xml("c.jpg", 10, 10, []))
    res = read_voc(tmp_path, {}, CLASSES)
    assert res.samples == []
    assert sorted(i.reason for i in res.issues) == [
        "no image for this annotation",
        "unreadable image",
    ]


def test_not_a_voc_folder(tmp_path: Path) -> None:
    res = read_voc(tmp_path, {}, CLASSES)
    assert res.samples == []
    assert "not a VOC folder" in res.issues[0].reason


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("0 0.5 0.5 0.2", "expected 5 fields"),
        ("0 0.5 0.5 zero 0.2", "line 1"),
        ("7 0.5 0.5 0.2 0.2", "unknown class index 7"),
        ("0 0.95 0.5 0.3 0.2", "outside"),
    ],
)
def test_bad_yolo_file_is_reported_and_skipped(tmp_path: Path, label: str, reason: str) -> None:
    (tmp_path / "classes.txt").write_text("mask\nwithout_mask\n")
    _img(tmp_path / "images" / "a.jpg")
    _img(tmp_path / "images" / "b.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text(label + "\n")
    (tmp_path / "labels" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\n")
    res = read_folder(tmp_path, "auto", MAP, CLASSES)
    assert [s.image.name for s in res.samples] == ["b.jpg"]
    assert [b.cls for b in res.samples[0].boxes] == ["with_mask", "without_mask"]
    assert res.samples[0].boxes[0].x1 == pytest.approx(40.0)
    assert reason in res.issues[0].reason


def test_yolo_without_names_and_missing_label_is_background(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.jpg")
    assert "no classes.txt" in read_yolo(tmp_path, {}, CLASSES).issues[0].reason
    (tmp_path / "data.yaml").write_text("names: {0: with_mask}\n")
    res = read_yolo(tmp_path, {}, CLASSES)
    assert len(res.samples) == 1
    assert res.samples[0].boxes == ()


def test_class_names_of_another_labeller_are_folded_not_skipped(tmp_path: Path) -> None:
    """An unseen folder may write "Without Mask" or "MASK"; the table's names still apply."""
    _img(tmp_path / "images" / "a.jpg")
    (tmp_path / "annotations").mkdir()
    boxes = [
        ("Without Mask", 1, 1, 10, 10),
        ("MASK", 1, 1, 10, 10),
        ("mask-weared-incorrect", 1, 1, 10, 10),
        ("Ignored Thing", 1, 1, 10, 10),
    ]
    (tmp_path / "annotations" / "a.xml").write_text(voc_xml("a.jpg", 100, 80, boxes))
    res = read_voc(tmp_path, MAP, CLASSES)
    assert res.issues == []
    assert [b.cls for b in res.samples[0].boxes] == [
        "without_mask",
        "with_mask",
        "mask_weared_incorrect",
    ]


def test_labelimg_layout_xml_beside_each_image(tmp_path: Path) -> None:
    """labelImg saves each .xml next to its image; a Windows path in <filename> still finds it."""
    _img(tmp_path / "photo.png")
    xml = voc_xml("C:\\labels\\photo.png", 100, 80, [("no_mask", 10, 10, 30, 30)])
    (tmp_path / "a.xml").write_text(xml)
    res = read_folder(tmp_path, "auto", {"no_mask": "without_mask"}, CLASSES)
    assert res.issues == []
    assert [(s.image.name, [b.cls for b in s.boxes]) for s in res.samples] == [
        ("photo.png", ["without_mask"])
    ]


def test_voc_devkit_layout(tmp_path: Path) -> None:
    _img(tmp_path / "JPEGImages" / "a.jpg")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(
        voc_xml("a.jpg", 100, 80, [("with_mask", 1, 1, 20, 20)])
    )
    res = read_folder(tmp_path, "auto", {}, CLASSES)
    assert [s.image.name for s in res.samples] == ["a.jpg"]


def test_difficult_flag_is_kept(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.jpg")
    (tmp_path / "annotations").mkdir()
    xml = voc_xml("a.jpg", 100, 80, [("with_mask", 1, 1, 20, 20), ("with_mask", 30, 1, 50, 20)])
    xml = xml.replace("<bndbox>", "<difficult>1</difficult><bndbox>", 1)
    (tmp_path / "annotations" / "a.xml").write_text(xml)
    res = read_voc(tmp_path, {}, CLASSES)
    assert [b.difficult for b in res.samples[0].boxes] == [True, False]


def test_photo_labelled_without_its_exif_rotation(tmp_path: Path) -> None:
    """A portrait phone photo stored 120x60 with "rotate 90°" in EXIF: OpenCV shows it 60x120,
    but a tool that ignored EXIF labelled the stored 120x60 grid, and <size> says so."""
    stored = np.zeros((60, 120, 3), np.uint8)
    stored[10:30, 80:110] = 255  # the face, on the stored grid
    ok, jpeg = cv2.imencode(".jpg", stored)
    assert ok
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p.jpg").write_bytes(with_exif_orientation(jpeg.tobytes(), 6))
    assert cv2.imread(str(tmp_path / "images" / "p.jpg")).shape[:2] == (120, 60)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "p.xml").write_text(
        voc_xml("p.jpg", 120, 60, [("with_mask", 80, 10, 110, 30)])
    )
    res = read_voc(tmp_path, {}, CLASSES)
    assert res.issues == []
    sample = res.samples[0]
    assert (sample.width_px, sample.height_px, sample.ignore_orientation) == (120, 60, True)
    img = load_image(sample)
    assert img is not None
    assert img.shape[:2] == (60, 120)
    b = sample.boxes[0]
    assert img[int(b.y1) : int(b.y2), int(b.x1) : int(b.x2)].mean() > 200  # the face is there


def test_image_downscaled_after_labelling_gets_its_boxes_scaled(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.jpg", 100, 80)
    _img(tmp_path / "images" / "b.jpg", 100, 80)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text(
        voc_xml("a.jpg", 400, 320, [("with_mask", 40, 40, 120, 200)])
    )
    (tmp_path / "annotations" / "b.xml").write_text(
        voc_xml("b.jpg", 300, 80, [("with_mask", 40, 40, 120, 60)])
    )
    res = read_voc(tmp_path, {}, CLASSES)
    assert [(b.x1, b.y1, b.x2, b.y2) for b in res.samples[0].boxes] == [(10, 10, 30, 50)]
    assert [(i.path.name, i.reason) for i in res.issues] == [
        ("b.xml", "annotation is for a 300x80 image, the file is 100x80")
    ]


def test_recipe_maps_names_of_other_public_mask_sets() -> None:
    from models.prepare import load_config
    from models.sources import map_class

    table = load_config(Path(__file__).resolve().parents[2] / "models/configs/mask.yaml").class_map
    names = ["face_with_mask", "face_no_mask", "face_with_mask_incorrect", "No Mask", "Masked"]
    assert [map_class(n, table, CLASSES) for n in names] == [
        "with_mask",
        "without_mask",
        "mask_weared_incorrect",
        "without_mask",
        "with_mask",
    ]
