"""The detection result that flows through tracker, zones and rules, and the detector protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class Detections:
    """Boxes of one image as numpy arrays: xyxy (n, 4), confidence (n,), class_id (n,).

    ``tracker_id`` (n,) is set by the tracker (-1 = not yet confirmed).

    Example:
        >>> d = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32),
        ...                np.array([1]))
        >>> len(d), d.anchors("center").tolist()
        (1, [[5.0, 5.0]])
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    tracker_id: IntArray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        self.xyxy = xyxy.reshape(0, 4) if xyxy.size == 0 else xyxy
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.class_id = np.asarray(self.class_id, dtype=np.int64)
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64)
        n = self.xyxy.shape[0] if self.xyxy.ndim == 2 else -1
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be shape (n, 4), got {self.xyxy.shape}")
        for name in ("confidence", "class_id", "tracker_id"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                raise ValueError(f"{name} must be shape ({n},), got {arr.shape}")

    def __len__(self) -> int:
        """Number of boxes."""
        return int(self.xyxy.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        """No boxes."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        )

    def select(self, keep: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Detections:
        """The boxes chosen by a boolean mask or an index array."""
        return Detections(
            self.xyxy[keep],
            self.confidence[keep],
            self.class_id[keep],
            None if self.tracker_id is None else self.tracker_id[keep],
        )

    def with_tracker_ids(self, tracker_id: IntArray) -> Detections:
        """The same boxes with tracker ids set."""
        return Detections(self.xyxy, self.confidence, self.class_id, tracker_id)

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> Detections:
        """Boxes scaled by ``scale`` then moved by (dx, dy): crop → frame coordinates."""
        xyxy = self.xyxy * np.float32(scale) + np.array([dx, dy, dx, dy], np.float32)
        return Detections(xyxy, self.confidence, self.class_id, self.tracker_id)

    def anchors(self, where: str = "center") -> FloatArray:
        """Anchor points (n, 2): ``center`` or ``bottom_center``."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        y = (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2 if where == "center" else self.xyxy[:, 3]
        return np.stack([x, y], axis=1).astype(np.float32)

    @staticmethod
    def merge(parts: list[Detections]) -> Detections:
        """Concatenate several results."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Detections.empty()
        tids = [p.tracker_id for p in parts]
        return Detections(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            None if any(t is None for t in tids) else np.concatenate(tids),  # type: ignore[arg-type]
        )


@runtime_checkable
class Detector(Protocol):
    """What the pipeline needs from a detector backend: class names, input size, a batch call."""

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by class id (from the model file)."""
        ...

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (width, height) in pixels."""
        ...

    @property
    def model_version(self) -> str:
        """Version string recorded with every violation."""
        ...

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect on BGR images of any size; boxes come back in each image's own pixels."""
        ...


def nms(xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; return kept indices, best first.

    Example:
        >>> b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
        >>> nms(b, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
        [0, 2]
    """
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(xyxy[i, 0], xyxy[rest, 0])
        yy1 = np.maximum(xyxy[i, 1], xyxy[rest, 1])
        xx2 = np.minimum(xyxy[i, 2], xyxy[rest, 2])
        yy2 = np.minimum(xyxy[i, 3], xyxy[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.intp)


def nms_per_class(dets: Detections, iou_threshold: float) -> Detections:
    """NMS within each class (boxes of different classes never suppress each other)."""
    if len(dets) < 2:
        return dets
    offset = (dets.xyxy.max() + 1.0) * dets.class_id.astype(np.float32)[:, None]
    keep = nms(dets.xyxy + offset, dets.confidence, iou_threshold)
    return dets.select(keep)
