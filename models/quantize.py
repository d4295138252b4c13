"""Static INT8 quantization of a detector export, so a larger input fits the edge budget.

The edge box's CPU time per analysed region is the budget (≤ 15 ms). On CPUs with 8-bit
dot-product instructions (AVX512-VNNI / AVX-VNNI, ARM dot-product) ONNX Runtime runs
quantized convolutions 1.5-2× faster than float ones, which buys a larger input (more
pixels per face) for the same time; what that costs in accuracy is measured by
``models evaluate`` / ``models estimate`` on the quantized file like any other.

The file is ordinary ONNX in QDQ form (QuantizeLinear / DequantizeLinear pairs around each
convolution): ONNX Runtime fuses the pairs into integer kernels at load time, every other
runtime still runs it. Weights are int8 per output channel, activations uint8 with ranges
from calibration images (letterboxed exactly as the box letterboxes a crop). The Detect
head's decoding (distribution-to-box, sigmoid, concatenations) stays float: boxes are in
input pixels and a uint8 there would quantize them to whole pixels of a 256-step range.

Weights use 7 of the 8 bits by default (``reduce_range``). Without VNNI, an x86 CPU (AVX2,
plain AVX-512: most edge boxes' Celerons, Pentiums, older Cores, AMD before Zen 4) multiplies
uint8 activations by int8 weights with an instruction that adds pairs of products into a
*saturating* int16, and 255·127·2 overflows it: the convolution's result is silently clipped
and the detections change with the CPU the file runs on (measured on such a CPU: val mAP50
0.843 against 0.900 for the same weights in float). With 7-bit weights a pair of products fits
(255·63·2 < 32767), so the file computes the same on every CPU; ``full_range`` is only for
boxes known to have VNNI or an ARM dot-product unit.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bkcommon.errors import ModelError

logger = logging.getLogger(__name__)

QUANT_KEY = "bk_quantized"
# How activation ranges are read from the calibration images: ONNX Runtime's calibrator of
# that name. Percentile (99.999 %) was chosen for the edge model on the val fold; min-max is
# the plain alternative. (Its entropy calibrator gave min-max's scales exactly here.)
METHODS = {"percentile": "Percentile", "minmax": "MinMax"}


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    """The written file and how far its outputs moved from the float model's."""

    path: Path
    calibration_images: int
    quantized_convs: int
    float_nodes: int
    size_bytes: int
    max_abs_diff_scores: float
    mean_abs_diff_scores: float


def head_prefix(graph: Any) -> str:
    """The name prefix of the last top-level module (``/model.N/``): ultralytics' Detect head."""
    numbers = []
    for node in graph.node:
        parts = node.name.split("/")
        if len(parts) > 2 and parts[1].startswith("model.") and parts[1][6:].isdigit():
            numbers.append(int(parts[1][6:]))
    if not numbers:
        raise ModelError("not an ultralytics export: no /model.N/ node names to find its head")
    return f"/model.{max(numbers)}/"


def float_nodes(graph: Any, *, head_convs_float: bool) -> list[str]:
    """Nodes left in float: the head's decoding, its DFL conv, and (optionally) its convs."""
    prefix = head_prefix(graph)
    keep = []
    for node in graph.node:
        if not node.name.startswith(prefix):
            continue
        decoding = node.op_type != "Conv" or "/dfl/" in node.name
        if decoding or head_convs_float:
            keep.append(node.name)
    return keep


class _Calibration:
    """ONNX Runtime's calibration reader over a fixed batch, one image per call."""

    def __init__(self, input_name: str, batch: npt.NDArray[np.float32]) -> None:
        self._items: Iterator[dict[str, npt.NDArray[np.float32]]] = iter(
            [{input_name: batch[i : i + 1]} for i in range(batch.shape[0])]
        )

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._items, None)


def _scores(path: Path, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Class scores (N, nc, anchors) of a file on ``batch``, one image at a time."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: batch[i : i + 1]})[0] for i in range(batch.shape[0])]
    return np.concatenate(outs)[:, 4:]


def quantize(
    src: Path,
    out: Path,
    *,
    images: Path,
    calibration_images: int = 100,
    version: str | None = None,
    head_convs_float: bool = False,
    method: str = "percentile",
    full_range: bool = False,
) -> QuantizeResult:
    """Write ``out``: ``src`` with its convolutions in INT8 (QDQ), calibrated on ``images``.

    ``images``: training-side images (never the held-out set, whose numbers the file is then
    judged by); every ``len/calibration_images``-th one is used, so the sample spans the
    folder. ``head_convs_float`` keeps the Detect head's convolutions in float as well (a
    little slower, closer scores). ``full_range``: 8-bit weights, exact only on CPUs with
    VNNI or ARM dot-product (module doc); the default 7-bit weights are right everywhere.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from models.export import set_metadata
    from models.recover import calibration_batch, list_images

    if method not in METHODS:
        raise ModelError(f"calibration method must be one of {sorted(METHODS)}, got {method!r}")
    if src.resolve() == out.resolve():
        raise ModelError("--out must differ from --onnx (the float model is the reference)")
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    if QUANT_KEY in meta:
        raise ModelError(f"{src} is already quantized ({meta[QUANT_KEY]})")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if not dims[2].dim_value or dims[2].dim_value != dims[3].dim_value:
        raise ModelError(f"{src}: input height and width must be fixed and equal")
    imgsz = int(dims[2].dim_value)
    keep_float = float_nodes(model.graph, head_convs_float=head_convs_float)
    paths = list_images(images)
    if not paths:
        raise ModelError(f"no images under {images} to calibrate on")
    step = max(1, len(paths) // max(1, calibration_images))
    batch = calibration_batch(paths[::step], imgsz, calibration_images)
    logger.info("calibrating on %d images from %s at %d px", batch.shape[0], images, imgsz)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bk-quantize-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Symbolic shape inference cannot follow a dynamic batch through the head's reshapes;
        # plain ONNX shape inference and graph optimisation are what the QDQ pass needs.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            _Calibration(model.graph.input[0].name, batch),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
            calibrate_method=getattr(CalibrationMethod, METHODS[method]),
            reduce_range=not full_range,
        )
    quantized = onnx.load(str(out))
    convs = sum(1 for n in quantized.graph.node if n.op_type == "Conv")
    q_convs = convs - sum(1 for n in keep_float if n.endswith("Conv"))
    bits = "8-bit (VNNI / ARM dot-product only)" if full_range else "7-bit"
    meta[QUANT_KEY] = (
        f"int8 qdq static, per-channel {bits} weights, {method} ranges "
        f"from {batch.shape[0]} calibration images"
    )
    if version:
        meta["bk_model_version"] = version
    set_metadata(quantized, meta)
    onnx.save(quantized, str(out))
    diff = np.abs(_scores(out, batch) - _scores(src, batch))
    return QuantizeResult(
        path=out,
        calibration_images=int(batch.shape[0]),
        quantized_convs=q_convs,
        float_nodes=len(keep_float),
        size_bytes=out.stat().st_size,
        max_abs_diff_scores=float(diff.max()),
        mean_abs_diff_scores=float(diff.mean()),
    )
