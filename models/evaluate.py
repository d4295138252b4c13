"""Evaluate a shipped ONNX detector on any labelled folder (VOC, YOLO txt, COCO JSON) through the
edge box's own code.

Detection uses ``edge.detect.onnx.OnnxDetector`` (the same letterbox, decoding and NMS as the
box). mAP50 and mAP50-95 follow ultralytics/COCO (101-point interpolated AP over IoU 0.50:0.95);
precision, recall and the confusion matrix are taken at the model's shipped confidence threshold.
Boxes a folder marks ``difficult`` (Pascal VOC) are neither required nor penalised, as in the
VOC protocol: they do not count as faces to find, and a detection that finds one is ignored
instead of being a false alarm.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bkcommon.errors import ModelError
from models.sources import Box, Issue, Sample, load_image, read_folder

logger = logging.getLogger(__name__)

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
MAP_CONF = 0.001  # detections kept for the precision-recall curve (as ultralytics val)
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """Per-class numbers: AP, and precision/recall at the shipped threshold."""

    name: str
    instances: int
    ap50: float
    ap50_95: float
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Everything ``evaluate`` prints and writes."""

    model: str
    model_version: str
    data: str
    images: int
    skipped: int
    input_size: list[int]
    conf_threshold: float
    iou_threshold: float
    map50: float
    map50_95: float
    classes: list[ClassMetrics]
    confusion_matrix: list[list[int]]
    confusion_labels: list[str]
    images_per_s: float
    ms_per_image: float
    threads: int
    augmentation: str = "none"
    difficult: int = 0  # boxes marked difficult in the folder: ignored, as in VOC
    # images of a YOLO folder without a label file: read as background (no faces), as YOLO has it
    unlabelled: int = 0
    # 95 % percentile-bootstrap intervals over images (``models.bootstrap``): metric name
    # (map50, ap50_<class>, precision_<class>, recall_<class>) -> [low, high]
    bootstrap_resamples: int = 0
    ci: dict[str, list[float]] = field(default_factory=dict)
    # An INT8 file's results depend on the CPU (``edge.detect.cpu_int8``): its ``bk_quantized``
    # and whether this CPU sums 8-bit products without saturating (None: unknown / float file).
    quantized: str = ""
    cpu_int8_dot_product: bool | None = None

    def to_json(self) -> str:
        """JSON text of the report."""
        return json.dumps(asdict(self), indent=2)


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of two xyxy arrays: (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    out: npt.NDArray[np.float32] = (
        inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
    ).astype(np.float32)
    return out


def class_iou(
    det_xyxy: npt.NDArray[np.float32],
    det_cls: npt.NDArray[np.int64],
    gt_xyxy: npt.NDArray[np.float32],
    gt_cls: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]:
    """Pairwise IoU (n_det, n_gt), zero where the classes differ: what a match may use."""
    iou = box_iou(det_xyxy, gt_xyxy)
    iou[det_cls[:, None] != gt_cls[None, :]] = 0.0
    return iou


def match_tp(  # noqa: PLR0917 - mirrors the array pairs
    det_xyxy: npt.NDArray[np.float32],
    det_cls: npt.NDArray[np.int64],
    det_conf: npt.NDArray[np.float32],
    gt_xyxy: npt.NDArray[np.float32],
    gt_cls: npt.NDArray[np.int64],
    thresholds: npt.NDArray[np.float64] = IOU_THRESHOLDS,
) -> npt.NDArray[np.bool_]:
    """True-positive flags (n_det, n_thresholds): same class, best free GT, highest conf first."""
    tp = np.zeros((len(det_xyxy), len(thresholds)), bool)
    if len(det_xyxy) == 0 or len(gt_xyxy) == 0:
        return tp
    iou = class_iou(det_xyxy, det_cls, gt_xyxy, gt_cls)
    for ti, thr in enumerate(thresholds):
        tp[:, ti] = greedy_match(iou, det_conf, float(thr)) >= 0
    return tp


def ignored_detections(  # noqa: PLR0917 - mirrors the array pairs
    det_xyxy: npt.NDArray[np.float32],
    det_cls: npt.NDArray[np.int64],
    tp: npt.NDArray[np.bool_],
    hard_xyxy: npt.NDArray[np.float32],
    hard_cls: npt.NDArray[np.int64],
    thresholds: npt.NDArray[np.float64] = IOU_THRESHOLDS,
) -> npt.NDArray[np.bool_]:
    """(n_det, n_thresholds): detections that match no required face but do find a
    ``difficult`` one of their class; VOC leaves them out of precision instead of calling
    them false alarms."""
    if len(det_xyxy) == 0 or len(hard_xyxy) == 0:
        return np.zeros((len(det_xyxy), len(thresholds)), bool)
    best = class_iou(det_xyxy, det_cls, hard_xyxy, hard_cls).max(axis=1)
    found: npt.NDArray[np.bool_] = ~tp & (best[:, None] >= thresholds[None, :])
    return found


def greedy_match(
    iou: npt.NDArray[np.float32], det_conf: npt.NDArray[np.float32], threshold: float
) -> npt.NDArray[np.int64]:
    """For each detection, the labelled box it matches (-1: none): most confident first,
    each taking the free labelled box it overlaps most at IoU >= ``threshold``.

    ``iou`` is (n_det, n_gt), already zero where the classes differ.
    """
    matched = np.full(iou.shape[0], -1, np.int64)
    taken = np.zeros(iou.shape[1], bool)
    for d in np.argsort(-det_conf, kind="stable"):
        cand = np.where(~taken & (iou[d] >= threshold))[0]
        if cand.size:
            g = cand[np.argmax(iou[d, cand])]
            taken[g] = True
            matched[d] = g
    return matched


def average_precision(recall: npt.NDArray[np.float64], precision: npt.NDArray[np.float64]) -> float:
    """101-point interpolated AP of one precision-recall curve (as ultralytics/COCO)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


def tie_points(
    conf_sorted: npt.NDArray[np.floating[Any]],
    tpc: npt.NDArray[Any],
    fpc: npt.NDArray[Any],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The cumulative counts at the last detection of each distinct confidence.

    Detections with the same confidence are one threshold: the curve gets one point for
    them all, whatever order they were read in. An INT8 model gives many equal scores (571
    of 595 detections shared one in a check), and stepping through them one by one made
    AP depend on file names and on the order a COCO file lists its images.
    """
    if conf_sorted.size == 0:
        return tpc.astype(np.float64), fpc.astype(np.float64)
    last = np.r_[conf_sorted[1:] != conf_sorted[:-1], True]
    return tpc[last].astype(np.float64), fpc[last].astype(np.float64)


def ap_per_class(
    tp: npt.NDArray[np.bool_],
    conf: npt.NDArray[np.float32],
    pred_cls: npt.NDArray[np.int64],
    n_gt: Sequence[int],
    ignored: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float64]:
    """AP (n_classes, n_thresholds) from pooled detections of the whole set.

    ``ignored`` (same shape as ``tp``) leaves detections out of the curve at a threshold.
    """
    nc = len(n_gt)
    ap = np.zeros((nc, tp.shape[1]))
    order = np.argsort(-conf, kind="stable")
    tp, pred_cls, conf = tp[order], pred_cls[order], conf[order]
    kept = np.ones_like(tp) if ignored is None else ~ignored[order]
    for c in range(nc):
        sel = pred_cls == c
        if n_gt[c] == 0 or not sel.any():
            continue
        for t in range(tp.shape[1]):
            k = kept[sel, t]
            tp_t = tp[sel, t][k]
            if tp_t.size == 0:
                continue
            tpc, fpc = tie_points(conf[sel][k], np.cumsum(tp_t), np.cumsum(~tp_t))
            ap[c, t] = average_precision(tpc / n_gt[c], tpc / (tpc + fpc))
    return ap


def confusion(  # noqa: PLR0917 - mirrors the array pairs
    det_xyxy: npt.NDArray[np.float32],
    det_cls: npt.NDArray[np.int64],
    gt_xyxy: npt.NDArray[np.float32],
    gt_cls: npt.NDArray[np.int64],
    nc: int,
    iou_thr: float = 0.5,
) -> npt.NDArray[np.int64]:
    """Confusion matrix (rows: predicted class + background, cols: true class + background)."""
    m = np.zeros((nc + 1, nc + 1), np.int64)
    iou = box_iou(det_xyxy, gt_xyxy)
    det_used = np.zeros(len(det_xyxy), bool)
    gt_used = np.zeros(len(gt_xyxy), bool)
    pairs = np.argwhere(iou >= iou_thr)
    if len(pairs):
        pairs = pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]
        for d, g in pairs:
            if not det_used[d] and not gt_used[g]:
                det_used[d] = gt_used[g] = True
                m[det_cls[d], gt_cls[g]] += 1
    for d in np.where(~det_used)[0]:
        m[det_cls[d], nc] += 1  # false positive on background
    for g in np.where(~gt_used)[0]:
        m[nc, gt_cls[g]] += 1  # missed
    return m


