"""Training-time face pasting: more contexts for the rare class.

The incorrectly-worn class has few real faces (the grouped split's training side holds about a
hundred, the held-out side eleven), and the model card shows that class holding the edge
default's mAP50 down: it is a third of the mean and most of its faces are called masked. The
synthetic MaskedFace-Net faces are large, centred and clean, so on their own they teach what a
studio portrait looks like. This transform cuts every training face of the chosen classes out
once, and at training time pastes one or two of them into other training images, at the size of
the faces already there (crowd photos: small; close-ups: large), with a feathered elliptical edge
so the model cannot learn a rectangle's border, and a colour match to the spot it lands on. The
pasted face brings its box and class; it never covers a labelled face.

It runs after mosaic and the affine step, before the camera faults (``models.camera_augment``),
so pasted faces are blurred, dimmed and compressed like the rest of the image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from models.sources import IMAGE_SUFFIXES, SkipFileError, names_from_yaml, parse_yolo_txt

logger = logging.getLogger(__name__)

MARGIN = 0.15  # context cut around a face, per side, as a fraction of its box
MIN_SOURCE_PX = 12  # faces shorter than this in their own photo are too coarse to paste
MAX_BANK_SIDE = 160  # bank crops are shrunk to at most this many pixels
SIZE_JITTER = (0.8, 1.25)  # pasted height = a face's height in the target image x this
FALLBACK_HEIGHT_FRACTION = (0.04, 0.25)  # of the image height, for images with no faces
MAX_TRIES = 12  # placements tried per pasted face before giving up on it


@dataclass(frozen=True, slots=True)
class BankFace:
    """One face cut from a training image with ``MARGIN`` around it."""

    pixels: np.ndarray  # BGR uint8, the crop with its margin
    cls: int
    box: tuple[float, float, float, float]  # the face inside ``pixels``: x1, y1, x2, y2
    source: str = ""  # the recipe source it came from (``prepare`` names files ``s<i>_...``)


def build_bank(image_dir: Path, names: list[str], wanted: set[str]) -> list[BankFace]:
    """Cut every face of the ``wanted`` classes out of the training images in ``image_dir``.

    ``image_dir`` is ``<dataset>/images/<split>`` as ``models prepare`` writes it; each label
    file is read from ``<dataset>/labels/<split>`` by the project's YOLO reader, so a malformed
    one is reported and skipped as everywhere else. Images listed more than once an epoch (the
    recipe's ``repeat_with``) are one file, so each face enters the bank once.
    """
    labels_dir = image_dir.parent.parent / "labels" / image_dir.name
    keep_only = {n: (n if n in wanted else None) for n in names}  # other classes dropped
    bank: list[BankFace] = []
    for image in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        label = labels_dir / image.relative_to(image_dir).with_suffix(".txt")
        if not label.is_file():
            continue
        try:
            sample = parse_yolo_txt(label, image, names, keep_only, names)
        except SkipFileError as exc:
            logger.warning("face paste: %s skipped: %s", image, exc)
            continue
        faces = [b for b in sample.boxes if b.y2 - b.y1 >= MIN_SOURCE_PX]
        if not faces:
            continue  # faces smaller than MIN_SOURCE_PX in their own photo are too coarse
        img = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if img is None:
            logger.warning("face paste: cannot read %s, skipped", image)
            continue
        h, w = img.shape[:2]
        for face in faces:
            fw, fh = face.x2 - face.x1, face.y2 - face.y1
            x1, y1 = max(0, round(face.x1 - MARGIN * fw)), max(0, round(face.y1 - MARGIN * fh))
            x2, y2 = min(w, round(face.x2 + MARGIN * fw)), min(h, round(face.y2 + MARGIN * fh))
            crop = img[y1:y2, x1:x2]
            scale = min(1.0, MAX_BANK_SIDE / max(crop.shape[:2]))
            if scale < 1.0:
                crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            bank.append(
                BankFace(
                    pixels=np.ascontiguousarray(crop),
                    cls=names.index(face.cls),
                    box=(
                        (face.x1 - x1) * scale,
                        (face.y1 - y1) * scale,
                        (face.x2 - x1) * scale,
                        (face.y2 - y1) * scale,
                    ),
                    source=image.name.split("_", 1)[0] if "_" in image.name else "",
                )
            )
    return bank


def feathered_ellipse(h: int, w: int) -> np.ndarray:
    """An alpha mask (float32, 0..1): an ellipse filling the crop, its edge blurred."""
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(
        mask, (w // 2, h // 2), (max(1, int(w * 0.46)), max(1, int(h * 0.48))), 0, 0, 360, 1.0, -1
    )
    k = max(3, (min(h, w) // 6) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def _overlaps(box: np.ndarray, boxes: np.ndarray) -> bool:
    if len(boxes) == 0:
        return False
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return bool(np.any((ix > 0) & (iy > 0)))


def paste(
    img: np.ndarray, boxes: np.ndarray, face: BankFace, height: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """Paste ``face`` so its face box is ``height`` px tall; return (image, face box) or None.

    ``boxes`` (xyxy pixels) are the faces already in ``img``; the pasted crop, margin
    included, must not touch any of them. None when no free spot was found.
    """
    ih, iw = img.shape[:2]
    fx1, fy1, fx2, fy2 = face.box
    scale = height / max(fy2 - fy1, 1e-6)
    ch, cw = face.pixels.shape[:2]
    nh, nw = round(ch * scale), round(cw * scale)
    if nh < 4 or nw < 4 or nh >= ih or nw >= iw:
        return None
    for _ in range(MAX_TRIES):
        x0 = int(rng.integers(0, iw - nw + 1))
        y0 = int(rng.integers(0, ih - nh + 1))
        region = np.array([x0, y0, x0 + nw, y0 + nh], np.float32)
        if _overlaps(region, boxes):
            continue
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(face.pixels, (nw, nh), interpolation=interp).astype(np.float32)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
            fx1, fx2 = cw - face.box[2], cw - face.box[0]
        spot = img[y0 : y0 + nh, x0 : x0 + nw].astype(np.float32)
        # Pull the crop's mean colour half way to the spot's, so it sits in the scene's light.
        crop = np.clip(crop + 0.5 * (spot.mean(axis=(0, 1)) - crop.mean(axis=(0, 1))), 0, 255)
        alpha = feathered_ellipse(nh, nw)[..., None]
        out = img.copy()
        out[y0 : y0 + nh, x0 : x0 + nw] = (alpha * crop + (1 - alpha) * spot).astype(np.uint8)
        box = np.array(
            [x0 + fx1 * scale, y0 + fy1 * scale, x0 + fx2 * scale, y0 + fy2 * scale], np.float32
        )
        return out, box
    return None


class FacePaste:
    """An ultralytics transform: with probability ``p`` paste one or two bank faces.

    A face is drawn by first drawing its source uniformly, then a face of that source: the
    recipe's 250 synthetic faces would otherwise outnumber the ~90 real ones three to one.
    """

    def __init__(self, bank: list[BankFace], p: float) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"face paste probability must be in [0, 1], got {p}")
        self.bank = bank
        self.p = p
        by_source: dict[str, list[int]] = {}
        for i, face in enumerate(bank):
            by_source.setdefault(face.source, []).append(i)
        self.by_source = [by_source[k] for k in sorted(by_source)]

    def draw(self, rng: np.random.Generator) -> BankFace:
        """One bank face, its source drawn uniformly first."""
        group = self.by_source[int(rng.integers(len(self.by_source)))]
        return self.bank[group[int(rng.integers(len(group)))]]

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        from ultralytics.utils.instance import Instances

        if not self.bank or np.random.random() >= self.p:
            return labels
        # np.random is what ultralytics seeds per dataloader worker, so runs stay seeded.
        rng = np.random.default_rng(np.random.randint(2**31))
        img = labels["img"]
        ih, iw = img.shape[:2]
        instances = labels["instances"]
        instances.convert_bbox(format="xyxy")
        instances.denormalize(iw, ih)
        boxes = np.asarray(instances.bboxes, np.float32).reshape(-1, 4)
        heights = boxes[:, 3] - boxes[:, 1]
        heights = heights[heights >= 6]
        new_boxes: list[np.ndarray] = []
        new_cls: list[int] = []
        for _ in range(int(rng.integers(1, 3))):
            face = self.draw(rng)
            if len(heights):
                height = float(rng.choice(heights)) * float(rng.uniform(*SIZE_JITTER))
            else:
                height = ih * float(rng.uniform(*FALLBACK_HEIGHT_FRACTION))
            taken = np.concatenate([boxes, np.array(new_boxes, np.float32).reshape(-1, 4)])
            placed = paste(img, taken, face, height, rng)
            if placed is None:
                continue
            img, box = placed
            new_boxes.append(box)
            new_cls.append(face.cls)
        if not new_boxes:
            return labels
        k = len(new_boxes)
        segments = instances.segments
        if not (len(segments) == len(boxes) > 0 and segments.shape[1] > 0):
            # Detection labels carry no polygons (ultralytics keeps an empty (0, M, 2) array);
            # give both sides zero points per box so concatenating needs no resampling.
            instances.segments = np.zeros((len(boxes), 0, 2), np.float32)
        added = Instances(
            np.stack(new_boxes),
            segments=np.zeros((k, instances.segments.shape[1], 2), np.float32),
            keypoints=None,
            bbox_format="xyxy",
            normalized=False,
        )
        labels["instances"] = Instances.concatenate([instances, added])
        labels["cls"] = np.concatenate(
            [
                np.asarray(labels["cls"], np.float32).reshape(-1, 1),
                np.array(new_cls, np.float32).reshape(-1, 1),
            ]
        )
        labels["img"] = np.ascontiguousarray(img)
        return labels


def train_image_dir(data_yaml: Path) -> Path:
    """The training images folder a dataset YAML names (ultralytics' layout)."""
    spec = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    base = Path(spec.get("path") or ".")
    base = base if base.is_absolute() else (data_yaml.parent / base)
    train = spec["train"]
    target = base / (train if isinstance(train, str) else train[0])
    if target.suffix == ".txt":  # a list file: its images live in the usual folder beside it
        target = base / "images" / "train"
    return target.resolve()


def from_dataset(data_yaml: Path, classes: Sequence[str], p: float) -> FacePaste:
    """The transform with its bank cut from ``data_yaml``'s training images.

    Build it before training starts, so the dataloader workers, forked later, share the bank.
    A class the dataset does not name, or a bank with no face, is an error: the flag would
    otherwise silently do nothing.
    """
    names = names_from_yaml(data_yaml) or []
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise ValueError(f"face paste: class(es) {unknown} not in {data_yaml}; it has {names}")
    bank = build_bank(train_image_dir(data_yaml), names, set(classes))
    if not bank:
        raise ValueError(f"face paste: no face of {list(classes)} in {data_yaml}'s training images")
    logger.info("face paste: %d faces of %s in the bank, p=%.2f", len(bank), list(classes), p)
    return FacePaste(bank, p)
