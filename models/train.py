"""Train a detector with ultralytics, offline, on CPU or GPU, resumable."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from models.offline import disable_sync, setup_offline
from models.train_transforms import install as install_transforms

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """What one training run needs; defaults suit the mask detector on a GPU."""

    data: Path
    start: str = "yolov5n.yaml"
    imgsz: int = 640
    epochs: int = 100
    batch: int = 16
    device: str = "auto"
    workers: int = 2
    project: Path = Path("runs/train")
    name: str = "mask"
    resume: bool = False
    time_h: float | None = None
    seed: int = 0
    patience: int = 50
    cache: bool = False
    threads: int | None = None
    camera_augment: float = 0.0  # probability of each camera fault (models.camera_augment)
    face_paste: float = 0.0  # probability an image gets pasted faces (models.face_paste)
    paste_classes: tuple[str, ...] = ("mask_weared_incorrect",)
    extra: tuple[tuple[str, Any], ...] = ()


def absolute_data_yaml(data: Path, out_dir: Path) -> Path:
    """Copy a dataset YAML with its ``path`` made absolute (ultralytics' relative rule differs)."""
    spec = yaml.safe_load(data.read_text(encoding="utf-8"))
    base = Path(spec.get("path") or ".")
    spec["path"] = str((data.parent / base).resolve()) if not base.is_absolute() else str(base)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{data.parent.name}_data.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return out


def pick_device(device: str) -> str:
    """``auto`` → first CUDA GPU if there is one, else CPU."""
    if device != "auto":
        return device
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def keep_architecture_trainer() -> Any:
    """A detection trainer that fine-tunes an earlier model of ours as it is.

    ultralytics rebuilds the network from its YAML with the dataset's class count and copies
    the tensors whose shapes match. A model first built for 80 COCO classes keeps an 80-wide
    classification branch in its head while predicting our 3 classes (see
    ``models.recover.build_model``); the rebuild would make that branch 64 wide and start it
    from random weights. When the start model already predicts the dataset's classes, this
    trainer trains that very network instead.
    """
    from ultralytics.models.yolo.detect import DetectionTrainer

    class KeepArchitectureTrainer(DetectionTrainer):
        def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
            names = getattr(weights, "names", None)
            if weights is not None and names is not None and len(names) == self.data["nc"]:
                logger.info("fine-tuning the start model as it is (%d classes)", len(names))
                return weights
            return super().get_model(cfg, weights, verbose)

    return KeepArchitectureTrainer


def _extra_transforms(opts: TrainOptions) -> list[Any]:
    """Our transforms in the order they must run: pasted faces first, then camera faults."""
    out: list[Any] = []
    if opts.face_paste:
        from models.face_paste import from_dataset

        out.append(from_dataset(opts.data, opts.paste_classes, opts.face_paste))
    if opts.camera_augment:
        from models.camera_augment import CameraDegradation

        out.append(CameraDegradation(opts.camera_augment))
    return out


def train(opts: TrainOptions) -> Path:
    """Run (or resume) training and return the best weights file."""
    setup_offline()
    import torch
    from ultralytics import YOLO  # type: ignore[attr-defined]

    disable_sync()
    threads = opts.threads or os.cpu_count() or 1
    install_transforms(_extra_transforms(opts))

    def _threads(_trainer: Any) -> None:
        torch.set_num_threads(threads)  # ultralytics otherwise trains on 1 thread on CPU

    project = opts.project.resolve()
    last = project / opts.name / "weights" / "last.pt"
    if opts.resume:
        if not last.is_file():
            raise FileNotFoundError(f"nothing to resume: {last} does not exist")
        model: Any = YOLO(str(last))
        model.add_callback("on_pretrain_routine_start", _threads)
        model.train(resume=True, trainer=keep_architecture_trainer())
    else:
        data = absolute_data_yaml(opts.data, project / "_data")
        model = YOLO(opts.start)
        model.add_callback("on_pretrain_routine_start", _threads)
        kwargs: dict[str, Any] = {
            "data": str(data),
            "imgsz": opts.imgsz,
            "epochs": opts.epochs,
            "batch": opts.batch,
            "device": pick_device(opts.device),
            "workers": opts.workers,
            "project": str(project),
            "name": opts.name,
            "exist_ok": True,
            "seed": opts.seed,
            "deterministic": False,
            "patience": opts.patience,
            "cache": "ram" if opts.cache else False,
            "plots": False,
            "amp": pick_device(opts.device) != "cpu",
            "verbose": True,
        }
        if opts.time_h:
            kwargs["time"] = opts.time_h
        kwargs.update(dict(opts.extra))
        model.train(trainer=keep_architecture_trainer(), **kwargs)
    best = project / opts.name / "weights" / "best.pt"
    return best if best.is_file() else last
