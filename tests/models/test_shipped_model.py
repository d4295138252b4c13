"""The shipped mask model: in the repo, small, loadable by the edge runtime, with its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.detect.onnx import DEFAULT_MODEL_PATH, OnnxDetector

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"


def test_shipped_model_is_the_edge_default_and_loads() -> None:
    onnx_path = WEIGHTS / "mask_yolo.onnx"
    assert DEFAULT_MODEL_PATH.resolve() == onnx_path.resolve()
    assert onnx_path.stat().st_size < 15 * 1024 * 1024
    det = OnnxDetector()
    assert det.class_names == ["with_mask", "without_mask", "mask_weared_incorrect"]
    assert det.input_size == (800, 800)
    assert det.model_version.startswith("mask-")
    blank = np.full((480, 640, 3), 114, np.uint8)
    assert len(det.detect([blank])[0]) == 0


def test_metrics_file_matches_the_model_metadata() -> None:
    metrics = json.loads((WEIGHTS / "mask_yolo.metrics.json").read_text())
    det = OnnxDetector()
    assert metrics["model_version"] == det.model_version
    assert metrics["conf_threshold"] == det.info.conf_threshold
    assert 0 < metrics["map50"] <= 1
    names = [c["name"] for c in metrics["classes"]]
    assert names == det.class_names
    assert (WEIGHTS.parent / "MODEL_CARD.md").is_file()
