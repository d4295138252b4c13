"""ONNX Runtime detector backend (the default on edge boxes: no torch).

Stable API used by the models' ``evaluate`` command::

    det = OnnxDetector("models/weights/mask_yolo.onnx")
    results = det.detect([bgr_image, ...])   # list[Detections], boxes in image pixels
    det.class_names, det.input_size, det.model_version

The model file is the standard ultralytics YOLO export: input ``images``
(B,3,H,W) float32 RGB 0..1 letterboxed; output ``(B, 4+nc, N)`` with cx, cy, w,
h in input pixels then per-class scores; metadata ``names`` (a dict literal),
``imgsz`` and ours ``bk_model_version``, ``bk_conf_threshold``,
``bk_iou_threshold`` and, for a file with mirror averaging built in
(``models.mirror_average``), ``bk_tta``.

With a second stage (``classifier=``, :mod:`edge.detect.crop_classifier`) the detector only
finds faces (class-agnostic NMS, face score = highest class score) and the classifier names
each face from a crop of the image it was given; the threshold is then the classifier
file's final threshold.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bkcommon.errors import ModelError
from edge.detect.base import Detections, nms, nms_per_class
from edge.detect.cpu_int8 import full_range_int8, int8_dot_product
from edge.detect.crop_classifier import CropClassifier
from edge.detect.ort_session import cpu_session

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo.onnx"
LETTERBOX_FILL = 114


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the model file says about itself."""

    class_names: list[str]
    input_size: tuple[int, int]  # (width, height)
    version: str
    conf_threshold: float
    iou_threshold: float
    dynamic_batch: bool
    augmentation: str = "none"  # "hflip-mean": mirror averaging is inside the graph
    quantized: str = ""  # ``bk_quantized`` of an INT8 file (``models quantize``), else empty


def parse_names(raw: str) -> list[str]:
    """Parse the ``names`` metadata (ultralytics writes a dict literal) into a list by id.

    Example:
        >>> parse_names("{0: 'with_mask', 1: 'without_mask'}")
        ['with_mask', 'without_mask']
    """
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"metadata 'names' is not a literal: {raw[:80]!r}") from exc
    if isinstance(value, dict):
        ids = sorted(int(k) for k in value)
        if ids != list(range(len(ids))):
            raise ModelError(f"metadata 'names' ids must be 0..n-1, got {ids}")
        return [str(value[k]) for k in sorted(value, key=int)]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise ModelError(f"metadata 'names' must be a dict or list, got {type(value).__name__}")


def letterbox(
    image: npt.NDArray[np.uint8], size: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], float, float, float]:
    """Resize keeping aspect, pad to ``size`` (w, h); return CHW RGB 0..1, scale, pad x, pad y."""
    chw = np.empty((3, size[1], size[0]), np.float32)
    scale, px, py = letterbox_into(image, chw)
    return chw, scale, px, py


