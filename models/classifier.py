"""``models train-classifier``: the mask classifier the edge box runs on face crops.

The 320 px detector finds most faces but names the class of a face it shrank to ~20 px
poorly; this classifier names it from a crop of the photo at the photo's own resolution
(:mod:`edge.detect.crop_classifier` runs it on the box).

Data: the grouped split's ``train`` side only (``models split``); its group fold
``val_fold`` of the real photos is held apart to choose the epoch, the confidence rule and the
final threshold, the other folds train. MaskedFace-Net faces are used for the incorrect class
only (they are synthetic and of one class). The ``test`` side is never read.

Each labelled face is cached once as a context patch around it (faces taller than
``CONTEXT_FACE_PX`` are shrunk to it), then every epoch draws a new degraded crop from the patch
as a canteen camera would give it: colour and white balance jitter, low light, shrinking the
face to 12-40 px, motion blur, sensor noise, JPEG quality 10-60, a crop box shifted and scaled
(the detector's boxes are not exact) and mirror images. Classes are balanced by the loss
(weights ``count ** -0.5``, normalised). Everything is seeded.

The model is a small plain CNN (six 3x3 convolution blocks, global pooling), exported to ONNX
with the softmax inside and the metadata the box reads.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.detect.crop_classifier import CONF_RULES, crop_square, to_chw
from models.degrade import jpeg_artefacts, motion_blur, sensor_noise
from models.export import add_metadata
from models.prepare import DatasetConfig
from models.sources import Sample, load_image

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
CONTEXT = 0.8  # context kept around a cached face, as a fraction of its longer side, per side
CONTEXT_FACE_PX = 96.0  # cached faces taller than this are shrunk to it
SYNTHETIC_CLASS = "mask_weared_incorrect"
THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 13))  # 0.05 .. 0.60


@dataclass(frozen=True, slots=True)
class Face:
    """One labelled face: a context patch around it and the face box in the patch's pixels."""

    patch: Image
    box: tuple[float, float, float, float]
    label: int
    source: str
    name: str


@dataclass(frozen=True, slots=True)
class ClassifierOptions:
    """What ``train_classifier`` needs."""

    out: Path
    size: int = 64
    margin: float = 0.25
    epochs: int = 40
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0
    val_fold: int = 0
    width: int = 16
    threads: int = 2
    version: str = "mask-cls-v1"
    synthetic: str = "masks/maskedfacenet_incorrect"
    time_limit_s: float = 900.0
    max_face_px: float = CONTEXT_FACE_PX
    shrink_p: float = 0.6


@dataclass(slots=True)
class ClassifierReport:
    """What was trained on, how the epochs did on the validation fold, what was chosen."""

    version: str
    size: int
    margin: float
    classes: list[str]
    train_faces: dict[str, int]
    val_faces: dict[str, int]
    val_photos: int
    epochs_run: int
    best_epoch: int
    val_balanced_accuracy: float
    val_confusion: list[list[int]]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    parameters: int = 0
    size_bytes: int = 0
    max_abs_diff_onnx: float = 0.0
    choice: dict[str, Any] = field(default_factory=dict)


def cache_faces(
    samples: Sequence[Sample],
    classes: Sequence[str],
    source: str,
    only: str | None = None,
    max_face_px: float = CONTEXT_FACE_PX,
) -> list[Face]:
    """Context patches of every labelled, not-difficult face (of class ``only`` if given);
    faces taller than ``max_face_px`` are shrunk to it."""
    import cv2

    faces = []
    for s in samples:
        boxes = [b for b in s.boxes if not b.difficult and (only is None or b.cls == only)]
        if not boxes:
            continue
        img = load_image(s)
        if img is None:
            continue
        ih, iw = img.shape[:2]
        for b in boxes:
            side = max(b.x2 - b.x1, b.y2 - b.y1, 1.0)
            pad = CONTEXT * side
            x1, y1 = max(0, int(b.x1 - pad)), max(0, int(b.y1 - pad))
            x2, y2 = min(iw, int(np.ceil(b.x2 + pad))), min(ih, int(np.ceil(b.y2 + pad)))
            patch = img[y1:y2, x1:x2]
            box = (b.x1 - x1, b.y1 - y1, b.x2 - x1, b.y2 - y1)
            shrink = min(1.0, max_face_px / max(b.y2 - b.y1, 1.0))
            if shrink < 1.0:
                w = max(1, round(patch.shape[1] * shrink))
                h = max(1, round(patch.shape[0] * shrink))
                patch = np.asarray(
                    cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA), np.uint8
                )
                box = (box[0] * shrink, box[1] * shrink, box[2] * shrink, box[3] * shrink)
            faces.append(
                Face(np.ascontiguousarray(patch), box, classes.index(b.cls), source, s.image.name)
            )
    return faces


