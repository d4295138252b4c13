"""Motion gating (as in Frigate): cheap low-resolution frame differencing decides where to look.

The frame is shrunk to ``width_px`` wide grey, compared with a running-average
background, thresholded, dilated, and its contours become boxes in full-frame
pixels. A scene with no motion yields no boxes, so the detector is not run.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Boxes = npt.NDArray[np.float32]


class MotionSettings(BaseModel):
    """Tuning of the motion gate."""

    model_config = ConfigDict(extra="forbid")

    width_px: int = Field(default=160, ge=32, le=1280, description="Width of the analysed copy.")
    threshold: int = Field(default=25, ge=1, le=255, description="Grey difference that is motion.")
    min_area_frac: float = Field(
        default=0.0008, ge=0, le=1, description="Smallest motion blob as a share of the frame."
    )
    learning_rate: float = Field(
        default=0.08, gt=0, le=1, description="Background running-average weight per frame."
    )
    dilate_iterations: int = Field(default=2, ge=0, le=10)
    max_share: float = Field(
        default=0.9, gt=0, le=1, description="More changed than this = lighting change, not motion."
    )


def merge_boxes(boxes: Boxes, gap_px: float = 0.0) -> Boxes:
    """Merge boxes that overlap or lie within ``gap_px`` of each other until none do.

    Example:
        >>> merge_boxes(np.array([[0, 0, 10, 10], [5, 5, 20, 20], [50, 50, 60, 60]], np.float32))
        array([[ 0.,  0., 20., 20.],
               [50., 50., 60., 60.]], dtype=float32)
    """
    out = [b.astype(np.float32) for b in boxes]
    merged = True
    while merged and len(out) > 1:
        merged = False
        i = 0
        while i < len(out):
            j = i + 1
            while j < len(out):
                a, b = out[i], out[j]
                if (
                    a[0] - gap_px <= b[2]
                    and b[0] - gap_px <= a[2]
                    and a[1] - gap_px <= b[3]
                    and b[1] - gap_px <= a[3]
                ):
                    out[i] = np.array(
                        [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])],
                        np.float32,
                    )
                    del out[j]
                    merged = True
                else:
                    j += 1
            i += 1
    return np.stack(out) if out else np.zeros((0, 4), np.float32)


class MotionDetector:
    """Running-average background subtraction at low resolution for one camera."""

    def __init__(self, settings: MotionSettings | None = None) -> None:
        """Create a gate; the first frame only initialises the background."""
        self.settings = settings or MotionSettings()
        self._background: npt.NDArray[np.float32] | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def reset(self) -> None:
        """Forget the background (after a reconnect or a camera move)."""
        self._background = None

    def detect(self, frame_bgr: npt.NDArray[np.uint8]) -> Boxes:
        """Return motion boxes (n, 4) xyxy in full-frame pixels; empty when nothing moved."""
        s = self.settings
        h, w = frame_bgr.shape[:2]
        small_w = min(s.width_px, w)
        small_h = max(1, round(h * small_w / w))
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        small = cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        current = small.astype(np.float32)
        if self._background is None or self._background.shape != current.shape:
            self._background = current
            return np.zeros((0, 4), np.float32)
        diff = cv2.absdiff(current, self._background)
        cv2.accumulateWeighted(current, self._background, s.learning_rate)
        mask: npt.NDArray[np.uint8] = (diff > s.threshold).astype(np.uint8)
        if float(mask.mean()) > s.max_share:
            # A global change (lights, auto-exposure): adopt the new image as background.
            self._background = current
            return np.zeros((0, 4), np.float32)
        if s.dilate_iterations:
            mask = np.asarray(
                cv2.dilate(mask, self._kernel, iterations=s.dilate_iterations), np.uint8
            )
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = s.min_area_frac * small_w * small_h
        scale_x, scale_y = w / small_w, h / small_h
        boxes = []
        for c in contours:
            if cv2.contourArea(c) < min_area:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            boxes.append([x * scale_x, y * scale_y, (x + bw) * scale_x, (y + bh) * scale_y])
        if not boxes:
            return np.zeros((0, 4), np.float32)
        return merge_boxes(np.array(boxes, np.float32), gap_px=4 * scale_x)
