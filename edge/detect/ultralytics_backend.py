"""Optional ultralytics backend for development (``.pt`` weights); same ``Detections`` out.

ultralytics (and torch) are imported only when this detector is built, so an edge
box without them never pays for the import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bkcommon.errors import ModelError
from edge.detect.base import Detections


class UltralyticsDetector:
    """A YOLO model run by ultralytics (``pip install ultralytics``; not on edge boxes)."""

    def __init__(
        self,
        path: str | Path,
        imgsz: int = 640,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        device: str = "cpu",
    ) -> None:
        """Load weights with ultralytics; raise ModelError when it is not installed or fails."""
        try:
            import ultralytics
        except ImportError as exc:
            raise ModelError("the ultralytics backend needs `pip install ultralytics`") from exc
        self.path = Path(path)
        try:
            module: Any = ultralytics
            self._model: Any = module.YOLO(str(self.path))
        except Exception as exc:  # ultralytics raises many kinds
            raise ModelError(f"cannot load {self.path}: {exc}") from exc
        names = self._model.names
        self._names = [str(names[i]) for i in sorted(names)]
        self._imgsz = imgsz
        self._conf = conf_threshold
        self._iou = iou_threshold
        self._device = device

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by class id."""
        return self._names

    @property
    def input_size(self) -> tuple[int, int]:
        """Inference size (width, height)."""
        return (self._imgsz, self._imgsz)

    @property
    def model_version(self) -> str:
        """The weights file name."""
        return self.path.stem

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Run ultralytics predict on BGR images and convert its boxes."""
        if not images:
            return []
        results: list[Any] = self._model.predict(
            images,
            imgsz=self._imgsz,
            conf=self._conf,
            iou=self._iou,
            device=self._device,
            verbose=False,
        )
        out = []
        for r in results:
            boxes = r.boxes
            out.append(
                Detections(
                    boxes.xyxy.cpu().numpy().astype(np.float32),
                    boxes.conf.cpu().numpy().astype(np.float32),
                    boxes.cls.cpu().numpy().astype(np.int64),
                )
            )
        return out
