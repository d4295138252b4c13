"""The optional second stage: a small mask classifier run on face crops of the full image.

The 320 px detector finds most faces but names the class of a face it shrank to ~20 px
poorly. The second stage takes each face box the detector found, crops it from the image the
detector was given (at that image's own resolution, with a margin), and lets a small CNN name
the class. Final class = the classifier's most likely class; final confidence =
``face score x classifier probability`` (rule ``face_x_prob``) or the face score alone
(rule ``face``), where the face score is the detector's highest class score for the box.
Both rules are never above the face score, so the box keeps only detections whose face score
reaches the final threshold and classifies nothing else.

The model file (``brightkitchen models train-classifier``): input ``crops`` (B,3,S,S) float32
RGB 0..1, output ``probs`` (B,nc) (softmax inside the graph); metadata ``names`` (dict
literal), ``bk_model_version``, ``bk_input_size`` (S), ``bk_crop_margin``, ``bk_conf_rule``
and ``bk_conf_threshold`` (the final threshold, chosen on a train-side validation fold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bkcommon.errors import ModelError
from edge.detect.base import Detections
from edge.detect.ort_session import cpu_session

logger = logging.getLogger(__name__)

CONF_RULES = ("face_x_prob", "face")
CROP_FILL = 114


@dataclass(frozen=True, slots=True)
class ClassifierInfo:
    """What the classifier file says about itself."""

    class_names: list[str]
    input_size: int  # square side in pixels
    version: str
    margin: float  # added on each side, as a fraction of the box's longer side
    conf_rule: str
    conf_threshold: float


def crop_square(
    image: npt.NDArray[np.uint8], box: npt.NDArray[np.float32], margin: float, size: int
) -> npt.NDArray[np.uint8]:
    """The square around a face box (side: longer box side x (1 + 2 margin)) resized to ``size``.

    Parts outside the image are filled grey (114), as the detector's letterbox.

    Example:
        >>> img = np.zeros((100, 200, 3), np.uint8)
        >>> crop_square(img, np.array([10, 10, 30, 50], np.float32), 0.25, 32).shape
        (32, 32, 3)
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    n = max(1, round(side))
    ih, iw = image.shape[:2]
    sx1, sy1 = max(0, left), max(0, top)
    sx2, sy2 = min(iw, left + n), min(ih, top + n)
    if sx2 <= sx1 or sy2 <= sy1:
        return np.full((size, size, 3), CROP_FILL, np.uint8)
    patch = image[sy1:sy2, sx1:sx2]
    if (sx1, sy1, sx2, sy2) != (left, top, left + n, top + n):
        patch = np.asarray(
            cv2.copyMakeBorder(
                patch,
                sy1 - top,
                top + n - sy2,
                sx1 - left,
                left + n - sx2,
                cv2.BORDER_CONSTANT,
                value=(CROP_FILL, CROP_FILL, CROP_FILL),
            ),
            np.uint8,
        )
    interp = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(patch, (size, size), interpolation=interp), np.uint8)