def box_arrays(
    boxes: Sequence[Box], names: Sequence[str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Labelled boxes as an xyxy array and a class-id array."""
    xyxy = np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], np.float32).reshape(-1, 4)
    return xyxy, np.array([names.index(b.cls) for b in boxes], np.int64)


def evaluate(
    data: Path,
    weights: Path,
    *,
    class_map: Mapping[str, str | None] | None = None,
    threads: int = 2,
    conf_threshold: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    classifier: Path | None = None,
) -> tuple[EvalReport, list[Issue]]:
    """Run the ONNX model over a labelled folder (VOC, YOLO or COCO) the way the edge box does
    and compute the metrics; ``bootstrap`` resamples of the images give 95 % intervals.

    ``classifier``: a crop classifier run as the box's second stage (the detector finds faces,
    the classifier names them; the shipped threshold is then the classifier file's)."""
    from edge.detect.cpu_int8 import int8_dot_product
    from edge.detect.crop_classifier import CropClassifier
    from edge.detect.onnx import OnnxDetector
    from models.bootstrap import ImageRecords, bootstrap_ci

    second = None if classifier is None else CropClassifier(classifier, threads=threads)
    probe = OnnxDetector(weights, threads=threads, classifier=second)
    names = probe.class_names
    shipped_conf = conf_threshold if conf_threshold is not None else probe.info.conf_threshold
    det = OnnxDetector(weights, threads=threads, conf_threshold=MAP_CONF, classifier=second)
    if not data.exists():
        raise ModelError(f"{data}: no such folder")
    res = read_folder(data, "auto", class_map or {}, names)
    for issue in res.issues:
        logger.warning("skipped %s: %s", issue.path, issue.reason)
    for image in res.unlabelled:
        logger.warning("no label file for %s: read as an image without faces", image)
    if not res.samples:
        reasons = sorted({i.reason for i in res.issues}) or ["no annotation files"]
        raise ModelError(f"{data}: no labelled image could be read ({'; '.join(reasons)[:300]})")
    nc = len(names)
    all_tp, all_ign, all_conf, all_cls = [], [], [], []
    n_gt = [0] * nc
    n_difficult = 0
    tp_fp_fn = np.zeros((nc, 3), np.int64)
    cm = np.zeros((nc + 1, nc + 1), np.int64)
    elapsed = 0.0
    samples: list[Sample] = res.samples
    last_report = time.monotonic()
    at50 = np.array([0.5])
    det_image: list[npt.NDArray[np.int64]] = []
    gt_rows: list[list[int]] = []
    shipped_rows: list[npt.NDArray[np.int64]] = []
    for k, s in enumerate(samples):
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:  # a big folder takes minutes
            last_report = time.monotonic()
            logger.info("evaluated %d of %d photos", k, len(samples))
        img = load_image(s)
        if img is None:
            continue
        t0 = time.perf_counter()
        d = det.detect([img])[0]
        elapsed += time.perf_counter() - t0
        gt_xyxy, gt_cls = box_arrays([b for b in s.boxes if not b.difficult], names)
        hard_xyxy, hard_cls = box_arrays([b for b in s.boxes if b.difficult], names)
        n_difficult += len(hard_cls)
        for c in gt_cls:
            n_gt[int(c)] += 1
        gt_rows.append([int((gt_cls == c).sum()) for c in range(nc)])
        det_image.append(np.full(len(d.confidence), len(gt_rows) - 1, np.int64))
        tp_curve = match_tp(d.xyxy, d.class_id, d.confidence, gt_xyxy, gt_cls)
        all_tp.append(tp_curve)
        all_ign.append(ignored_detections(d.xyxy, d.class_id, tp_curve, hard_xyxy, hard_cls))
        all_conf.append(d.confidence)
        all_cls.append(d.class_id)
        shipped = d.select(d.confidence >= shipped_conf)
        tp50 = match_tp(shipped.xyxy, shipped.class_id, shipped.confidence, gt_xyxy, gt_cls, at50)
        counted = ~ignored_detections(
            shipped.xyxy, shipped.class_id, tp50, hard_xyxy, hard_cls, at50
        )[:, 0]
        shipped, tp50 = shipped.select(counted), tp50[counted, 0]
        per_image = np.zeros((nc, 3), np.int64)
        for c in range(nc):
            pc = shipped.class_id == c
            tp_c = int(tp50[pc].sum())
            per_image[c] = (tp_c, int(pc.sum()) - tp_c, int((gt_cls == c).sum()) - tp_c)
        tp_fp_fn += per_image
        shipped_rows.append(per_image)
        cm += confusion(shipped.xyxy, shipped.class_id, gt_xyxy, gt_cls, nc)
    if all_tp:
        ap = ap_per_class(
            np.concatenate(all_tp),
            np.concatenate(all_conf),
            np.concatenate(all_cls),
            n_gt,
            np.concatenate(all_ign),
        )
    else:
        ap = np.zeros((nc, len(IOU_THRESHOLDS)))
    present = [c for c in range(nc) if n_gt[c] > 0]
    classes = []
    for c in range(nc):
        tp, fp, fn = (int(v) for v in tp_fp_fn[c])
        classes.append(
            ClassMetrics(
                name=names[c],
                instances=n_gt[c],
                ap50=round(float(ap[c, 0]), 4),
                ap50_95=round(float(ap[c].mean()), 4),
                precision=round(tp / (tp + fp), 4) if tp + fp else 0.0,
                recall=round(tp / (tp + fn), 4) if tp + fn else 0.0,
                tp=tp,
                fp=fp,
                fn=fn,
            )
        )
    ci: dict[str, list[float]] = {}
    if bootstrap > 0 and all_tp:
        records = ImageRecords(
            names=tuple(names),
            det_image=np.concatenate(det_image),
            det_conf=np.concatenate(all_conf).astype(np.float32),
            det_cls=np.concatenate(all_cls).astype(np.int64),
            tp50=np.concatenate(all_tp)[:, 0],
            ignored50=np.concatenate(all_ign)[:, 0],
            gt=np.array(gt_rows, np.int64).reshape(-1, nc),
            shipped=np.stack(shipped_rows),
        )
        ci = bootstrap_ci(records, resamples=bootstrap, seed=seed)
    n = len(samples)
    report = EvalReport(
        model=str(weights) if classifier is None else f"{weights} + {classifier}",
        model_version=probe.model_version,
        data=str(data),
        images=n,
        skipped=len(res.issues),
        input_size=list(probe.input_size),
        conf_threshold=shipped_conf,
        iou_threshold=probe.info.iou_threshold,
        map50=round(float(ap[present, 0].mean()), 4) if present else 0.0,
        map50_95=round(float(ap[present].mean()), 4) if present else 0.0,
        classes=classes,
        confusion_matrix=cm.tolist(),
        confusion_labels=[*names, "background"],
        images_per_s=round(n / elapsed, 2) if elapsed else 0.0,
        ms_per_image=round(1000 * elapsed / n, 2) if n else 0.0,
        threads=threads,
        augmentation=probe.info.augmentation,
        difficult=n_difficult,
        unlabelled=len(res.unlabelled),
        bootstrap_resamples=bootstrap if ci else 0,
        ci=ci,
        quantized=probe.info.quantized,
        cpu_int8_dot_product=int8_dot_product() if probe.info.quantized else None,
    )
    return report, res.issues


def format_report(r: EvalReport) -> str:
    """Human-readable table of a report."""
    lines = [
        f"model {r.model} ({r.model_version}), input {r.input_size[0]}x{r.input_size[1]}, "
        f"conf {r.conf_threshold:g}, iou {r.iou_threshold:g}"
        + ("" if r.augmentation == "none" else f", test-time augmentation {r.augmentation}"),
        f"data {r.data}: {r.images} images ({r.skipped} skipped)"
        + (f", {r.difficult} boxes marked difficult ignored" if r.difficult else "")
        + (
            f", {r.unlabelled} without a label file read as having no faces"
            " (give each an empty .txt to say so; otherwise check where the labels are)"
            if r.unlabelled
            else ""
        ),
        f"mAP50 {r.map50:.4f}  mAP50-95 {r.map50_95:.4f}",
        f"{'class':<24}{'inst':>6}{'AP50':>8}{'AP50-95':>9}{'P':>8}{'R':>8}",
    ]
    for c in r.classes:
        lines.append(
            f"{c.name:<24}{c.instances:>6}{c.ap50:>8.3f}{c.ap50_95:>9.3f}"
            f"{c.precision:>8.3f}{c.recall:>8.3f}"
        )
    if r.ci:
        lines.append(f"95% bootstrap intervals ({r.bootstrap_resamples} resamples of the images):")
        lines.append(f"  mAP50 {r.map50:.3f} [{r.ci['map50'][0]:.3f}, {r.ci['map50'][1]:.3f}]")
        for c in r.classes:
            if c.instances == 0:
                continue
            parts = [
                f"{label} {value:.3f} [{r.ci[key][0]:.3f}, {r.ci[key][1]:.3f}]"
                for label, value, key in (
                    ("AP50", c.ap50, f"ap50_{c.name}"),
                    ("P", c.precision, f"precision_{c.name}"),
                    ("R", c.recall, f"recall_{c.name}"),
                )
            ]
            lines.append(f"  {c.name:<22}" + "  ".join(parts))
    lines.append(
        "confusion matrix (rows predicted, columns true): " + ", ".join(r.confusion_labels)
    )
    lines.extend("  " + " ".join(f"{v:>5}" for v in row) for row in r.confusion_matrix)
    lines.append(
        f"speed: {r.images_per_s:.1f} images/s ({r.ms_per_image:.1f} ms/image, "
        f"{r.threads} threads, pre+inference+post)"
    )
    if r.quantized:
        dot = {
            True: "has an 8-bit dot product (VNNI / ARM)",
            False: "has no 8-bit dot product (VNNI / ARM): only 7-bit weights are exact here",
            None: "may or may not have an 8-bit dot product (VNNI / ARM)",
        }[r.cpu_int8_dot_product]
        lines.append(f"INT8 file ({r.quantized}); this CPU {dot}")
    return "\n".join(lines)
