"""Rebuild a trainable ultralytics checkpoint from a shipped ONNX detector.

Why: a site, or the next engineer, gets the ONNX file, not the training run. Fine-tuning on a
site's own labelled frames (or continuing our own training when the run folder is gone) needs
a ``.pt`` to start from. The ONNX holds every weight, but with each BatchNorm folded into the
convolution before it (``W_f = W·γ/σ``, ``b_f = β − μ·γ/σ``), and the fold cannot be undone
exactly: only the products survive. We do not need the originals, only a network that computes
the same function *and trains well*:

- the convolution keeps ``W_f``;
- its BatchNorm gets the running mean ``m`` and variance ``v`` of ``W_f·x`` measured on real
  training images, ``γ = sqrt(v + eps)`` and ``β = b_f + m``.

In eval mode that BatchNorm computes ``(W_f·x − m)/sqrt(v+eps)·sqrt(v+eps) + b_f + m =
W_f·x + b_f`` exactly, so the checkpoint reproduces the ONNX (checked before it is written). In
train mode BatchNorm uses batch statistics, which are close to ``m`` and ``v`` because they were
measured on the same kind of images, so fine-tuning starts from the shipped model instead of
from a network whose activations were suddenly renormalised.

An INT8 file (``models quantize``) keeps each weight as an 8-bit integer and a per-channel
scale, and each bias as a 32-bit integer and a scale; ``DequantizeLinear`` gives the float
weights back, rounded to 7 or 8 bits per output channel. That is close enough to fine-tune from
(the quantized file itself runs on those very weights), but not the float file it was made
from, so the check against such a file compares its confident anchors at the quantizer's own
tolerance instead of every output bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.offline import disable_sync, setup_offline

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True, slots=True)
class RecoverResult:
    """What ``recover`` wrote and how closely the checkpoint matches the ONNX file."""

    path: Path
    tensors: int
    calibration_images: int
    max_abs_diff_boxes_px: float
    max_abs_diff_scores: float
    from_int8: bool = False  # weights dequantized; the diffs are means on the strongest anchors


QUANTIZED_SUFFIX = "_quantized"  # ONNX Runtime's name for an integer copy of a weight
# An INT8 file agrees with the float network on its strongest anchors within these (the
# quantizer's own tests: 1-1.5 px and < 0.01 measured on the edge model).
INT8_BOX_TOLERANCE_PX = 4.0
INT8_SCORE_TOLERANCE = 0.05
INT8_CHECK_ANCHORS = 20


def onnx_weights(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """Every float weight of an ONNX file by name, integer ones dequantized.

    In a QDQ file (``models quantize``) a convolution's weight ``W`` is stored as
    ``W_quantized`` (int8) with ``W_scale`` and ``W_zero_point`` feeding a
    ``DequantizeLinear``; it comes back as ``W = (q - zero_point) * scale`` along the node's
    axis, under its original name.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    raw = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    out = {
        name: value.astype(np.float32)
        for name, value in raw.items()
        if value.dtype in (np.float32, np.float16)
    }
    for node in model.graph.node:
        name = node.input[0] if node.input else ""
        if node.op_type != "DequantizeLinear" or not name.endswith(QUANTIZED_SUFFIX):
            continue
        if name not in raw or node.input[1] not in raw:
            continue
        q = raw[name].astype(np.float64)
        scale = raw[node.input[1]].astype(np.float64)
        zero = raw[node.input[2]].astype(np.float64) if len(node.input) > 2 else np.zeros(1)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.ndim and q.ndim:
            shape[axis % q.ndim] = -1
        weight = (q - zero.reshape(shape if zero.ndim else [])) * scale.reshape(
            shape if scale.ndim else []
        )
        out[name[: -len(QUANTIZED_SUFFIX)]] = weight.astype(np.float32)
    return out


def compare_strongest_anchors(
    model: Any, onnx_path: Path, x: npt.NDArray[np.float32], anchors: int = INT8_CHECK_ANCHORS
) -> tuple[float, float]:
    """Mean |diff| of the boxes (px) and of the class scores on each image's ``anchors``
    highest-scoring anchors of the ONNX file (the worst image's): what an INT8 file must keep
    of its network. Means, because one uint8 step of a logit moves a mid-range score by
    up to ~0.1 on its own, while wrong weights move every anchor by tens of pixels.

    The file runs with graph optimisation off, so each QuantizeLinear / DequantizeLinear pair
    is computed as written (in float) instead of being fused into this CPU's integer kernels:
    the check is of the file's own function, not of a CPU that may saturate 8-bit weights
    (``edge.detect.cpu_int8``)."""
    from models.export import paired_outputs

    got, ref_np = paired_outputs(model, onnx_path, x, optimise=False)
    d_box, d_score = 0.0, 0.0
    for g, r in zip(got, ref_np, strict=True):
        top = np.argsort(g[4:].max(axis=0))[-anchors:]
        d_box = max(d_box, float(np.abs(g[:4, top] - r[:4, top]).mean()))
        d_score = max(d_score, float(np.abs(g[4:, top] - r[4:, top]).mean()))
    return d_box, d_score


