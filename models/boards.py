"""Cutting boards: learn HSV ranges from a site's labelled crops, and render synthetic stations.

Calibration reads ``<dir>/<board_type>/*.jpg`` crops and writes the ``BoardColourConfig`` that
``edge.boards.BoardColourModel`` uses. The synthetic generator draws kitchen stations with boards
of the coded colours under varied lighting; every image it writes is marked SYNTHETIC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.boards import BoardColourConfig, HsvRange

logger = logging.getLogger(__name__)

# Reference BGR colours of the common coding (red raw meat, blue raw seafood, green vegetables,
# yellow cooked). Sites differ: calibrate from their own crops.
BOARD_BGR: dict[str, tuple[int, int, int]] = {
    "raw_meat": (40, 40, 200),
    "raw_seafood": (200, 110, 30),
    "vegetables": (60, 170, 50),
    "cooked": (40, 200, 230),
}
HUE_MARGIN = 8
MIN_SATURATION = 60


def _hue_ranges(hues: npt.NDArray[np.uint8]) -> list[tuple[int, int]]:
    """Hue interval(s) covering the central 90% of hues, split in two across red's wrap-around."""
    h = hues.astype(np.int32)
    shifted = (h + 90) % 180  # red near 0/179 becomes contiguous around 90
    spread_plain = np.percentile(h, 95) - np.percentile(h, 5)
    spread_shift = np.percentile(shifted, 95) - np.percentile(shifted, 5)
    if spread_shift < spread_plain:
        lo = int(np.percentile(shifted, 5)) - HUE_MARGIN - 90
        hi = int(np.percentile(shifted, 95)) + HUE_MARGIN - 90
        if lo < 0 <= hi:
            return [(0, min(179, hi)), (180 + lo, 179)]
        return [(lo % 180, hi % 180)]
    lo = max(0, int(np.percentile(h, 5)) - HUE_MARGIN)
    hi = min(179, int(np.percentile(h, 95)) + HUE_MARGIN)
    return [(lo, hi)]


def calibrate(
    crops: dict[str, list[npt.NDArray[np.uint8]]], min_fraction: float = 0.2
) -> BoardColourConfig:
    """Learn HSV ranges per board type from labelled BGR crops (a few per type are enough)."""
    import cv2

    types: dict[str, list[HsvRange]] = {}
    for board_type, images in sorted(crops.items()):
        if not images:
            raise ValueError(f"no crops for board type {board_type!r}")
        hsv = np.concatenate([cv2.cvtColor(i, cv2.COLOR_BGR2HSV).reshape(-1, 3) for i in images])
        coloured = hsv[hsv[:, 1] >= MIN_SATURATION]
        if len(coloured) < 0.05 * len(hsv):
            raise ValueError(f"crops of {board_type!r} are almost grey: cannot learn a colour")
        s_min = max(0, int(np.percentile(coloured[:, 1], 5)) - 30)
        v_min = max(0, int(np.percentile(coloured[:, 2], 2)) - 40)
        types[board_type] = [
            HsvRange(h_min=lo, h_max=hi, s_min=s_min, s_max=255, v_min=v_min, v_max=255)
            for lo, hi in _hue_ranges(coloured[:, 0])
        ]
    return BoardColourConfig(types=types, min_fraction=min_fraction)


