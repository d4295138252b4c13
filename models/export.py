"""Export trained weights to the ONNX file the edge box loads, with our metadata, and check it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bkcommon.errors import ModelError
from models.offline import disable_sync, setup_offline

logger = logging.getLogger(__name__)

# ONNX Runtime >= 1.14 (any edge box image we support) runs opset 17.
DEFAULT_OPSET = 17
BK_KEYS = ("bk_model_version", "bk_conf_threshold", "bk_iou_threshold", "bk_task")


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The written file and how closely ONNX Runtime matched the framework."""

    path: Path
    max_abs_diff_boxes_px: float
    max_abs_diff_scores: float
    size_bytes: int


def set_metadata(model: Any, meta: dict[str, str]) -> None:
    """Add or replace ``metadata_props`` entries of a loaded ONNX model."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in meta.items():
        if key in existing:
            existing[key].value = value
        else:
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value


def add_metadata(path: Path, meta: dict[str, str]) -> None:
    """Add or replace ``metadata_props`` entries of an ONNX file in place."""
    import onnx

    model = onnx.load(str(path))
    set_metadata(model, meta)
    onnx.save(model, str(path))


def require_agreement(
    what: str, d_box: float, d_score: float, box_tolerance_px: float, score_tolerance: float
) -> None:
    """Raise ModelError when two computations of one model differ beyond the tolerances."""
    if d_box > box_tolerance_px or d_score > score_tolerance:
        raise ModelError(
            f"{what}: boxes {d_box:.4f} px (limit {box_tolerance_px}), "
            f"scores {d_score:.2e} (limit {score_tolerance})"
        )


def fix_spatial_dims(path: Path, imgsz: int) -> None:
    """Pin the height and width of a dynamic export to ``imgsz`` (batch stays dynamic)."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d in (dims[2], dims[3]):
        d.ClearField("dim_param")
        d.dim_value = imgsz
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def read_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def compare_outputs(
    weights: Path, onnx_path: Path, imgsz: int, seed: int = 0
) -> tuple[float, float]:
    """Run the framework model and ONNX Runtime on one input; return max |diff| (boxes, scores)."""
    import numpy as np
    from ultralytics import YOLO  # type: ignore[attr-defined]

    rng = np.random.default_rng(seed)
    x = rng.random((1, 3, imgsz, imgsz), dtype=np.float32)
    yolo: Any = YOLO(str(weights))
    return compare_model_outputs(yolo.model.float(), onnx_path, x)


def paired_outputs(
    model: Any, onnx_path: Path, x: Any, *, optimise: bool = True
) -> tuple[Any, Any]:
    """(ONNX Runtime's, the framework model's in eval mode) outputs on ``x``, same shape.

    ``optimise=False`` runs the file as written: QuantizeLinear / DequantizeLinear pairs are
    computed in float instead of being fused into this CPU's integer kernels."""
    import onnxruntime as ort
    import torch

    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    ref_np = (ref[0] if isinstance(ref, list | tuple) else ref).numpy()
    options = ort.SessionOptions()
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    if got.shape != ref_np.shape:
        raise ValueError(f"ONNX output {got.shape} != framework output {ref_np.shape}")
    return got, ref_np


def compare_model_outputs(model: Any, onnx_path: Path, x: Any) -> tuple[float, float]:
    """Max |diff| (boxes px, scores) of a framework model in eval mode and ONNX Runtime on ``x``."""
    import numpy as np

    got, ref = paired_outputs(model, onnx_path, x)
    diff = np.abs(got - ref)
    return float(diff[:, :4].max()), float(diff[:, 4:].max())


def export(
    weights: Path,
    out: Path,
    *,
    imgsz: int,
    version: str,
    conf_threshold: float,
    iou_threshold: float,
    task: str = "detect",
    opset: int = DEFAULT_OPSET,
    box_tolerance_px: float = 0.5,
    score_tolerance: float = 5e-3,
    dynamic_batch: bool = False,
    mirror: bool = False,
) -> ExportResult:
    """Export ``weights`` to ``out`` (fixed input size), add bk_* metadata, verify against torch.

    ``dynamic_batch`` makes only the batch axis dynamic (height and width stay fixed), so
    the edge box can run crops of several cameras in one ONNX Runtime call. ``mirror`` then
    builds mirror averaging into the file (``models.mirror_average``), checked against two
    passes of the verified plain export.
    """
    setup_offline()
    from ultralytics import YOLO  # type: ignore[attr-defined]

    disable_sync()
    model: Any = YOLO(str(weights))
    produced = Path(
        model.export(
            format="onnx",
            imgsz=imgsz,
            opset=opset,
            simplify=True,
            dynamic=dynamic_batch,
            half=False,
            device="cpu",
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if produced.resolve() != out.resolve():
        shutil.move(str(produced), out)
    if dynamic_batch:
        fix_spatial_dims(out, imgsz)
    add_metadata(
        out,
        {
            "bk_model_version": version,
            "bk_conf_threshold": f"{conf_threshold:g}",
            "bk_iou_threshold": f"{iou_threshold:g}",
            "bk_task": task,
        },
    )
    d_box, d_score = compare_outputs(weights, out, imgsz)
    logger.info("ONNX vs framework: max |diff| boxes %.4f px, scores %.5f", d_box, d_score)
    require_agreement(
        "ONNX Runtime output differs from the framework",
        d_box,
        d_score,
        box_tolerance_px,
        score_tolerance,
    )
    if mirror:
        from models.mirror_average import mirror_average

        plain = out.with_name(out.stem + ".plain.onnx")
        shutil.move(str(out), plain)
        try:
            mirror_average(plain, out)
        finally:
            plain.unlink(missing_ok=True)
    return ExportResult(out, d_box, d_score, out.stat().st_size)