def augment(
    face: Face, rng: np.random.Generator, size: int, margin: float, shrink_p: float = 0.6
) -> Image:
    """One camera-like crop of a face (see the module docstring); ``size`` x ``size`` BGR;
    ``shrink_p``: how often the face is shrunk to 12-40 px."""
    import cv2

    img = face.patch.astype(np.float32)
    gain = rng.uniform(0.85, 1.15, 3).astype(np.float32)  # white balance
    img *= gain * np.float32(rng.uniform(0.7, 1.3))
    mean = img.mean()
    img = (img - mean) * np.float32(rng.uniform(0.7, 1.3)) + mean
    if rng.random() < 0.2:
        img *= np.float32(rng.uniform(0.2, 0.5))  # an unlit corner
    out = np.clip(img, 0, 255).astype(np.uint8)
    box = np.array(face.box, np.float32)
    face_h = float(box[3] - box[1])
    if rng.random() < shrink_p:
        target = float(rng.uniform(12, 40))
        if face_h > target:
            s = target / face_h
            h, w = out.shape[:2]
            out = cv2.resize(
                out,
                (max(1, round(w * s)), max(1, round(h * s))),
                interpolation=cv2.INTER_AREA,
            )
            box *= np.float32(s)
    if rng.random() < 0.3:
        out = motion_blur(out, int(rng.integers(3, 8)), float(rng.uniform(0, 180)))
    if rng.random() < 0.4:
        out = sensor_noise(out, float(rng.uniform(2, 12)), rng)
    if rng.random() < 0.5:
        out = jpeg_artefacts(out, int(rng.integers(10, 61)))
    w, h = box[2] - box[0], box[3] - box[1]
    cx = (box[0] + box[2]) / 2 + rng.normal(0, 0.08) * w
    cy = (box[1] + box[3]) / 2 + rng.normal(0, 0.08) * h
    w, h = w * rng.uniform(0.85, 1.2), h * rng.uniform(0.85, 1.2)
    jittered = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
    crop = crop_square(out, jittered, margin, size)
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    return crop


def plain_crop(face: Face, size: int, margin: float) -> Image:
    """The crop of a cached face as the box takes it (no augmentation)."""
    return crop_square(face.patch, np.array(face.box, np.float32), margin, size)


def to_batch(crops: Sequence[Image]) -> npt.NDArray[np.float32]:
    """BGR uint8 crops -> (n, 3, S, S) RGB 0..1, through the box's own conversion."""
    s = crops[0].shape[0] if crops else 0
    batch = np.empty((len(crops), 3, s, s), np.float32)
    for k, crop in enumerate(crops):
        to_chw(crop, batch[k])
    return batch


