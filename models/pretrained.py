"""Start our detectors from the COCO-pretrained YOLOv5n (backbone and neck) in a safe way.

The released ``yolov5n.pt`` is a pickle of the old yolov5 code base, so ``ultralytics`` refuses
it. We check its sha256, unpickle it with stand-in classes for the old ``models.*``/``utils.*``
modules, and copy every tensor whose name and shape match ``ultralytics``' ``yolov5n.yaml``
(342 of 349: layers 0-23) into a fresh model, saved as a normal ultralytics checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import types
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

YOLOV5N_COCO_SHA256 = "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3"
DEFAULT_COCO_WEIGHTS = Path("../shared/weights/yolov5n-coco.pt")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_yolov5_state(path: Path, expected_sha256: str = YOLOV5N_COCO_SHA256) -> dict[str, Any]:
    """Return the float32 state dict of an old-yolov5 pickle after checking its sha256."""
    import torch

    digest = sha256_file(path)
    if digest != expected_sha256:
        raise ValueError(f"{path}: sha256 {digest} is not the expected {expected_sha256}")

    class _Stub(torch.nn.Module):
        """Stands in for any class of the old yolov5 code base."""

        def __setstate__(self, state: dict[str, Any]) -> None:
            torch.nn.Module.__init__(self)
            self.__dict__.update(state)

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module.split(".", maxsplit=1)[0] in {"models", "utils"}:
                return _Stub
            return super().find_class(module, name)

    shim = types.ModuleType("bk_yolov5_pickle")
    shim.Unpickler = _Unpickler  # type: ignore[attr-defined]
    shim.load = pickle.load  # type: ignore[attr-defined]
    ckpt = torch.load(path, map_location="cpu", pickle_module=shim, weights_only=False)
    model = ckpt.get("ema") or ckpt["model"]
    state = model.state_dict()
    names = getattr(model, "names", None)
    out = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if names is not None:
        out["__names__"] = names
    return out


def build_start_checkpoint(out: Path, coco_weights: Path = DEFAULT_COCO_WEIGHTS) -> int:
    """Write an ultralytics YOLOv5n checkpoint with COCO backbone+neck; return tensors copied."""
    import torch
    from ultralytics import YOLO  # type: ignore[attr-defined]

    state = load_yolov5_state(coco_weights)
    coco_names = state.pop("__names__", None)
    yolo: Any = YOLO("yolov5n.yaml")
    target = yolo.model.state_dict()
    matched = {k: v for k, v in state.items() if k in target and target[k].shape == v.shape}
    target.update(matched)
    yolo.model.load_state_dict(target)
    if isinstance(coco_names, list | tuple):
        yolo.model.names = dict(enumerate(coco_names))
    elif isinstance(coco_names, dict):
        yolo.model.names = coco_names
    out.parent.mkdir(parents=True, exist_ok=True)
    yolo.ckpt = {"model": yolo.model, "train_args": {}}
    torch.save(
        {"model": yolo.model.half(), "ema": None, "train_args": {}, "epoch": -1},
        out,
    )
    logger.info("start checkpoint %s: %d of %d tensors from COCO", out, len(matched), len(target))
    return len(matched)