def letterbox_into(
    image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]
) -> tuple[float, float, float]:
    """Letterbox ``image`` into the preallocated CHW RGB 0..1 slot ``out``; return scale, pads.

    One resize, one border fill, then the channels copied (BGR→RGB, HWC→CHW) straight into
    the batch array and scaled in place: no intermediate float image.
    """
    h, w = out.shape[1], out.shape[2]
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = min(w, max(1, round(iw * scale))), min(h, max(1, round(ih * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = image if (nw, nh) == (iw, ih) else cv2.resize(image, (nw, nh), interpolation=interp)
    px, py = (w - nw) // 2, (h - nh) // 2
    fill = (LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL)
    canvas = cv2.copyMakeBorder(
        resized, py, h - nh - py, px, w - nw - px, cv2.BORDER_CONSTANT, value=fill
    )
    for k, channel in enumerate(cv2.split(canvas)[::-1]):
        out[k] = channel
    out *= np.float32(1 / 255)
    return scale, float(px), float(py)


def decode_output(
    out: npt.NDArray[np.float32],
    conf_threshold: float,
    iou_threshold: float,
    *,
    agnostic: bool = False,
) -> Detections:
    """Decode one image's (4+nc, N) YOLO output to per-class-NMS'd boxes in input pixels
    (``agnostic``: one NMS over all classes, as faces for a second stage)."""
    if out.ndim != 2 or out.shape[0] < 5:
        raise ModelError(f"output must be (4+nc, N) per image, got {out.shape}")
    preds = out.T  # (N, 4+nc)
    scores = preds[:, 4:]
    class_id = scores.argmax(axis=1)
    conf = scores[np.arange(scores.shape[0]), class_id]
    keep = conf >= conf_threshold
    if not keep.any():
        return Detections.empty()
    p, class_id, conf = preds[keep], class_id[keep], conf[keep]
    cx, cy, bw, bh = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    dets = Detections(xyxy, conf, class_id)
    if agnostic:
        return dets.select(nms(dets.xyxy, dets.confidence, iou_threshold))
    return nms_per_class(dets, iou_threshold)


class OnnxDetector:
    """A YOLO ONNX model run by ONNX Runtime on the CPU (or a given provider)."""

    def __init__(
        self,
        path: str | Path = DEFAULT_MODEL_PATH,
        *,
        threads: int = 2,
        spinning: bool = False,
        conf_threshold: float | None = None,
        iou_threshold: float | None = None,
        providers: list[str] | None = None,
        max_batch: int = 8,
        classifier: CropClassifier | None = None,
    ) -> None:
        """Load the model and its metadata; raise ModelError if it is missing or malformed.

        ``threads`` is ONNX Runtime's intra-op pool; ``spinning`` lets idle pool threads
        busy-wait (faster alone, but it burns the CPU that camera threads need on a loaded box).
        ``classifier``: the optional second stage; ``conf_threshold`` then overrides its final
        threshold.
        """
        self.path = Path(path)
        self._session = cpu_session(
            self.path, threads=threads, spinning=spinning, what="model", providers=providers
        )
        self.info = self._read_info(conf_threshold, iou_threshold)
        self.classifier = classifier
        if classifier is not None:
            if classifier.class_names != self.info.class_names:
                raise ModelError(
                    f"{classifier.path}: classes {classifier.class_names} differ from the "
                    f"detector's {self.info.class_names}"
                )
            final = classifier.info.conf_threshold if conf_threshold is None else conf_threshold
            self.info = replace(
                self.info,
                version=f"{self.info.version}+{classifier.info.version}",
                conf_threshold=final,
            )
        self.max_batch = max(1, max_batch)
        self._input_name = self._session.get_inputs()[0].name
        logger.info(
            "loaded model %s version=%s classes=%s input=%s batch=%s augmentation=%s",
            self.path,
            self.info.version,
            self.info.class_names,
            self.info.input_size,
            "dynamic" if self.info.dynamic_batch else 1,
            self.info.augmentation,
        )
        if self.info.quantized and int8_dot_product() is False:
            if full_range_int8(self.info.quantized):
                logger.warning(
                    "%s has 8-bit INT8 weights (%s) and this CPU has no VNNI: ONNX Runtime's "
                    "integer convolutions saturate here, so detections differ from the model "
                    "card's; quantize the float file again without --full-range (7-bit weights)",
                    self.path,
                    self.info.quantized,
                )
            else:
                logger.info(
                    "%s is INT8 and this CPU has no 8-bit dot product (VNNI): results are exact "
                    "(7-bit weights) but it runs slower than on a VNNI CPU, so the box carries "
                    "fewer cameras (deploy/README.md, sizing)",
                    self.path,
                )

    def _read_info(self, conf: float | None, iou: float | None) -> ModelInfo:
        meta: dict[str, Any] = dict(self._session.get_modelmeta().custom_metadata_map)
        if "names" not in meta:
            raise ModelError(f"{self.path}: metadata 'names' is missing")
        names = parse_names(meta["names"])
        shape = self._session.get_inputs()[0].shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            # a classifier, an NHWC export: refused here, not on every frame afterwards
            raise ModelError(f"{self.path}: input must be (B,3,H,W), got {shape}")
        h, w = shape[2], shape[3]
        if not (isinstance(h, int) and isinstance(w, int)):
            try:
                size = ast.literal_eval(meta.get("imgsz", ""))
                h, w = (
                    (int(size[0]), int(size[1])) if isinstance(size, list | tuple) else (size, size)
                )
            except (ValueError, SyntaxError, TypeError, IndexError) as exc:
                raise ModelError(f"{self.path}: input size unknown (no 'imgsz')") from exc
        out_shape = self._session.get_outputs()[0].shape
        if len(out_shape) != 3:
            raise ModelError(f"{self.path}: output must be (B,4+classes,N), got {out_shape}")
        if isinstance(out_shape[1], int) and out_shape[1] != 4 + len(names):
            raise ModelError(
                f"{self.path}: output has {out_shape[1]} rows, expected 4+{len(names)} classes"
            )
        return ModelInfo(
            class_names=names,
            input_size=(int(w), int(h)),
            version=str(meta.get("bk_model_version") or self.path.stem),
            conf_threshold=conf if conf is not None else float(meta.get("bk_conf_threshold", 0.25)),
            iou_threshold=iou if iou is not None else float(meta.get("bk_iou_threshold", 0.45)),
            dynamic_batch=not isinstance(shape[0], int) or shape[0] < 1,
            augmentation=str(meta.get("bk_tta") or "none"),
            quantized=str(meta.get("bk_quantized") or ""),
        )

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by class id."""
        return self.info.class_names

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (width, height)."""
        return self.info.input_size

    @property
    def model_version(self) -> str:
        """Version from the model metadata (or the file name)."""
        return self.info.version

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect on BGR images; batched in one run when the model has a dynamic batch."""
        if not images:
            return []
        w, h = self.info.input_size
        step = self.max_batch if self.info.dynamic_batch else 1
        outputs: list[npt.NDArray[np.float32]] = []
        geometry: list[tuple[float, float, float]] = []
        for i in range(0, len(images), step):
            chunk = images[i : i + step]
            batch = np.empty((len(chunk), 3, h, w), np.float32)
            geometry.extend(letterbox_into(img, batch[k]) for k, img in enumerate(chunk))
            out = self._session.run(None, {self._input_name: batch})[0]
            if out.ndim != 3 or out.shape[0] != batch.shape[0]:
                raise ModelError(f"{self.path}: output shape {out.shape} for batch {batch.shape}")
            outputs.extend(np.asarray(o, np.float32) for o in out)
        results = []
        agnostic = self.classifier is not None
        for out, (scale, px, py), img in zip(outputs, geometry, images, strict=True):
            dets = decode_output(
                out, self.info.conf_threshold, self.info.iou_threshold, agnostic=agnostic
            )
            if len(dets):
                dets = dets.shifted(-px, -py).shifted(0, 0, 1 / scale)
                ih, iw = img.shape[:2]
                dets.xyxy[:, [0, 2]] = dets.xyxy[:, [0, 2]].clip(0, iw)
                dets.xyxy[:, [1, 3]] = dets.xyxy[:, [1, 3]].clip(0, ih)
            results.append(dets)
        if self.classifier is not None:
            results = self.classifier.relabel(images, results, self.info.conf_threshold)
        return results
