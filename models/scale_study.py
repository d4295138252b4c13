"""How should the box run the mask model on ceiling cameras? Whole frame vs region crops.

Kitchen cameras see small faces in a wide frame. This study pastes each validation photo,
shrunk, into a 1920x1080 frame and evaluates (a) the whole frame letterboxed to the model input
and (b) a model-input-sized crop around the people (what a person/motion-region crop gives).
Usage: ``python -m models.scale_study --data VOC_DIR --weights FILE --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from models.evaluate import evaluate
from models.prepare import write_voc_copy
from models.sources import Box, Sample, load_image, read_folder

logger = logging.getLogger(__name__)

FRAME_W, FRAME_H = 1920, 1080


def build_views(data: Path, out: Path, shrink: float, crop_px: int, seed: int = 0) -> None:
    """Write ``out/frame`` (whole 1080p frames) and ``out/crop`` (crops) VOC folders."""
    import cv2

    rng = np.random.default_rng(seed)
    res = read_folder(data, "auto", {}, ["with_mask", "without_mask", "mask_weared_incorrect"])
    for s in res.samples:
        img = load_image(s)
        if img is None:
            continue
        small = cv2.resize(img, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        frame = np.clip(rng.normal(120, 20, (FRAME_H, FRAME_W, 3)), 0, 255).astype(np.uint8)
        x0 = int(rng.integers(0, FRAME_W - w))
        y0 = int(rng.integers(0, FRAME_H - h))
        frame[y0 : y0 + h, x0 : x0 + w] = small
        boxes = [
            Box(
                b.cls,
                b.x1 * shrink + x0,
                b.y1 * shrink + y0,
                b.x2 * shrink + x0,
                b.y2 * shrink + y0,
            )
            for b in s.boxes
        ]
        stem = s.image.stem
        tmp = out / "_tmp" / f"{stem}.jpg"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        write_voc_copy(Sample(tmp, FRAME_W, FRAME_H, tuple(boxes)), out / "frame", stem)
        cx, cy = x0 + w // 2, y0 + h // 2
        side = max(crop_px, w, h)
        cx1 = int(np.clip(cx - side // 2, 0, FRAME_W - side))
        cy1 = int(np.clip(cy - side // 2, 0, FRAME_H - side)) if side <= FRAME_H else 0
        crop = frame[cy1 : cy1 + side, cx1 : cx1 + side]
        cboxes = [Box(b.cls, b.x1 - cx1, b.y1 - cy1, b.x2 - cx1, b.y2 - cy1) for b in boxes]
        cv2.imwrite(str(tmp), crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        ch, cw = crop.shape[:2]
        write_voc_copy(Sample(tmp, cw, ch, tuple(cboxes)), out / "crop", stem)


def main(argv: list[str] | None = None) -> int:
    """Run the study and print/write one JSON line per view."""
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m models.scale_study")
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default="models/weights/mask_yolo.onnx")
    p.add_argument("--out", default="runs/scale_study")
    p.add_argument("--shrink", type=float, default=0.5)
    p.add_argument("--crop", type=int, default=640)
    args = p.parse_args(argv)
    out = Path(args.out)
    build_views(Path(args.data), out, args.shrink, args.crop)
    results = {}
    for view in ("frame", "crop"):
        r, _ = evaluate(out / view, Path(args.weights))
        results[view] = {
            "map50": r.map50,
            "map50_95": r.map50_95,
            "recall": {c.name: c.recall for c in r.classes},
            "ms_per_image": r.ms_per_image,
        }
        print(view, json.dumps(results[view]))
    (out / "scale_study.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
