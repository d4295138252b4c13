"""``brightkitchen models …``: prepare, split, train, export, average, evaluate, estimate, …

Light at import (argparse and the standard library); each handler imports what it needs.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bkcommon.errors import ModelError

if TYPE_CHECKING:
    from models.sources import Issue

logger = logging.getLogger(__name__)

DEFAULT_DATA_ROOT = Path(os.environ.get("BK_DATASETS_DIR", "../shared/datasets"))
DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "mask.yaml"


def _cmd_prepare(args: argparse.Namespace) -> int:
    from models.prepare import load_config, prepare

    split_doc = None
    if args.split:
        from models.splits import load_split

        split_doc = load_split(Path(args.split))
    report = prepare(
        load_config(Path(args.config)),
        Path(args.data_root),
        Path(args.out),
        max_side_px=args.max_side,
        split_doc=split_doc,
    )
    print(f"wrote {report.data_yaml}: {report.train_images} train, {report.val_images} val images")
    if report.test_images:
        print(f"  {report.test_images} test images kept out of training: {args.out}/test_voc")
    if report.train_listed > report.train_images:
        print(f"  train.txt lists {report.train_listed} an epoch (repeat_with)")
    for split, counts in report.boxes_per_class.items():
        print(f"  {split}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for issue in report.issues:
        print(f"  skipped {issue.path}: {issue.reason}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from models.train import TrainOptions, train

    start = args.start
    if args.coco_start:
        from models.offline import setup_offline

        setup_offline()
        from models.pretrained import build_start_checkpoint

        start_path = Path(args.project) / "yolov5n_coco_start.pt"
        build_start_checkpoint(start_path, Path(args.coco_weights))
        start = str(start_path)
    best = train(
        TrainOptions(
            data=Path(args.data),
            start=start,
            imgsz=args.imgsz,
            epochs=args.epochs,
            batch=args.batch,
            device=args.device,
            workers=args.workers,
            project=Path(args.project),
            name=args.name,
            resume=args.resume,
            time_h=args.time_hours,
            seed=args.seed,
            patience=args.patience,
            cache=args.cache,
            camera_augment=args.camera_augment,
            face_paste=args.face_paste,
            paste_classes=tuple(args.paste_class or ["mask_weared_incorrect"]),
            extra=tuple(_parse_extra(args.set)),
        )
    )
    print(f"best weights: {best}")
    return 0


def _parse_extra(items: list[str]) -> list[tuple[str, Any]]:
    """``key=value`` pairs for ultralytics, values parsed as YAML scalars."""
    import yaml

    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs key=value, got {item!r}")
        out.append((key, yaml.safe_load(value)))
    return out


def _cmd_export(args: argparse.Namespace) -> int:
    from models.export import export

    res = export(
        Path(args.weights),
        Path(args.out),
        imgsz=args.imgsz,
        version=args.version,
        conf_threshold=args.conf,
        iou_threshold=args.iou,
        opset=args.opset,
        dynamic_batch=args.dynamic_batch,
        mirror=args.mirror_average,
    )
    print(
        f"wrote {res.path} ({res.size_bytes / 1e6:.1f} MB); ONNX Runtime vs framework: "
        f"boxes {res.max_abs_diff_boxes_px:.4f} px, scores {res.max_abs_diff_scores:.2e}"
    )
    return 0


def parse_class_maps(items: list[str]) -> dict[str, str | None]:
    """``--map SRC=DST`` options as a class table (``SRC=`` drops the source class).

    Example:
        >>> parse_class_maps(["face_no_mask=without_mask", "hat="])
        {'face_no_mask': 'without_mask', 'hat': None}
    """
    out: dict[str, str | None] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip():
            raise SystemExit(f"--map {item!r}: expected SOURCE=CLASS (or SOURCE= to drop it)")
        out[src.strip()] = dst.strip() or None
    return out


def summarise_skipped(issues: Sequence[Issue], classes: Sequence[str]) -> list[str]:
    """One line per reason a file was skipped, most frequent first, with what to do. Reasons
    that differ only in their numbers (a box's corners, an image's size) are one line, with
    the first as the example."""
    import re
    from collections import Counter

    def kind(reason: str) -> str:
        return re.sub(r"-?\d+(?:\.\d+)?", "#", reason)

    counts = Counter(kind(i.reason) for i in issues)
    first: dict[str, str] = {}
    for i in issues:
        first.setdefault(kind(i.reason), i.reason)
    lines = []
    for key, n in counts.most_common():
        reason = first[key]
        if n > 1 and key != reason:
            reason = f"{reason}, and the like"
        hint = ""
        if reason.startswith("unknown class "):
            name = reason.removeprefix("unknown class ")
            hint = (
                f" (map it to one of {', '.join(classes)}: --map {name}=CLASS,"
                f" or --map {name}= to drop it)"
            )
        if reason.startswith("box ") and "outside the" in reason:
            hint = " (boxes are in pixels of the image as stored; YOLO boxes in 0-1 fractions)"
        lines.append(f"skipped {n} file(s): {reason}{hint}")
    return lines


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from models.evaluate import evaluate, format_report
    from models.prepare import load_config

    class_map = load_config(Path(args.config)).class_map if args.config else {}
    class_map = {**class_map, **parse_class_maps(args.map)}
    if args.json and Path(args.json).is_dir():  # said now, not after the whole run
        raise ModelError(f"--json {args.json}: a folder; give a file name")
    report, issues = evaluate(
        Path(args.data),
        Path(args.weights),
        class_map=class_map,
        threads=args.threads,
        conf_threshold=args.conf,
        bootstrap=args.bootstrap,
        seed=args.seed,
        classifier=Path(args.classifier) if args.classifier else None,
    )
    print(format_report(report))
    for line in summarise_skipped(issues, [c.name for c in report.classes]):
        print(line)
    if args.json:
        try:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"--json {args.json}: {exc}") from None
        print(f"wrote {args.json}")
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from models.prepare import load_config
    from models.splits import build_split, write_split

    doc = build_split(
        load_config(Path(args.config)),
        Path(args.data_root),
        phash_bits=args.phash_bits,
        folds=args.folds,
    )
    write_split(doc, Path(args.out))
    print(f"wrote {args.out}")
    for path, c in doc["summary"].items():
        print(
            f"  {path}: {c['images']} images in {c['groups']} groups "
            f"({c['multi_image_groups']} of several images); train {c['train']}, "
            f"val {c['val']}, test {c['test']}; {c['leaked_from_recipe_val']} images of the "
            "recipe's validation split have a look-alike in its training split"
        )
    return 0


def _cmd_degrade(args: argparse.Namespace) -> int:
    from models.degrade import KINDS, write_degraded
    from models.prepare import load_config
    from models.sources import read_folder

    config = load_config(Path(args.config))
    class_map = {**config.class_map, **parse_class_maps(args.map)}
    res = read_folder(Path(args.data), "auto", class_map, config.classes)
    kinds = args.kind or list(KINDS)
    n = write_degraded(res.samples, Path(args.out), kinds)
    print(f"wrote {n} images x {len(kinds)} degradations to {args.out}/<kind>/ (VOC)")
    for line in summarise_skipped(res.issues, config.classes):
        print(line)
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from models.degrade import KINDS
    from models.estimate import estimate, format_table, write_result
    from models.prepare import load_config
    from models.splits import load_split

    result = estimate(
        load_split(Path(args.split)),
        load_config(Path(args.config)),
        Path(args.data_root),
        [Path(w) for w in args.weights],
        Path(args.work),
        kinds=args.kind or KINDS,
        bootstrap=args.bootstrap,
        threads=args.threads,
        classifier=Path(args.classifier) if args.classifier else None,
    )
    print(format_table(result))
    if args.json:
        write_result(result, Path(args.json))
        print(f"wrote {args.json} and {Path(args.json).with_suffix('.md')}")
    return 0


def _cmd_train_classifier(args: argparse.Namespace) -> int:
    from models.classifier import ClassifierOptions, train_classifier, write_report
    from models.prepare import load_config
    from models.splits import load_split

    out = Path(args.out)
    report = train_classifier(
        load_split(Path(args.split)),
        load_config(Path(args.config)),
        Path(args.data_root),
        ClassifierOptions(
            out=out,
            size=args.size,
            margin=args.margin,
            epochs=args.epochs,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed,
            val_fold=args.val_fold,
            width=args.width,
            threads=args.threads,
            version=args.version,
            time_limit_s=args.time_limit_s,
            max_face_px=args.max_face_px,
            shrink_p=args.shrink_p,
        ),
        detector=Path(args.detector) if args.detector else None,
    )
    metrics = out.with_suffix(".metrics.json")
    write_report(report, metrics)
    print(
        f"wrote {out} ({report.size_bytes / 1e6:.2f} MB, {report.parameters} parameters) and "
        f"{metrics}: best epoch {report.best_epoch} of {report.epochs_run}, validation-fold "
        f"balanced accuracy {report.val_balanced_accuracy:.3f}"
    )
    if report.choice:
        print(f"  confidence rule {report.choice['rule']}, threshold {report.choice['threshold']}")
    return 0


def _cmd_mirror(args: argparse.Namespace) -> int:
    from models.mirror_average import mirror_average

    src, out = Path(args.onnx), Path(args.out)
    if src.resolve() == out.resolve():
        raise SystemExit("--out must differ from --onnx (the plain model is the reference)")
    res = mirror_average(src, out, version=args.version, conf_threshold=args.conf)
    print(
        f"wrote {res.path} ({out.stat().st_size / 1e6:.1f} MB); vs two passes of {src}: "
        f"boxes {res.max_abs_diff_boxes_px:.1e} px, scores {res.max_abs_diff_scores:.1e}"
    )
    return 0


def _cmd_average(args: argparse.Namespace) -> int:
    from models.average import average_onnx

    res = average_onnx([Path(p) for p in args.onnx], Path(args.out), version=args.version)
    print(f"wrote {res.path}: {res.tensors} conv tensors, uniform mean of {', '.join(res.sources)}")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from models.quantize import quantize

    res = quantize(
        Path(args.onnx),
        Path(args.out),
        images=Path(args.images),
        calibration_images=args.calibration_images,
        version=args.version,
        head_convs_float=args.head_convs_float,
        method=args.method,
        full_range=args.full_range,
    )
    print(
        f"wrote {res.path} ({res.size_bytes / 1e6:.1f} MB): {res.quantized_convs} convolutions "
        f"in INT8, {res.float_nodes} head nodes in float, calibrated on "
        f"{res.calibration_images} images; class scores vs the float file: max |diff| "
        f"{res.max_abs_diff_scores:.3f}, mean {res.mean_abs_diff_scores:.1e}"
    )
    print(f"judge it as any model: brightkitchen models evaluate --weights {res.path} …")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    from models.recover import recover

    res = recover(
        Path(args.onnx),
        Path(args.out),
        images=Path(args.images),
        cfg=args.cfg,
        calibration_images=args.calibration_images,
    )
    against = (
        "INT8 file, means over each image's 20 strongest anchors: boxes"
        if res.from_int8
        else "boxes"
    )
    print(
        f"wrote {res.path}: {res.tensors} tensors, BatchNorm statistics from "
        f"{res.calibration_images} images; checkpoint vs ONNX ({against}) "
        f"{res.max_abs_diff_boxes_px:.4f} px, scores {res.max_abs_diff_scores:.2e}"
    )
    print(f"fine-tune it with: brightkitchen models train --start {res.path} …")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from edge.boards import BoardColourModel
    from models.boards import calibrate, load_crops

    crops = load_crops(Path(args.crops))
    if not crops:
        print(f"no crops found under {args.crops}/<board_type>/")
        return 2
    config = calibrate(crops, min_fraction=args.min_fraction)
    config.save(args.out)
    model = BoardColourModel(config)
    right = sum(model.classify(c)[0] == t for t, cs in crops.items() for c in cs)
    total = sum(len(cs) for cs in crops.values())
    print(f"wrote {args.out}: {', '.join(config.types)}; {right}/{total} calibration crops right")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from models.boards import write_synthetic

    n = sum(1 for _ in write_synthetic(Path(args.out), args.count, args.seed))
    print(f"wrote {n} SYNTHETIC board scenes to {args.out} (VOC)")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``models`` commands to the brightkitchen command."""
    models = subparsers.add_parser("models", help="train, export and evaluate the detectors")
    sub = models.add_subparsers(dest="models_command", required=True)

    p = sub.add_parser("prepare", help="VOC/YOLO folders -> ultralytics dataset (group split)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="dataset recipe YAML")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="base of source paths")
    p.add_argument("--out", default="runs/datasets/mask", help="output dataset folder")
    p.add_argument("--max-side", type=int, default=None, help="downscale larger images (px)")
    p.add_argument(
        "--split",
        default=None,
        help="a models split file: its train/val sides, and its test side kept out (test_voc/)",
    )
    p.set_defaults(handler=_cmd_prepare)

    t = sub.add_parser("train", help="train with ultralytics (offline, CPU or GPU, resumable)")
    t.add_argument("--data", default="runs/datasets/mask/data.yaml")
    t.add_argument("--start", default="yolov5n.yaml", help="model YAML or an earlier run's .pt")
    t.add_argument("--coco-start", action="store_true", help="start from COCO YOLOv5n weights")
    t.add_argument("--coco-weights", default="../shared/weights/yolov5n-coco.pt")
    t.add_argument("--imgsz", type=int, default=640)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--time-hours", type=float, default=None, help="stop after this many hours")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--device", default="auto", help="auto, cpu, 0, …")
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--project", default="runs/train")
    t.add_argument("--name", default="mask")
    t.add_argument("--resume", action="store_true", help="resume runs/train/NAME/weights/last.pt")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patience", type=int, default=50)
    t.add_argument("--cache", action="store_true", help="cache images in RAM")
    t.add_argument(
        "--camera-augment",
        type=float,
        default=0.0,
        metavar="P",
        help="blur, dim, add noise and JPEG-compress training images, each with probability P",
    )
    t.add_argument(
        "--face-paste",
        type=float,
        default=0.0,
        metavar="P",
        help="paste one or two faces of --paste-class into a training image with probability P",
    )
    t.add_argument(
        "--paste-class",
        action="append",
        default=None,
        metavar="NAME",
        help="class whose training faces are pasted (repeatable; default mask_weared_incorrect)",
    )
    t.add_argument("--set", action="append", default=[], help="extra ultralytics key=value")
    t.set_defaults(handler=_cmd_train)

    e = sub.add_parser("export", help="weights -> ONNX with edge metadata, checked vs torch")
    e.add_argument("--weights", required=True)
    e.add_argument("--out", default="models/weights/mask_yolo.onnx")
    e.add_argument("--imgsz", type=int, default=640)
    e.add_argument("--version", required=True, help="model version string (bk_model_version)")
    e.add_argument("--conf", type=float, default=0.25, help="shipped confidence threshold")
    e.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold")
    e.add_argument("--opset", type=int, default=17)
    e.add_argument(
        "--dynamic-batch", action="store_true", help="dynamic batch axis (crops batched per call)"
    )
    e.add_argument(
        "--mirror-average",
        action="store_true",
        help="build mirror averaging into the file (two passes per image, see mirror-average)",
    )
    e.set_defaults(handler=_cmd_export)

    m = sub.add_parser(
        "mirror-average",
        help="ONNX -> ONNX that averages its output on the image and its mirror image",
    )
    m.add_argument("--onnx", required=True, help="a plain YOLO ONNX export")
    m.add_argument("--out", required=True)
    m.add_argument("--version", default=None, help="new bk_model_version (default: keep)")
    m.add_argument("--conf", type=float, default=None, help="new shipped confidence threshold")
    m.set_defaults(handler=_cmd_mirror)

    a = sub.add_parser(
        "average", help="uniform weight average of ONNX models fine-tuned from one another"
    )
    a.add_argument(
        "--onnx",
        action="append",
        required=True,
        help="a plain export; give two or more "
        "(the first one's graph, input size and metadata are kept)",
    )
    a.add_argument("--out", required=True)
    a.add_argument("--version", default=None, help="new bk_model_version (default: the first's)")
    a.set_defaults(handler=_cmd_average)

    v = sub.add_parser(
        "evaluate", help="mAP, P/R with bootstrap intervals, confusion, speed of an ONNX"
    )
    v.add_argument(
        "--data",
        required=True,
        help="labelled folder: Pascal VOC (images/ + annotations/, JPEGImages/ + Annotations/, "
        "or .xml beside each image), YOLO txt (images/ + labels/, or .txt beside each image; "
        "classes.txt, obj.names or data.yaml; a Roboflow export; or the dataset .yaml itself), "
        "or COCO JSON (a .json with images, annotations, categories; or the .json itself)",
    )
    v.add_argument("--weights", default="models/weights/mask_yolo.onnx")
    v.add_argument("--json", default=None, help="also write the report here")
    v.add_argument("--config", default=str(DEFAULT_CONFIG), help="recipe whose class_map to use")
    v.add_argument("--threads", type=int, default=2)
    v.add_argument("--conf", type=float, default=None, help="override the shipped threshold")
    v.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="resamples of the images for 95%% intervals (0: none)",
    )
    v.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    v.add_argument(
        "--classifier", default=None, help="crop classifier ONNX run as the second stage"
    )
    v.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SOURCE=CLASS",
        help="map a class name of the folder to ours (repeatable; SOURCE= drops it), "
        "on top of the recipe's class_map",
    )
    v.set_defaults(handler=_cmd_evaluate)

    sp = sub.add_parser(
        "split", help="grouped split file: near-duplicates and look-alikes on one side only"
    )
    sp.add_argument("--config", default=str(DEFAULT_CONFIG), help="dataset recipe YAML")
    sp.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="base of source paths")
    sp.add_argument("--out", default="models/configs/mask_split.json")
    sp.add_argument("--phash-bits", type=int, default=14, help="pHash distance that groups")
    sp.add_argument("--folds", type=int, default=5, help="group k-fold folds inside a source")
    sp.set_defaults(handler=_cmd_split)

    dg = sub.add_parser("degrade", help="labelled folder -> degraded-camera copies (VOC)")
    dg.add_argument("--data", required=True, help="VOC, YOLO or COCO folder")
    dg.add_argument("--out", required=True, help="writes OUT/<kind>/images + annotations")
    dg.add_argument("--kind", action="append", default=None, help="one degradation (repeatable)")
    dg.add_argument("--config", default=str(DEFAULT_CONFIG), help="recipe whose class_map to use")
    dg.add_argument("--map", action="append", default=[], metavar="SOURCE=CLASS")
    dg.set_defaults(handler=_cmd_degrade)

    es = sub.add_parser(
        "estimate", help="held-out and degraded-camera metrics with bootstrap intervals"
    )
    es.add_argument("--split", default="models/configs/mask_split.json", help="from models split")
    es.add_argument("--config", default=str(DEFAULT_CONFIG), help="dataset recipe YAML")
    es.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="base of source paths")
    es.add_argument(
        "--weights", action="append", required=True, help="ONNX to measure (repeatable)"
    )
    es.add_argument("--work", default="runs/estimate", help="held-out and degraded folders")
    es.add_argument("--json", default=None, help="report (a .md table is written beside it)")
    es.add_argument("--kind", action="append", default=None, help="only these degradations")
    es.add_argument("--bootstrap", type=int, default=1000)
    es.add_argument("--threads", type=int, default=2)
    es.add_argument(
        "--classifier",
        default=None,
        help="crop classifier ONNX: each model is measured alone and with it as second stage",
    )
    es.set_defaults(handler=_cmd_estimate)

    tc = sub.add_parser(
        "train-classifier",
        help="mask classifier on face crops (second stage of the edge box), CPU, from scratch",
    )
    tc.add_argument("--split", default="models/configs/mask_split.json", help="from models split")
    tc.add_argument("--config", default=str(DEFAULT_CONFIG), help="dataset recipe YAML")
    tc.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="base of source paths")
    tc.add_argument("--out", default="models/weights/mask_cls.onnx")
    tc.add_argument(
        "--detector",
        default="models/weights/mask_yolo_320.onnx",
        help="detector whose boxes the rule and threshold are chosen with ('' : skip)",
    )
    tc.add_argument("--size", type=int, default=64, help="square crop side (px)")
    tc.add_argument("--margin", type=float, default=0.25, help="crop margin per side (x box)")
    tc.add_argument("--epochs", type=int, default=40)
    tc.add_argument("--batch", type=int, default=128)
    tc.add_argument("--lr", type=float, default=3e-3)
    tc.add_argument("--width", type=int, default=16, help="channels of the first block")
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--val-fold", type=int, default=0, help="group fold held apart for choices")
    tc.add_argument("--threads", type=int, default=2)
    tc.add_argument("--version", default="mask-cls-v1", help="bk_model_version")
    tc.add_argument("--time-limit-s", type=float, default=900.0, help="stop after this long")
    tc.add_argument(
        "--max-face-px", type=float, default=96.0, help="cached faces are shrunk to this height"
    )
    tc.add_argument(
        "--shrink-p", type=float, default=0.6, help="share of crops shrunk to 12-40 px faces"
    )
    tc.set_defaults(handler=_cmd_train_classifier)

    q = sub.add_parser(
        "quantize", help="ONNX -> INT8 ONNX (static, QDQ) for CPUs with 8-bit dot products"
    )
    q.add_argument("--onnx", required=True, help="a plain float export (fixed input size)")
    q.add_argument("--out", required=True)
    q.add_argument(
        "--images",
        required=True,
        help="training-side images to calibrate on (never the held-out set)",
    )
    q.add_argument("--calibration-images", type=int, default=100)
    q.add_argument(
        "--method",
        choices=("percentile", "minmax"),
        default="percentile",
        help="how activation ranges are read from the calibration images",
    )
    q.add_argument("--version", default=None, help="new bk_model_version (default: keep)")
    q.add_argument(
        "--head-convs-float",
        action="store_true",
        help="keep the Detect head's convolutions in float too (slower, closer scores)",
    )
    q.add_argument(
        "--full-range",
        action="store_true",
        help="8-bit weights: only for boxes with VNNI or an ARM dot-product unit (x86 CPUs "
        "without VNNI clip them; the default 7-bit weights compute the same everywhere)",
    )
    q.set_defaults(handler=_cmd_quantize)

    r = sub.add_parser(
        "recover", help="shipped ONNX -> trainable checkpoint (to fine-tune without the run)"
    )
    r.add_argument("--onnx", default="models/weights/mask_yolo.onnx")
    r.add_argument("--out", default="runs/recovered/mask_yolo.pt")
    r.add_argument("--images", required=True, help="training-like images for BatchNorm statistics")
    r.add_argument("--cfg", default="yolov5n.yaml", help="architecture the ONNX came from")
    r.add_argument("--calibration-images", type=int, default=64)
    r.set_defaults(handler=_cmd_recover)

    c = sub.add_parser("calibrate-boards", help="learn board HSV ranges from labelled crops")
    c.add_argument("--crops", required=True, help="folder with <board_type>/*.jpg crops")
    c.add_argument("--out", default="board_colours.yaml")
    c.add_argument("--min-fraction", type=float, default=0.2)
    c.set_defaults(handler=_cmd_calibrate)

    s = sub.add_parser("synth-boards", help="render SYNTHETIC board stations (VOC)")
    s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(handler=_cmd_synth)
