"""Tiny labelled image folders the models tests render themselves (no shared data)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASSES = ["with_mask", "without_mask", "mask_weared_incorrect"]
COLOURS = {
    "with_mask": (200, 80, 40),
    "without_mask": (40, 40, 220),
    "mask_weared_incorrect": (40, 200, 40),
}


def voc_xml(filename: str, w: int, h: int, objects: list[tuple[str, int, int, int, int]]) -> str:
    """A Pascal VOC annotation string."""
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{w}</width>"
        f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>"
    )


def write_voc(folder: Path, count: int, seed: int = 0, size: int = 96) -> Path:
    """Render ``count`` images with coloured discs per class and their VOC annotations."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = np.full((size, size, 3), 128, np.uint8)
        img[:] += rng.integers(0, 30, (size, size, 1), dtype=np.uint8)
        objects = []
        for k in range(2):
            cls = CLASSES[(i + k) % 3]
            r = int(rng.integers(10, 16))
            cx = 24 + k * 48 + int(rng.integers(-4, 5))
            cy = int(rng.integers(r + 2, size - r - 2))
            cv2.circle(img, (cx, cy), r, COLOURS[cls], -1)
            objects.append((cls, cx - r, cy - r, cx + r, cy + r))
        name = f"img{i:03d}.jpg"
        cv2.imwrite(str(folder / "images" / name), img)
        (folder / "annotations" / f"img{i:03d}.xml").write_text(voc_xml(name, size, size, objects))
    return folder


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with a minimal EXIF block whose Orientation tag is ``orientation``.

    6 means "rotate 90° clockwise to display": what phones write for a portrait photo.
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    tiff = (
        b"MM\x00\x2a\x00\x00\x00\x08"  # big-endian TIFF header, first IFD at 8
        + b"\x00\x01"  # one entry
        + b"\x01\x12\x00\x03\x00\x00\x00\x01"  # Orientation, SHORT, count 1
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
        + b"\x00\x00\x00\x00"  # no next IFD
    )
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]