def to_chw(crop: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> None:
    """A BGR uint8 crop into a preallocated CHW RGB 0..1 slot."""
    for k in range(3):
        out[k] = crop[:, :, 2 - k]
    out *= np.float32(1 / 255)


def combine(face: npt.NDArray[np.float32], prob: npt.NDArray[np.float32], rule: str) -> Any:
    """Final confidence from the face score and the chosen class's probability.

    Example:
        >>> combine(np.array([0.5], np.float32), np.array([0.8], np.float32), "face_x_prob")
        array([0.4], dtype=float32)
    """
    if rule == "face_x_prob":
        return (face * prob).astype(np.float32)
    if rule == "face":
        return face.astype(np.float32)
    raise ModelError(f"unknown confidence rule {rule!r} (one of {', '.join(CONF_RULES)})")


class CropClassifier:
    """A mask classifier ONNX run by ONNX Runtime on face crops."""

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int = 2,
        spinning: bool = False,
        conf_threshold: float | None = None,
        conf_rule: str | None = None,
    ) -> None:
        """Load the model and its metadata; raise ModelError if it is missing or malformed."""
        self.path = Path(path)
        self._session = cpu_session(
            self.path, threads=threads, spinning=spinning, what="classifier"
        )
        self.info = self._read_info(conf_threshold, conf_rule)
        self._input_name = self._session.get_inputs()[0].name
        logger.info(
            "loaded classifier %s version=%s classes=%s input=%s rule=%s threshold=%s",
            self.path,
            self.info.version,
            self.info.class_names,
            self.info.input_size,
            self.info.conf_rule,
            self.info.conf_threshold,
        )

    def _read_info(self, conf: float | None, rule: str | None) -> ClassifierInfo:
        from edge.detect.onnx import parse_names

        meta: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        missing = [k for k in ("names", "bk_input_size") if k not in meta]
        if missing:
            raise ModelError(f"{self.path}: metadata {', '.join(missing)} missing")
        names = parse_names(meta["names"])
        try:
            size = int(meta["bk_input_size"])
            margin = float(meta.get("bk_crop_margin", 0.25))
            threshold = conf if conf is not None else float(meta.get("bk_conf_threshold", 0.25))
        except ValueError as exc:
            raise ModelError(f"{self.path}: malformed metadata: {exc}") from exc
        chosen = rule or meta.get("bk_conf_rule", "face_x_prob")
        if chosen not in CONF_RULES:
            raise ModelError(f"{self.path}: unknown confidence rule {chosen!r}")
        out = self._session.get_outputs()[0].shape
        if len(out) != 2 or (isinstance(out[1], int) and out[1] != len(names)):
            raise ModelError(f"{self.path}: output must be (B, {len(names)}), got {out}")
        return ClassifierInfo(
            class_names=names,
            input_size=size,
            version=str(meta.get("bk_model_version") or self.path.stem),
            margin=margin,
            conf_rule=chosen,
            conf_threshold=threshold,
        )

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by class id."""
        return self.info.class_names

    def probabilities(
        self, crops: npt.NDArray[np.float32], max_batch: int = 64
    ) -> npt.NDArray[np.float32]:
        """Class probabilities (n, nc) of CHW RGB 0..1 crops (n, 3, S, S)."""
        nc = len(self.info.class_names)
        if len(crops) == 0:
            return np.zeros((0, nc), np.float32)
        parts = []
        for i in range(0, len(crops), max_batch):
            out = self._session.run(None, {self._input_name: crops[i : i + max_batch]})[0]
            parts.append(np.asarray(out, np.float32).reshape(-1, nc))
        return np.concatenate(parts)

    def crops(
        self, images: list[npt.NDArray[np.uint8]], boxes: list[npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        """All face crops of several images as one (n, 3, S, S) batch, in order."""
        s = self.info.input_size
        n = sum(len(b) for b in boxes)
        batch = np.empty((n, 3, s, s), np.float32)
        k = 0
        for img, xyxy in zip(images, boxes, strict=True):
            for box in xyxy:
                to_chw(crop_square(img, box, self.info.margin, s), batch[k])
                k += 1
        return batch

    def relabel(
        self,
        images: list[npt.NDArray[np.uint8]],
        faces: list[Detections],
        threshold: float | None = None,
    ) -> list[Detections]:
        """Class and confidence of every face from its crop (one classifier run per call).

        ``faces`` are class-agnostic detections: confidence = face score. Faces whose final
        confidence ends below ``threshold`` (default: the file's) are dropped.
        """
        thr = self.info.conf_threshold if threshold is None else threshold
        probs = self.probabilities(self.crops(images, [f.xyxy for f in faces]))
        out = []
        k = 0
        for f in faces:
            p = probs[k : k + len(f)]
            k += len(f)
            cls = p.argmax(axis=1) if len(f) else np.zeros(0, np.int64)
            conf = combine(f.confidence, p[np.arange(len(f)), cls], self.info.conf_rule)
            d = Detections(f.xyxy, conf, cls)
            out.append(d.select(conf >= thr))
        return out
