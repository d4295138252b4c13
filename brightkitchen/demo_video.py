"""A synthetic kitchen video for the demo and the edge benchmark, rendered deterministically.

No real kitchen footage can ship with the project, so the demo renders one: a
1280×720, 25 fps scene (tiled wall, brushed stainless counter, cupboards,
flickering light, sensor noise, "SYNTHETIC" in a corner) with two cutting-board
stations. A worker walks along the counter; on a schedule the worker puts the
RED (raw meat) board on the COOKED station and the yellow cooked board aside,
then puts them back, and the clip loops. The ``mixed_cutting_board`` rule sees
that through its colour classifier alone, so the demo needs no trained model.

The file is cached by its parameters: ``ensure_demo_video(dir)`` renders it
once (a few seconds) and reuses it afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

RENDERER_VERSION = 1
Image = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]

# Board stations on the counter (x1, y1, x2, y2 in 1280×720 pixels).
COOKED_STATION: Box = (760, 440, 1000, 560)
RAW_STATION: Box = (200, 440, 440, 560)
COOKED_AREA: Box = (660, 300, 1280, 720)
RAW_AREA: Box = (0, 300, 620, 720)
ASIDE: Box = (1050, 470, 1250, 560)  # where the cooked board waits during the violation

RED_BOARD = (40, 30, 200)  # BGR: raw meat
YELLOW_BOARD = (40, 200, 225)  # BGR: cooked


@dataclass(frozen=True, slots=True)
class SceneSpec:
    """What to render: size, rate, loop length, when the red board sits on the cooked station."""

    width: int = 1280
    height: int = 720
    fps: float = 25.0
    loop_s: float = 20.0
    violation_from_s: float = 4.0
    violation_to_s: float = 12.0
    seed: int = 0

    def key(self) -> str:
        """Short hash of the parameters and renderer version (the cache file name)."""
        raw = json.dumps({"v": RENDERER_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _scale_box(box: Box, spec: SceneSpec) -> Box:
    sx, sy = spec.width / 1280, spec.height / 720
    x1, y1, x2, y2 = box
    return round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)


def _polygon(box: Box) -> list[tuple[float, float]]:
    x1, y1, x2, y2 = box
    return [
        (float(x1), float(y1)),
        (float(x2), float(y1)),
        (float(x2), float(y2)),
        (float(x1), float(y2)),
    ]


def demo_zones(spec: SceneSpec | None = None) -> list[dict[str, object]]:
    """Site-file zones matching the rendered scene: two areas and two board stations."""
    spec = spec or SceneSpec()
    return [
        {
            "id": "cooked-area",
            "kind": "cooked_area",
            "polygon": _polygon(_scale_box(COOKED_AREA, spec)),
        },
        {"id": "raw-area", "kind": "raw_area", "polygon": _polygon(_scale_box(RAW_AREA, spec))},
        {
            "id": "cooked-board",
            "kind": "board_station",
            "board_type": "cooked",
            "polygon": _polygon(_scale_box(COOKED_STATION, spec)),
        },
        {
            "id": "raw-board",
            "kind": "board_station",
            "board_type": "raw_meat",
            "polygon": _polygon(_scale_box(RAW_STATION, spec)),
        },
    ]


def _background(spec: SceneSpec) -> Image:
    """The static scene at 1280×720: wall tiles, counter, cupboards, labels, caption."""
    rng = np.random.default_rng(spec.seed)
    w, h = 1280, 720
    img = np.zeros((h, w, 3), np.uint8)
    # Tiled wall: off-white tiles with grey grout and a slight per-tile tint.
    img[:420] = (205, 210, 212)
    for y in range(0, 420, 48):
        for x in range(0, w, 64):
            off = int(rng.integers(-8, 8))
            cv2.rectangle(
                img, (x + 2, y + 2), (x + 61, y + 45), (200 + off, 206 + off, 210 + off), -1
            )
    # Shelf, extraction hood and a window.
    cv2.rectangle(img, (80, 90), (560, 110), (150, 150, 155), -1)
    cv2.rectangle(img, (700, 40), (1180, 150), (170, 172, 175), -1)
    cv2.rectangle(img, (700, 140), (1180, 160), (120, 122, 125), -1)
    cv2.rectangle(img, (120, 160), (380, 300), (230, 225, 200), -1)
    cv2.line(img, (250, 160), (250, 300), (160, 160, 160), 4)
    # Brushed stainless counter: grey with horizontal streaks.
    grain = rng.normal(0, 1, (300, w)).astype(np.float32)
    steel = np.asarray(cv2.GaussianBlur(grain, (61, 1), 0), np.float32) * 60 + 165
    steel += np.linspace(-10, 10, w, dtype=np.float32)[None, :]
    top = np.clip(steel, 0, 255).astype(np.uint8)
    img[420:720] = np.stack(
        [top, top, np.clip(top.astype(np.int16) + 3, 0, 255).astype(np.uint8)], axis=2
    )
    cv2.rectangle(img, (0, 412), (w, 424), (110, 112, 115), -1)  # counter edge
    for x in range(0, w, 320):  # cupboard doors below the worktop
        cv2.rectangle(img, (x + 8, 600), (x + 312, 716), (150, 152, 156), 2)
        cv2.rectangle(img, (x + 150, 640), (x + 170, 650), (90, 90, 95), -1)
    # Station labels (ASCII: OpenCV's fonts have no CJK).
    for text, (x1, y1, _, _) in (("COOKED BOARD", COOKED_STATION), ("RAW MEAT BOARD", RAW_STATION)):
        cv2.putText(
            img, text, (x1, y1 - 60), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (60, 60, 60), 2, cv2.LINE_AA
        )
    cv2.rectangle(img, (0, 0), (300, 44), (0, 0, 0), -1)
    cv2.putText(
        img, "SYNTHETIC", (12, 33), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (255, 255, 255), 2, cv2.LINE_AA
    )
    return img


def _board(img: Image, box: Box, colour: tuple[int, int, int], inset: int = 16) -> None:
    x1, y1, x2, y2 = box
    cv2.rectangle(img, (x1 + inset, y1 + inset), (x2 - inset, y2 - inset), colour, -1)
    cv2.rectangle(img, (x1 + inset, y1 + inset), (x2 - inset, y2 - inset), (60, 60, 60), 2)


def _worker(img: Image, cx: int, phase: float) -> None:
    """A standing person in a white coat and cap with a face mask, behind the counter."""
    sway = int(6 * math.sin(phase))
    body_top, body_bottom = 250, 470
    cv2.ellipse(img, (cx + sway, 360), (70, 115), 0, 0, 360, (235, 238, 240), -1)  # coat
    cv2.ellipse(img, (cx + sway, 360), (70, 115), 0, 0, 360, (170, 170, 175), 2)
    arm = int(25 * math.sin(phase * 2))
    cv2.line(img, (cx - 60, 300), (cx - 95, 420 + arm), (225, 228, 230), 26)
    cv2.line(img, (cx + 60, 300), (cx + 95, 420 - arm), (225, 228, 230), 26)
    cv2.circle(img, (cx + sway, body_top - 40), 42, (160, 178, 200), -1)  # face (low saturation)
    cv2.rectangle(
        img, (cx + sway - 44, body_top - 100), (cx + sway + 44, body_top - 62), (245, 245, 245), -1
    )
    cv2.ellipse(img, (cx + sway, body_top - 25), (34, 20), 0, 0, 360, (230, 215, 190), -1)  # mask
    del body_bottom


def render_frame(base: Image, t: float, spec: SceneSpec, noise: Image, noise_neg: Image) -> Image:
    """The scene at loop time ``t`` seconds (1280×720 before scaling)."""
    img = base.copy()
    v0, v1 = spec.violation_from_s, spec.violation_to_s
    violating = v0 <= t < v1
    # The worker walks from the raw side to the cooked side and back over one loop.
    u = (t / spec.loop_s + 0.37 * spec.seed) % 1.0  # seeds shift the walk (bench cameras differ)
    cx = int(320 + 560 * (0.5 - 0.5 * math.cos(2 * math.pi * u)))
    _worker(img, cx, t * 2 * math.pi * 0.8)
    if violating:
        _board(img, COOKED_STATION, RED_BOARD)
        _board(img, ASIDE, YELLOW_BOARD, inset=8)
    else:
        _board(img, COOKED_STATION, YELLOW_BOARD)
        _board(img, RAW_STATION, RED_BOARD)
    # Lighting flicker (mains hum beating with the camera) and sensor noise.
    gain = 1.0 + 0.04 * math.sin(2 * math.pi * 1.7 * t) + 0.02 * math.sin(2 * math.pi * 0.31 * t)
    lit = cv2.convertScaleAbs(img, alpha=gain)
    out = cv2.subtract(cv2.add(lit, noise), noise_neg)
    if (spec.width, spec.height) != (1280, 720):
        out = cv2.resize(out, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    return np.asarray(out, np.uint8)


def write_demo_video(path: Path, spec: SceneSpec | None = None) -> Path:
    """Render one loop of the scene to ``path`` (mp4v) atomically; return the path."""
    spec = spec or SceneSpec()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    writer = cv2.VideoWriter(
        str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (spec.width, spec.height)
    )
    if not writer.isOpened():
        raise OSError(f"cannot write video {tmp} (OpenCV without an mp4v encoder?)")
    base = _background(spec)
    rng = np.random.default_rng(spec.seed + 1)
    pool = [
        (
            rng.integers(0, 7, base.shape, dtype=np.uint8),
            rng.integers(0, 7, base.shape, dtype=np.uint8),
        )
        for _ in range(5)
    ]
    n = round(spec.loop_s * spec.fps)
    try:
        for i in range(n):
            pos, neg = pool[i % len(pool)]
            writer.write(render_frame(base, i / spec.fps, spec, pos, neg))
    finally:
        writer.release()
    tmp.replace(path)
    return path


def video_file_for(cache_dir: Path, spec: SceneSpec | None = None) -> Path:
    """The cache file name of ``spec``'s video (it changes with the parameters and renderer)."""
    spec = spec or SceneSpec()
    return cache_dir / f"kitchen-{spec.width}x{spec.height}-{spec.key()}.mp4"


def ensure_demo_video(cache_dir: Path, spec: SceneSpec | None = None) -> Path:
    """Return the cached video for ``spec`` under ``cache_dir``, rendering it when absent."""
    spec = spec or SceneSpec()
    path = video_file_for(cache_dir, spec)
    if path.is_file() and path.stat().st_size > 0:
        return path
    logger.info("rendering the synthetic kitchen video %s", path)
    return write_demo_video(path, spec)
