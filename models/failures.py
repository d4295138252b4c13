"""Find and draw the photos a detector gets most wrong: the model card's failure pictures.

The pictures in ``MODEL_CARD.md`` must show the shipped model's own mistakes, not a story
about them, and must be redrawn whenever the model changes, so they are chosen by a rule
rather than by hand: for each kind of error, the validation photos with the most of it at
the shipped threshold (ties broken by file name, so a rerun draws the same photos).

Kinds: ``missed`` (labelled faces with no detection of their class), ``false_alarm``
(detections matching no labelled face of their class), ``wrong_class`` (a labelled face
found in the wrong class, the typical fate of masks worn incorrectly). Faces the folder marks
``difficult`` are treated as ``evaluate`` treats them: never missed, and a detection finding one
is no false alarm.

Usage::

    python -m models.failures --data runs/datasets/mask/val_voc --out models/card
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.evaluate import box_arrays, box_iou, greedy_match, ignored_detections
from models.sources import Box, Sample, load_image, read_folder

logger = logging.getLogger(__name__)

KINDS = ("missed", "false_alarm", "wrong_class")
MATCH_IOU = 0.5
# BGR: with_mask green, without_mask red, mask_weared_incorrect orange; others grey.
CLASS_COLOURS = [(60, 180, 60), (40, 40, 230), (0, 150, 255)]
OTHER_COLOUR = (160, 160, 160)
LABEL_COLOUR = (255, 255, 255)


@dataclass(slots=True)
class PhotoErrors:
    """One photo's errors at the shipped threshold, with what is needed to draw them."""

    sample: Sample
    det_xyxy: npt.NDArray[np.float32]
    det_cls: npt.NDArray[np.int64]
    bad_gt: list[int] = field(default_factory=list)  # labelled boxes missed or misclassified
    false_dets: list[int] = field(default_factory=list)  # detections matching no labelled box
    confusions: list[tuple[str, str]] = field(default_factory=list)  # (labelled, detected as)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


def required_boxes(sample: Sample, names: Sequence[str]) -> list[Box]:
    """The labelled faces a model must find: of a known class and not marked ``difficult``."""
    return [b for b in sample.boxes if b.cls in names and not b.difficult]


def photo_errors(
    sample: Sample,
    names: Sequence[str],
    det_xyxy: npt.NDArray[np.float32],
    det_cls: npt.NDArray[np.int64],
    det_conf: npt.NDArray[np.float32],
) -> PhotoErrors:
    """Count one photo's misses, false alarms and wrong classes (IoU 0.5, one match per box)."""
    gt_xyxy, gt_cls = box_arrays(required_boxes(sample, names), names)
    hard_xyxy, hard_cls = box_arrays(
        [b for b in sample.boxes if b.cls in names and b.difficult], names
    )
    out = PhotoErrors(sample, det_xyxy, det_cls)
    iou = box_iou(det_xyxy, gt_xyxy)
    same = iou * (det_cls[:, None] == gt_cls[None, :])
    matched = greedy_match(same, det_conf, MATCH_IOU)  # evaluate's own matching
    used = matched >= 0
    found = np.zeros(len(gt_cls), bool)
    found[matched[used]] = True
    at50 = np.array([MATCH_IOU])
    hard = ignored_detections(det_xyxy, det_cls, used[:, None], hard_xyxy, hard_cls, at50)[:, 0]
    out.false_dets = [int(d) for d in np.where(~used & ~hard)[0]]
    out.counts["false_alarm"] = len(out.false_dets)
    for g in np.where(~found)[0]:
        out.bad_gt.append(int(g))
        overlaps = iou[:, g] >= MATCH_IOU if len(det_xyxy) else np.zeros(0, bool)
        out.counts["wrong_class" if overlaps.any() else "missed"] += 1
        if overlaps.any():
            best = int(np.argmax(iou[:, g]))
            out.confusions.append((names[int(gt_cls[g])], names[int(det_cls[best])]))
    return out


def select(
    errors: Sequence[PhotoErrors], kind: str, count: int, skip: frozenset[Path] = frozenset()
) -> list[PhotoErrors]:
    """The ``count`` photos with the most errors of ``kind`` (none with zero, none in ``skip``)."""
    ranked = sorted(
        (e for e in errors if e.counts[kind] > 0 and e.sample.image not in skip),
        key=lambda e: (-e.counts[kind], e.sample.image.name),
    )
    return ranked[:count]


def draw(err: PhotoErrors, names: Sequence[str], min_side: int = 640) -> npt.NDArray[np.uint8]:
    """The photo with failed labelled faces (thick white) and detections in their class colour.

    Detections that match a labelled face are 1 px, false alarms 2 px. Small photos are
    enlarged (nearest neighbour, so nothing is invented) until the longer side is ``min_side``.
    """
    import cv2

    img = load_image(err.sample)
    if img is None:
        raise ValueError(f"cannot read {err.sample.image}")
    scale = max(1, -(-min_side // max(img.shape[:2])))  # whole-number zoom, rounded up
    if scale > 1:
        img = np.asarray(
            cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), np.uint8
        )
    gt = required_boxes(err.sample, names)
    for g in err.bad_gt:
        b = gt[g]
        p1 = (round(b.x1 * scale), round(b.y1 * scale))
        p2 = (round(b.x2 * scale), round(b.y2 * scale))
        cv2.rectangle(img, p1, p2, LABEL_COLOUR, 3)
    false = set(err.false_dets)
    for k, (box, c) in enumerate(zip(err.det_xyxy, err.det_cls, strict=True)):
        colour = CLASS_COLOURS[int(c)] if int(c) < len(CLASS_COLOURS) else OTHER_COLOUR
        x1, y1, x2, y2 = (round(float(v) * scale) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2 if k in false else 1)
    return np.asarray(img, np.uint8)


def find_failures(
    data: Path, weights: Path, *, threads: int = 2
) -> tuple[list[PhotoErrors], list[str]]:
    """Run ``weights`` at its shipped threshold over a VOC folder; every photo's errors."""

    from edge.detect.onnx import OnnxDetector

    det = OnnxDetector(weights, threads=threads)
    names = det.class_names
    res = read_folder(data, "auto", {}, names)
    errors = []
    for s in res.samples:
        img = load_image(s)
        if img is None:
            continue
        d = det.detect([np.asarray(img, np.uint8)])[0]
        errors.append(photo_errors(s, names, d.xyxy, d.class_id, d.confidence))
    return errors, names


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``<kind>_<n>.jpg`` for the worst photos of each kind and print what they show."""
    import cv2

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="Pascal VOC folder (the validation split)")
    p.add_argument("--weights", default="models/weights/mask_yolo.onnx")
    p.add_argument("--out", default="models/card")
    p.add_argument("--count", type=int, default=1, help="photos per kind")
    args = p.parse_args(argv)
    errors, names = find_failures(Path(args.data), Path(args.weights))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown: set[Path] = set()  # one photo illustrates one kind
    for kind in KINDS:
        for n, err in enumerate(select(errors, kind, args.count, frozenset(shown)), start=1):
            shown.add(err.sample.image)
            path = out / f"{kind}_{n}.jpg"
            cv2.imwrite(str(path), draw(err, names), [cv2.IMWRITE_JPEG_QUALITY, 85])
            summary = ", ".join(f"{k} {v}" for k, v in err.counts.items())
            summary += "".join(f"; {t} detected as {d}" for t, d in err.confusions)
            print(f"{path}: {err.sample.image.name} ({len(err.sample.boxes)} labelled; {summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