def load_crops(folder: Path) -> dict[str, list[npt.NDArray[np.uint8]]]:
    """Read ``folder/<board_type>/*.(jpg|png)`` crops; unreadable files are skipped and logged."""
    import cv2

    crops: dict[str, list[npt.NDArray[np.uint8]]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(sub.iterdir()):
            if path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp"}:
                continue
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                logger.warning("skipped unreadable crop %s", path)
                continue
            crops.setdefault(sub.name, []).append(np.asarray(img, np.uint8))
    return crops


@dataclass(frozen=True, slots=True)
class SynthBoard:
    """A rendered board: its type and box (pixels) in the scene."""

    board_type: str
    x1: int
    y1: int
    x2: int
    y2: int


def lighting(
    img: npt.NDArray[np.uint8], gain: float, tint_bgr: tuple[float, float, float]
) -> npt.NDArray[np.uint8]:
    """Apply a brightness gain and a colour cast (warm/cool lamps) to an image."""
    out = img.astype(np.float32) * gain * np.array(tint_bgr, np.float32)
    res: npt.NDArray[np.uint8] = np.clip(out, 0, 255).astype(np.uint8)
    return res


def render_board(
    board_type: str, size: tuple[int, int], rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """One board crop (w, h) with wood-like grain, knife scratches and noise."""
    import cv2

    w, h = size
    base = np.array(BOARD_BGR[board_type], np.float32) + rng.normal(0, 8, 3)
    img = np.tile(base, (h, w, 1))
    grain = np.sin(np.linspace(0, rng.uniform(8, 20), w))[None, :, None] * rng.uniform(3, 8)
    img = img + grain + rng.normal(0, 6, (h, w, 1))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 10))):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p1, p2, tuple(int(c * 0.8) for c in BOARD_BGR[board_type]), 1)
    out: npt.NDArray[np.uint8] = np.asarray(img, np.uint8)
    return out


def render_scene(
    rng: np.random.Generator, size: tuple[int, int] = (640, 384), n_boards: int = 3
) -> tuple[npt.NDArray[np.uint8], list[SynthBoard]]:
    """A stainless-steel station with boards of random coded colours, under random lighting."""
    import cv2

    w, h = size
    steel = rng.uniform(150, 190)
    scene = np.clip(
        steel + rng.normal(0, 10, (h, w, 1)) + np.linspace(-20, 20, w)[None, :, None], 0, 255
    ).astype(np.uint8)
    scene = np.repeat(scene, 3, axis=2)
    boards: list[SynthBoard] = []
    slot = w // n_boards
    for i in range(n_boards):
        board_type = str(rng.choice(sorted(BOARD_BGR)))
        bw, bh = int(slot * rng.uniform(0.55, 0.8)), int(h * rng.uniform(0.35, 0.6))
        x1 = i * slot + int(rng.integers(4, max(5, slot - bw - 4)))
        y1 = int(rng.integers(10, max(11, h - bh - 10)))
        scene[y1 : y1 + bh, x1 : x1 + bw] = render_board(board_type, (bw, bh), rng)
        boards.append(SynthBoard(board_type, x1, y1, x1 + bw, y1 + bh))
    gain = float(rng.uniform(0.6, 1.25))
    tint = (float(rng.uniform(0.85, 1.1)), 1.0, float(rng.uniform(0.9, 1.15)))
    scene = lighting(scene, gain, tint)
    cv2.putText(scene, "SYNTHETIC", (8, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return scene, boards


def write_synthetic(out: Path, count: int, seed: int = 0) -> Iterator[Path]:
    """Write ``count`` synthetic scenes as a VOC folder (``synthetic: true`` in each XML)."""
    import cv2

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "SYNTHETIC.txt").write_text(
        "Every image here is synthetic (rendered by brightkitchen models synth-boards).\n"
    )
    for i in range(count):
        scene, boards = render_scene(rng)
        name = f"synthetic_boards_{i:05d}"
        cv2.imwrite(str(out / "images" / f"{name}.jpg"), scene)
        objs = "".join(
            f"<object><name>{b.board_type}</name><bndbox><xmin>{b.x1}</xmin><ymin>{b.y1}</ymin>"
            f"<xmax>{b.x2}</xmax><ymax>{b.y2}</ymax></bndbox></object>"
            for b in boards
        )
        h, w = scene.shape[:2]
        (out / "annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><synthetic>true</synthetic>"
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"
        )
        yield out / "images" / f"{name}.jpg"
