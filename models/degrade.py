"""A degraded-camera test set: held-out photos made to look like a canteen's ceiling camera.

Each kind of degradation is applied on its own (so the card can say which one hurts) and
all together (``cctv``). Every random choice comes from a generator seeded by the kind and
the image's file name, so the same photo always gives the same pixels, on any machine and in
any order. Boxes follow the pixels; a face that ends up less than ``MIN_FACE_PX`` tall is
marked ``difficult`` (no one labels a 4-pixel face on a real CCTV frame, and ``evaluate``
then neither requires nor penalises it).

- ``small``: the photo shrunk so that its median face is 14-24 px tall (a face 3-4 m from
  a 1080p ceiling camera), never enlarged.
- ``blur``: motion blur, a 7-13 px line at a random angle (someone walking past at 1/25 s).
- ``noise``: Gaussian sensor noise, sigma 10-18 (of 255).
- ``jpeg``: JPEG quality 10-20 (a sub-stream at a low bit rate).
- ``low_light``: brightness x0.2-0.35 with sensor noise (sigma 3): an unlit corner, no gain.
- ``top_down``: a camera above and in front: the picture foreshortened to 65-80 % of its
  height and narrowed by 10-20 % per side at the bottom (keystone).
- ``cctv``: all at once, milder each: small (20-28 px), blur 5 px, brightness x0.5,
  noise sigma 6, JPEG quality 30.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.sources import Box, Sample, load_image

KINDS = ("small", "blur", "noise", "jpeg", "low_light", "top_down", "cctv")
MIN_FACE_PX = 6.0

Image = npt.NDArray[np.uint8]


def rng_for(kind: str, name: str) -> np.random.Generator:
    """The generator of one (kind, image): seeded by a hash of both."""
    digest = hashlib.sha256(f"degrade:{kind}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _scale(img: Image, boxes: Sequence[Box], s: float) -> tuple[Image, list[Box]]:
    import cv2

    if s >= 1.0:
        return img, list(boxes)
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = np.asarray(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), np.uint8)
    sx, sy = nw / w, nh / h
    return small, [
        replace(b, x1=b.x1 * sx, y1=b.y1 * sy, x2=b.x2 * sx, y2=b.y2 * sy) for b in boxes
    ]


def _small(img: Image, boxes: Sequence[Box], target_px: float) -> tuple[Image, list[Box]]:
    heights = [b.y2 - b.y1 for b in boxes if not b.difficult]
    if not heights:
        return img, list(boxes)
    return _scale(img, boxes, min(1.0, target_px / float(np.median(heights))))


def motion_blur(img: Image, length: int, angle_deg: float) -> Image:
    import cv2

    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    k = np.asarray(cv2.warpAffine(line, rot, (length, length)), np.float32)
    k /= max(float(k.sum()), 1e-6)
    return np.asarray(cv2.filter2D(img, -1, k), np.uint8)


def sensor_noise(img: Image, sigma: float, rng: np.random.Generator) -> Image:
    noisy = img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def jpeg_artefacts(img: Image, quality: int) -> Image:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def _dark(img: Image, factor: float, rng: np.random.Generator) -> Image:
    return sensor_noise(np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8), 3.0, rng)


def _top_down(
    img: Image, boxes: Sequence[Box], squash: float, inset: float
) -> tuple[Image, list[Box]]:
    import cv2

    h, w = img.shape[:2]
    nh = max(1, round(h * squash))
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = np.array([[0, 0], [w, 0], [w * (1 - inset), nh], [w * inset, nh]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    out = np.asarray(
        cv2.warpPerspective(img, m, (w, nh), flags=cv2.INTER_AREA, borderValue=(114, 114, 114)),
        np.uint8,
    )
    moved = []
    for b in boxes:
        corners = np.array([[[b.x1, b.y1], [b.x2, b.y1], [b.x2, b.y2], [b.x1, b.y2]]], np.float32)
        p = np.asarray(cv2.perspectiveTransform(corners, m), np.float32)[0]
        moved.append(
            replace(
                b,
                x1=float(max(0.0, p[:, 0].min())),
                y1=float(max(0.0, p[:, 1].min())),
                x2=float(min(w, p[:, 0].max())),
                y2=float(min(nh, p[:, 1].max())),
            )
        )
    return out, moved


def degrade(img: Image, boxes: Sequence[Box], kind: str, name: str) -> tuple[Image, list[Box]]:
    """``img`` and its boxes after one kind of degradation (deterministic per kind + name)."""
    rng = rng_for(kind, name)
    out, bx = img, list(boxes)
    if kind == "small":
        out, bx = _small(img, boxes, float(rng.uniform(14, 24)))
    elif kind == "blur":
        out = motion_blur(img, int(rng.integers(7, 14)), float(rng.uniform(0, 180)))
    elif kind == "noise":
        out = sensor_noise(img, float(rng.uniform(10, 18)), rng)
    elif kind == "jpeg":
        out = jpeg_artefacts(img, int(rng.integers(10, 21)))
    elif kind == "low_light":
        out = _dark(img, float(rng.uniform(0.2, 0.35)), rng)
    elif kind == "top_down":
        out, bx = _top_down(img, boxes, float(rng.uniform(0.65, 0.8)), float(rng.uniform(0.1, 0.2)))
    elif kind == "cctv":
        out, bx = _small(img, boxes, float(rng.uniform(20, 28)))
        out = motion_blur(out, 5, float(rng.uniform(0, 180)))
        out = _dark(out, 0.5, rng)
        out = sensor_noise(out, 6.0, rng)
        out = jpeg_artefacts(out, 30)
    else:
        raise ValueError(f"unknown degradation {kind!r} (one of {', '.join(KINDS)})")
    return out, [
        replace(b, difficult=b.difficult or (b.y2 - b.y1) < MIN_FACE_PX)
        for b in bx
        if b.x2 - b.x1 >= 1 and b.y2 - b.y1 >= 1
    ]


def write_voc_sample(img: Image, boxes: Sequence[Box], folder: Path, stem: str) -> None:
    """One image (PNG: lossless, so a ``jpeg`` degradation is exactly what was made) and its
    Pascal VOC annotation, classes already the project's."""
    import cv2

    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    name = f"{stem}.png"
    cv2.imwrite(str(folder / "images" / name), img)
    h, w = img.shape[:2]
    objs = "".join(
        f"<object><name>{b.cls}</name>"
        + ("<difficult>1</difficult>" if b.difficult else "")
        + f"<bndbox><xmin>{b.x1:.2f}</xmin><ymin>{b.y1:.2f}</ymin>"
        f"<xmax>{b.x2:.2f}</xmax><ymax>{b.y2:.2f}</ymax></bndbox></object>"
        for b in boxes
    )
    (folder / "annotations" / f"{stem}.xml").write_text(
        f"<annotation><filename>{name}</filename><size><width>{w}</width>"
        f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>",
        encoding="utf-8",
    )


def write_degraded(samples: Sequence[Sample], out: Path, kinds: Sequence[str] = KINDS) -> int:
    """Write ``out/<kind>/`` (VOC) for every kind from ``samples``; return images per kind."""
    written = 0
    for s in samples:
        img = load_image(s)
        if img is None:
            continue
        written += 1
        for kind in kinds:
            d_img, d_boxes = degrade(img, s.boxes, kind, s.image.name)
            write_voc_sample(d_img, d_boxes, out / kind, s.image.stem)
    return written
