"""Which detector the demo's edge box loads: the shipped mask model, or a placeholder.

The demo uses the edge box's default model (``edge.settings.DEFAULT_MODEL_PATH``, the
shipped mask model exported for 320 px crops; ``BK_EDGE_MODEL_PATH`` overrides it).
Until it exists the demo writes a placeholder: a valid ONNX graph in
the ultralytics export layout, with the mask classes in its metadata, that never
detects anything. The cutting-board rule judges board colours at fixed stations and
needs no detections, so the demo's violations still arrive; ``no_mask`` stays silent.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge.settings import DEFAULT_MODEL_PATH

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = DEFAULT_MODEL_PATH
MASK_CLASSES = ("with_mask", "without_mask", "mask_weared_incorrect")
PLACEHOLDER_VERSION = "placeholder-no-detections-1"


def write_placeholder_model(path: Path, imgsz: int = 320) -> Path:
    """Write an ONNX detector (input (B,3,imgsz,imgsz), output (B,4+nc,1)) that finds nothing."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nc = len(MASK_CLASSES)
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, imgsz, imgsz])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + nc, 1])
    inits = [
        numpy_helper.from_array(np.zeros((4 + nc, 3, 1, 1), np.float32), "w"),
        numpy_helper.from_array(np.array([0, 4 + nc, 1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Conv", ["pooled", "w"], ["zeros"]),
        helper.make_node("Reshape", ["zeros", "shape"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "placeholder_no_detections", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "names": repr(dict(enumerate(MASK_CLASSES))),
        "imgsz": repr([imgsz, imgsz]),
        "bk_model_version": PLACEHOLDER_VERSION,
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def demo_model_path(cache_dir: Path) -> tuple[Path, str]:
    """The model the demo's edge box uses and a note saying which: env, shipped or placeholder."""
    env = os.environ.get("BK_EDGE_MODEL_PATH")
    if env:
        return Path(env), f"model {env} (BK_EDGE_MODEL_PATH)"
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL, f"model {SHIPPED_MODEL.relative_to(REPO_ROOT)} (shipped)"
    path = cache_dir / "placeholder.onnx"
    if not path.is_file():
        write_placeholder_model(path)
    return path, (
        f"model: placeholder {path} (no {SHIPPED_MODEL.relative_to(REPO_ROOT)} yet: "
        "board colours still work, no_mask finds nothing)"
    )