def calibration_batch(images: Iterable[Path], imgsz: int, limit: int) -> npt.NDArray[np.float32]:
    """Up to ``limit`` images letterboxed to ``imgsz`` as one NCHW float batch in [0, 1]."""
    import cv2

    from edge.detect.onnx import letterbox

    out: list[npt.NDArray[np.float32]] = []
    for path in images:
        if len(out) >= limit:
            break
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            logger.warning("calibration: cannot read %s, skipped", path)
            continue
        chw, _, _, _ = letterbox(np.asarray(img, np.uint8), (imgsz, imgsz))
        out.append(chw)
    if not out:
        raise ValueError("no readable calibration images")
    return np.stack(out)


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` in a stable order (sorted paths)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration image folder {folder} does not exist")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def build_model(cfg: str, names: Sequence[str], head_width: int | None = None) -> Any:
    """An untrained ultralytics DetectionModel of ``cfg`` with ``len(names)`` classes.

    ``head_width``: the width of the classification branch of the head in the ONNX file. It
    follows ``max(P3 channels, min(nc, 100))`` where ``nc`` is the class count the network was
    *built* with; a model fine-tuned from an 80-class start keeps 80 there while predicting 3
    classes, so we build with that width and give the last convolutions ``len(names)`` outputs.
    """
    import torch
    from ultralytics.nn.tasks import DetectionModel

    nc = len(names)
    factory: Any = DetectionModel
    model: Any = factory(cfg, nc=nc, verbose=False)
    head: Any = model.model[-1]
    if head_width is not None and head.cv3[0][0].conv.out_channels != head_width:
        model = factory(cfg, nc=head_width, verbose=False)
        head = model.model[-1]
        if head.cv3[0][0].conv.out_channels != head_width:
            raise ValueError(
                f"{cfg} cannot have a classification head {head_width} wide: the ONNX file "
                "is of a different architecture"
            )
        for branch in head.cv3:
            last = branch[-1]
            branch[-1] = torch.nn.Conv2d(last.in_channels, nc, 1)
        head.nc = nc
        head.no = nc + head.reg_max * 4
        model.nc = nc
        model.yaml["nc"] = nc
    model.names = dict(enumerate(names))
    return model


def conv_bn_blocks(model: Any) -> Iterator[tuple[str, Any, Any]]:
    """(name, Conv2d, BatchNorm2d) of every ultralytics ``Conv`` block: what export folds."""
    import torch

    for name, module in model.named_modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            yield name, conv, bn


def load_folded(model: Any, tensors: dict[str, npt.NDArray[np.float32]]) -> int:
    """Copy the folded weights into ``model``: conv ← W_f, BatchNorm ← identity with β = b_f.

    Returns the number of ONNX tensors used. Raises if any layer of the model is left without
    a weight (the ONNX is of a different architecture).
    """
    import torch

    used = 0
    folded: set[str] = set()
    with torch.no_grad():
        for name, conv, bn in conv_bn_blocks(model):
            _copy(conv.weight, tensors, f"{name}.conv.weight")
            _copy(bn.bias, tensors, f"{name}.conv.bias")
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            folded.add(f"{name}.conv")
            used += 2
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Conv2d) and name not in folded:
                _copy(module.weight, tensors, f"{name}.weight")
                used += 1
                if module.bias is not None:
                    _copy(module.bias, tensors, f"{name}.bias")
                    used += 1
    return used


def _copy(param: Any, tensors: dict[str, npt.NDArray[np.float32]], key: str) -> None:
    """``param`` ← ``tensors[key]``, with errors that name the layer."""
    import torch

    value = tensors.get(key)
    if value is None:
        raise ValueError(f"the ONNX file has no tensor {key} (different architecture?)")
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(
            f"{key}: ONNX {tuple(value.shape)} != model {tuple(param.shape)} "
            "(different architecture or class count)"
        )
    param.copy_(torch.from_numpy(value))


def calibrate_batchnorm(model: Any, batch: npt.NDArray[np.float32]) -> None:
    """Give every folded BatchNorm the statistics of its convolution's output on ``batch``.

    The model must hold identity BatchNorms (``load_folded``): its eval output is then the
    ONNX's, so one eval pass sees every convolution's true input.
    """
    import torch

    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _hook(mod: torch.nn.Module, _inp: Any, out: torch.Tensor) -> None:
        flat = out.detach().transpose(0, 1).reshape(out.shape[1], -1).double()
        stats[id(mod)] = (flat.mean(dim=1), flat.var(dim=1, unbiased=False))

    pairs = [(conv, bn) for _, conv, bn in conv_bn_blocks(model)]
    hooks = [conv.register_forward_hook(_hook) for conv, _ in pairs]
    model.eval()
    try:
        with torch.no_grad():
            model(torch.from_numpy(batch))
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for conv, bn in pairs:
            mean, var = stats[id(conv)]
            b_f = bn.bias.detach().double().clone()
            running: Any = bn
            running.running_mean.copy_(mean.float())
            running.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((b_f + mean).float())


def recover(
    onnx_path: Path,
    out: Path,
    *,
    images: Path,
    cfg: str = "yolov5n.yaml",
    calibration_images: int = 64,
    box_tolerance_px: float = 0.5,
    score_tolerance: float = 5e-3,
) -> RecoverResult:
    """Write ``out``: an ultralytics checkpoint that computes what ``onnx_path`` computes.

    ``images``: a folder of training-like images for the BatchNorm statistics (the dataset's
    ``images/train``). ``cfg``: the architecture the ONNX was exported from. A file with
    mirror averaging built in (``models.mirror_average``) gives the plain network, checked
    through the same averaging; ``export --mirror-average`` puts it back. An INT8 file gives
    the network on its dequantized weights, checked on its strongest anchors (module doc).
    """
    setup_offline()
    import torch

    from edge.detect.onnx import OnnxDetector
    from models.export import compare_model_outputs, read_metadata, require_agreement
    from models.mirror_average import TTA_VALUE, torch_mirror_average
    from models.quantize import QUANT_KEY

    disable_sync()
    quantized = read_metadata(onnx_path).get(QUANT_KEY)
    if quantized:
        logger.warning(
            "%s is quantized (%s): its weights come back rounded to 7 or 8 bits; recover the "
            "float export it was made from where you still have it",
            onnx_path,
            quantized,
        )
    shipped = OnnxDetector(onnx_path, threads=1)  # names, input size, batch: as the box reads them
    imgsz = shipped.input_size[0]
    tensors = onnx_weights(onnx_path)
    width = next((v for k, v in tensors.items() if k.endswith(".cv3.0.0.conv.weight")), None)
    model = build_model(cfg, shipped.class_names, None if width is None else int(width.shape[0]))
    used = load_folded(model, tensors)
    batch = calibration_batch(list_images(images), imgsz, calibration_images)
    calibrate_batchnorm(model, batch)
    check = batch[: 4 if shipped.info.dynamic_batch else 1]
    reference = model
    if shipped.info.augmentation == TTA_VALUE:  # the file runs the network on x and its mirror
        reference = torch_mirror_average(model, imgsz, shipped.input_size[1])
        logger.info(
            "%s has mirror averaging built in; the checkpoint is the plain network", onnx_path
        )
    if quantized:
        d_box, d_score = compare_strongest_anchors(reference, onnx_path, check)
        box_tolerance_px = max(box_tolerance_px, INT8_BOX_TOLERANCE_PX)
        score_tolerance = max(score_tolerance, INT8_SCORE_TOLERANCE)
    else:
        d_box, d_score = compare_model_outputs(reference, onnx_path, check)
    logger.info(
        "checkpoint vs ONNX: %s |diff| boxes %.4f px, scores %.6f",
        "mean (strongest anchors)" if quantized else "max",
        d_box,
        d_score,
    )
    require_agreement(
        f"the rebuilt checkpoint differs from {onnx_path}",
        d_box,
        d_score,
        box_tolerance_px,
        score_tolerance,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    version = shipped.model_version
    torch.save(
        {
            "model": model.float(),
            "ema": None,
            "train_args": {"imgsz": imgsz},
            "epoch": -1,
            "bk_recovered_from": version,
        },
        out,
    )
    return RecoverResult(out, used, len(batch), d_box, d_score, from_int8=bool(quantized))