def build_model(num_classes: int, width: int = 16) -> Any:
    """The classifier network (torch): six conv-BN-ReLU blocks, global average pooling,
    dropout and a linear layer; softmax is added at export."""
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> list[Any]:
        return [
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    w = width
    return nn.Sequential(
        *block(3, w, 2),
        *block(w, 2 * w, 1),
        *block(2 * w, 4 * w, 2),
        *block(4 * w, 4 * w, 1),
        *block(4 * w, 8 * w, 2),
        *block(8 * w, 8 * w, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(8 * w, num_classes),
    )


def confusion_of(labels: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], nc: int) -> Any:
    """Confusion matrix (rows true, columns predicted)."""
    m = np.zeros((nc, nc), np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


def balanced_accuracy(m: npt.NDArray[np.int64]) -> float:
    """Mean per-class recall over the classes present (rows true)."""
    rows = m.sum(axis=1)
    present = rows > 0
    return float((np.diag(m)[present] / rows[present]).mean()) if present.any() else 0.0


def predict(model: Any, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Softmax probabilities of a torch model on a float batch (eval mode, no grad)."""
    import torch

    model.eval()
    with torch.no_grad():
        out = []
        for i in range(0, len(batch), 256):
            out.append(torch.softmax(model(torch.from_numpy(batch[i : i + 256])), 1).numpy())
    return np.concatenate(out).astype(np.float32)


def export_onnx(
    model: Any,
    out: Path,
    *,
    classes: Sequence[str],
    size: int,
    margin: float,
    version: str,
    conf_rule: str = "face_x_prob",
    conf_threshold: float = 0.25,
) -> float:
    """Write the classifier as ONNX (softmax inside, dynamic batch, box metadata); return the
    largest probability difference between ONNX Runtime and torch on random crops."""
    import onnx
    import onnxruntime as ort
    import torch
    from torch import nn

    net = nn.Sequential(model, nn.Softmax(dim=1)).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, still exact here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (dummy,),
            str(out),
            input_names=["crops"],
            output_names=["probs"],
            dynamic_axes={"crops": {0: "batch"}, "probs": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    add_metadata(
        out,
        {
            "names": repr(dict(enumerate(classes))),
            "bk_model_version": version,
            "bk_input_size": str(size),
            "bk_crop_margin": f"{margin:g}",
            "bk_conf_rule": conf_rule,
            "bk_conf_threshold": f"{conf_threshold:g}",
        },
    )
    onnx.checker.check_model(str(out))
    x = np.random.default_rng(0).random((8, 3, size, size), dtype=np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = np.asarray(sess.run(None, {"crops": x})[0])
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    return float(np.abs(got - ref).max())


def split_faces(
    doc: dict[str, Any],
    config: DatasetConfig,
    data_root: Path,
    opts: ClassifierOptions,
) -> tuple[list[Face], list[Face], list[Sample]]:
    """Training faces, validation-fold faces, and the validation-fold photos (train side only)."""
    from models.splits import side_samples

    folds = {
        (entry["path"], im["name"]): int(im["fold"])
        for entry in doc["sources"]
        for im in entry["images"]
    }
    train: list[Face] = []
    val: list[Face] = []
    val_photos: list[Sample] = []
    for path, samples in side_samples(doc, config, data_root, "train").items():
        synthetic = path == opts.synthetic
        held = [s for s in samples if folds[(path, s.image.name)] == opts.val_fold]
        rest = [s for s in samples if folds[(path, s.image.name)] != opts.val_fold]
        only = SYNTHETIC_CLASS if synthetic else None
        train += cache_faces(rest, config.classes, path, only, opts.max_face_px)
        if not synthetic:  # choices are made on real photos only
            val += cache_faces(held, config.classes, path, max_face_px=opts.max_face_px)
            val_photos += held
    return train, val, val_photos


def _counts(faces: Sequence[Face], classes: Sequence[str]) -> dict[str, int]:
    return {c: sum(f.label == i for f in faces) for i, c in enumerate(classes)}


def train_classifier(
    doc: dict[str, Any],
    config: DatasetConfig,
    data_root: Path,
    opts: ClassifierOptions,
    detector: Path | None = None,
) -> ClassifierReport:
    """Train, keep the epoch with the best balanced accuracy on the validation fold, export,
    then (with ``detector``) choose the confidence rule and final threshold on the validation
    fold's photos as the box runs them, and write them into the file."""
    import torch
    from torch import nn

    t_start = time.monotonic()
    torch.manual_seed(opts.seed)
    torch.set_num_threads(opts.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(opts.seed)
    classes = list(config.classes)
    nc = len(classes)
    train, val, val_photos = split_faces(doc, config, data_root, opts)
    logger.info("faces: train %d, validation %d", len(train), len(val))
    labels = np.array([f.label for f in train], np.int64)
    counts = np.bincount(labels, minlength=nc).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1) ** -0.5, 0.0)
    weights *= nc / weights.sum()
    val_labels = np.array([f.label for f in val], np.int64)
    # two views of every validation face: as cropped, and through one fixed camera degradation
    val_rng = np.random.default_rng(opts.seed + 1)
    val_batch = to_batch(
        [plain_crop(f, opts.size, opts.margin) for f in val]
        + [augment(f, val_rng, opts.size, opts.margin, opts.shrink_p) for f in val]
    )
    val_all = np.concatenate([val_labels, val_labels])

    model = build_model(nc, opts.width)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    steps_per_epoch = int(np.ceil(len(train) / opts.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        optim, max_lr=opts.lr, total_steps=opts.epochs * steps_per_epoch, pct_start=0.15
    )
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32), label_smoothing=0.05
    )
    best: tuple[float, int, dict[str, Any], Any] = (-1.0, 0, {}, None)
    history: list[dict[str, float]] = []
    epochs_run = 0
    for epoch in range(1, opts.epochs + 1):
        t0 = time.monotonic()
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for i in range(0, len(order), opts.batch):
            idx = order[i : i + opts.batch]
            x = torch.from_numpy(
                to_batch(
                    [augment(train[j], rng, opts.size, opts.margin, opts.shrink_p) for j in idx]
                )
            )
            y = torch.from_numpy(labels[idx])
            optim.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optim.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        probs = predict(model, val_batch)
        m = confusion_of(val_all, probs.argmax(axis=1), nc)
        bacc = balanced_accuracy(m)
        epochs_run = epoch
        history.append(
            {
                "epoch": epoch,
                "loss": round(total / len(train), 4),
                "val_balanced_accuracy": round(bacc, 4),
                "seconds": round(time.monotonic() - t0, 1),
            }
        )
        logger.info("epoch %d: %s", epoch, history[-1])
        if bacc > best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = (bacc, epoch, state, m)
        if time.monotonic() - t_start > opts.time_limit_s:
            logger.warning("time limit reached after epoch %d", epoch)
            break
    model.load_state_dict(best[2])
    diff = export_onnx(
        model, opts.out, classes=classes, size=opts.size, margin=opts.margin, version=opts.version
    )
    report = ClassifierReport(
        version=opts.version,
        size=opts.size,
        margin=opts.margin,
        classes=classes,
        train_faces=_counts(train, classes),
        val_faces=_counts(val, classes),
        val_photos=len(val_photos),
        epochs_run=epochs_run,
        best_epoch=best[1],
        val_balanced_accuracy=round(best[0], 4),
        val_confusion=best[3].tolist(),
        history=history,
        parameters=sum(p.numel() for p in model.parameters()),
        size_bytes=opts.out.stat().st_size,
        max_abs_diff_onnx=diff,
    )
    if detector is not None:
        report.choice = choose_rule(detector, opts.out, val_photos, classes, threads=opts.threads)
        add_metadata(
            opts.out,
            {
                "bk_conf_rule": str(report.choice["rule"]),
                "bk_conf_threshold": f"{report.choice['threshold']:g}",
            },
        )
    report.seconds = round(time.monotonic() - t_start, 1)
    return report


def choose_rule(
    detector: Path,
    classifier: Path,
    photos: Sequence[Sample],
    classes: Sequence[str],
    *,
    threads: int = 2,
) -> dict[str, Any]:
    """The confidence rule with the best mAP50, then the final threshold with the best mean F1
    over classes, of detector + classifier on validation photos (never the test side)."""
    from edge.detect.crop_classifier import CropClassifier
    from edge.detect.onnx import OnnxDetector
    from models.evaluate import MAP_CONF, ap_per_class, box_arrays, match_tp

    nc = len(classes)
    table: dict[str, Any] = {}
    for rule in CONF_RULES:
        clf = CropClassifier(classifier, threads=threads, conf_rule=rule)
        det = OnnxDetector(detector, threads=threads, conf_threshold=MAP_CONF, classifier=clf)
        tps, confs, clss = [], [], []
        n_gt = [0] * nc
        per_thr = np.zeros((len(THRESHOLDS), nc, 3), np.int64)
        for s in photos:
            img = load_image(s)
            if img is None:
                continue
            d = det.detect([img])[0]
            gt_xyxy, gt_cls = box_arrays([b for b in s.boxes if not b.difficult], classes)
            for c in gt_cls:
                n_gt[int(c)] += 1
            tp = match_tp(d.xyxy, d.class_id, d.confidence, gt_xyxy, gt_cls)
            tps.append(tp)
            confs.append(d.confidence)
            clss.append(d.class_id)
            for ti, thr in enumerate(THRESHOLDS):
                k = d.confidence >= thr
                tp50 = match_tp(
                    d.xyxy[k], d.class_id[k], d.confidence[k], gt_xyxy, gt_cls, np.array([0.5])
                )[:, 0]
                for c in range(nc):
                    pc = d.class_id[k] == c
                    t = int(tp50[pc].sum())
                    per_thr[ti, c] += (t, int(pc.sum()) - t, int((gt_cls == c).sum()) - t)
        ap = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(clss), n_gt)
        present = [c for c in range(nc) if n_gt[c] > 0]
        rows = []
        for ti, thr in enumerate(THRESHOLDS):
            f1s, rec = [], {}
            for c in present:
                tp, fp, fn = per_thr[ti, c]
                f1s.append(2 * tp / max(2 * tp + fp + fn, 1))
                rec[classes[c]] = round(tp / max(tp + fn, 1), 4)
            rows.append({"threshold": thr, "mean_f1": round(float(np.mean(f1s)), 4), "recall": rec})
        table[rule] = {"map50": round(float(ap[present, 0].mean()), 4), "thresholds": rows}
    rule = max(CONF_RULES, key=lambda r: float(table[r]["map50"]))
    row = max(table[rule]["thresholds"], key=lambda r: float(r["mean_f1"]))
    return {
        "rule": rule,
        "threshold": row["threshold"],
        "criterion": "rule: best mAP50; threshold: best mean F1 over classes (validation fold)",
        "detector": str(detector),
        "photos": len(photos),
        "table": table,
    }


def write_report(report: ClassifierReport, path: Path) -> None:
    """The metrics JSON beside the model."""
    path.write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")
