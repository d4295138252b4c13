"""Test material for the vision half: rendered scenes, video files and a tiny real ONNX detector.

The detector built here is a genuine ONNX graph in the ultralytics export layout
(input ``images`` (B,3,H,W) RGB 0..1, output ``(B, 4+nc, nc)``): for each class it
finds the pixels close to that class's colour and outputs their bounding box, so
the detections follow what the video shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BGR = tuple[int, int, int]
RED: BGR = (0, 0, 230)
GREEN: BGR = (0, 200, 0)
BLUE: BGR = (220, 60, 0)
YELLOW: BGR = (0, 220, 230)

MASK_CLASSES: dict[str, BGR] = {
    "with_mask": GREEN,
    "without_mask": RED,
    "mask_weared_incorrect": BLUE,
}


def build_colour_model(
    path: Path,
    classes: dict[str, BGR],
    imgsz: int = 320,
    dynamic_batch: bool = True,
    score: float = 0.9,
    version: str = "test-colour-1",
    tolerance: float = 0.5,
) -> Path:
    """Write an ONNX model that boxes the pixels of each class's colour (one box per class)."""
    nc = len(classes)
    batch: str | int = "batch" if dynamic_batch else 1
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, imgsz, imgsz])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4 + nc, nc])
    ys, xs = np.mgrid[0:imgsz, 0:imgsz].astype(np.float32)
    inits = [
        numpy_helper.from_array(xs[None, None], "gx"),
        numpy_helper.from_array(ys[None, None], "gy"),
        numpy_helper.from_array(np.array([1], np.int64), "ax1"),
        numpy_helper.from_array(np.array(tolerance, np.float32), "tol"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(1e5, np.float32), "big"),
        numpy_helper.from_array(np.array(score, np.float32), "score"),
    ]
    nodes = []
    columns = []
    for k, bgr in enumerate(classes.values()):
        rgb = np.array([bgr[2], bgr[1], bgr[0]], np.float32).reshape(1, 3, 1, 1) / 255.0
        inits.append(numpy_helper.from_array(rgb, f"c{k}"))
        p = f"k{k}_"
        nodes += [
            helper.make_node("Sub", ["images", f"c{k}"], [p + "d"]),
            helper.make_node("Abs", [p + "d"], [p + "ad"]),
            helper.make_node("ReduceSum", [p + "ad", "ax1"], [p + "l1"], keepdims=1),
            helper.make_node("Less", [p + "l1", "tol"], [p + "lt"]),
            helper.make_node("Cast", [p + "lt"], [p + "bin"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["one", p + "bin"], [p + "nbin"]),
            helper.make_node("Mul", [p + "nbin", "big"], [p + "far"]),
            helper.make_node("ReduceMax", [p + "bin"], [p + "pres"], axes=[2, 3], keepdims=0),
        ]
        for axis, grid in (("x", "gx"), ("y", "gy")):
            nodes += [
                helper.make_node("Mul", [p + "bin", grid], [p + axis + "m"]),
                helper.make_node(
                    "ReduceMax", [p + axis + "m"], [p + axis + "hi0"], axes=[2, 3], keepdims=0
                ),
                helper.make_node("Add", [p + axis + "hi0", "one"], [p + axis + "hi"]),
                helper.make_node("Add", [p + axis + "m", p + "far"], [p + axis + "f"]),
                helper.make_node(
                    "ReduceMin", [p + axis + "f"], [p + axis + "lo"], axes=[2, 3], keepdims=0
                ),
                helper.make_node("Add", [p + axis + "lo", p + axis + "hi"], [p + axis + "s"]),
                helper.make_node("Mul", [p + axis + "s", "half"], [p + "c" + axis]),
                helper.make_node("Sub", [p + axis + "hi", p + axis + "lo"], [p + "w" + axis]),
            ]
        nodes += [
            helper.make_node("Mul", [p + "pres", "score"], [p + "sc"]),
            helper.make_node("Mul", [p + "pres", "zero"], [p + "z"]),
        ]
        parts = [p + "cx", p + "cy", p + "wx", p + "wy"] + [
            (p + "sc") if j == k else (p + "z") for j in range(nc)
        ]
        nodes += [
            helper.make_node("Concat", parts, [p + "col0"], axis=1),
            helper.make_node("Unsqueeze", [p + "col0", "ax2"], [p + "col"]),
        ]
        columns.append(p + "col")
    inits.append(numpy_helper.from_array(np.array([2], np.int64), "ax2"))
    nodes.append(helper.make_node("Concat", columns, ["output0"], axis=2))
    graph = helper.make_graph(nodes, "colour_boxes", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    names = {i: n for i, n in enumerate(classes)}
    meta = {
        "names": repr(names),
        "imgsz": repr([imgsz, imgsz]),
        "bk_model_version": version,
        "bk_conf_threshold": "0.25",
        "bk_iou_threshold": "0.45",
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def kitchen_background(width: int = 640, height: int = 360, seed: int = 7) -> np.ndarray:
    """A textured grey background (tiles and noise) that is neither covered nor blurred."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 150, np.uint8)
    for x in range(0, width, 40):
        cv2.line(img, (x, 0), (x, height), (120, 120, 120), 2)
    for y in range(0, height, 40):
        cv2.line(img, (0, y), (width, y), (120, 120, 120), 2)
    for _ in range(8):  # counters, cupboards, a window: large shapes of different greys
        x, y = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 40))
        w, h = int(rng.integers(40, width // 3)), int(rng.integers(30, height // 3))
        shade = int(rng.integers(60, 220))
        cv2.rectangle(
            img, (x, y), (x + w, y + h), (shade, shade, shade + 10 if shade < 245 else shade), -1
        )
    noise = rng.integers(-12, 12, size=img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Patch:
    """A coloured square drawn on a frame: centre, side and colour."""

    cx: int
    cy: int
    size: int
    colour: BGR


def render(background: np.ndarray, patches: Sequence[Patch]) -> np.ndarray:
    """Draw the patches on a copy of the background."""
    img = background.copy()
    for p in patches:
        h = p.size // 2
        cv2.rectangle(img, (p.cx - h, p.cy - h), (p.cx + h, p.cy + h), p.colour, thickness=-1)
    return img


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 10.0) -> Path:
    """Write frames with OpenCV (MJPG for .avi, mp4v for .mp4); return the path."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path
