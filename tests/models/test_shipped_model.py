"""The shipped mask model: in the repo, small, loadable by the edge runtime, with its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.detect.onnx import DEFAULT_MODEL_PATH, OnnxDetector
from edge.settings import DEFAULT_MODEL_PATH as EDGE_WORKER_MODEL
from edge.settings import EdgeSettings
from models.export import read_metadata

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"


def test_reference_model_is_the_detector_default_and_loads() -> None:
    onnx_path = WEIGHTS / "mask_yolo.onnx"
    assert DEFAULT_MODEL_PATH.resolve() == onnx_path.resolve()
    assert onnx_path.stat().st_size < 15 * 1024 * 1024
    det = OnnxDetector()
    assert det.class_names == ["with_mask", "without_mask", "mask_weared_incorrect"]
    assert det.input_size == (800, 800)
    assert det.model_version.startswith("mask-")
    blank = np.full((480, 640, 3), 114, np.uint8)
    assert len(det.detect([blank])[0]) == 0


def test_edge_worker_loads_the_shipped_int8_model_by_default() -> None:
    path = WEIGHTS / "mask_yolo_edge.onnx"
    assert EDGE_WORKER_MODEL.resolve() == path.resolve()
    assert EdgeSettings().model_path.resolve() == path.resolve()
    assert path.stat().st_size < 15 * 1024 * 1024
    det = OnnxDetector(EDGE_WORKER_MODEL)
    assert det.class_names == ["with_mask", "without_mask", "mask_weared_incorrect"]
    assert det.input_size == (416, 416)
    # 7-bit weights: the file computes the same on CPUs with and without VNNI
    # (edge.detect.cpu_int8); 8-bit ones saturate on the latter
    assert read_metadata(path)["bk_quantized"].startswith("int8 qdq static, per-channel 7-bit")
    crops = [np.full((160, 160, 3), 114, np.uint8)] * 3  # a batch of crops, as the box runs it
    assert [len(d) for d in det.detect(crops)] == [0, 0, 0]


@pytest.mark.parametrize("name", ["mask_yolo", "mask_yolo_edge", "mask_yolo_320"])
def test_metrics_file_matches_the_model_metadata(name: str) -> None:
    metrics = json.loads((WEIGHTS / f"{name}.metrics.json").read_text())
    det = OnnxDetector(WEIGHTS / f"{name}.onnx")
    assert metrics["model"] == f"models/weights/{name}.onnx"
    assert metrics["model_version"] == det.model_version
    assert metrics["conf_threshold"] == det.info.conf_threshold
    assert list(metrics["input_size"]) == list(det.input_size)
    assert 0 < metrics["map50"] <= 1
    names = [c["name"] for c in metrics["classes"]]
    assert names == det.class_names
    assert (WEIGHTS.parent / "MODEL_CARD.md").is_file()


def test_model_card_quotes_the_shipped_metrics_file() -> None:
    """The card's validation-split table is the metrics file rounded (they cannot drift)."""
    metrics = json.loads((WEIGHTS / "mask_yolo.metrics.json").read_text())
    card = (WEIGHTS.parent / "MODEL_CARD.md").read_text()
    assert card.splitlines()[0] == f"# Model card: mask detector `{metrics['model_version']}`"
    section = card.split("## Secondary: metrics of v4 on the recipe's validation split", 1)[1]
    section = section.split("\n\n")[1]  # first table
    rows = {
        cells[0].strip("* "): cells[1:]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| class")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for cls in metrics["classes"]:
        expected = [
            str(cls["instances"]),
            *(f"{cls[k]:.3f}" for k in ("ap50", "ap50_95", "precision", "recall")),
        ]
        assert rows[cls["name"]] == expected
    assert rows["all"][1:3] == [f"**{metrics['map50']:.3f}**", f"**{metrics['map50_95']:.3f}**"]


def test_model_card_headline_quotes_the_held_out_estimate() -> None:
    """The headline rows are the estimate files rounded, intervals included, and the
    sentence on the edge default's bar follows from them (the edge default's own file,
    ``estimate_edge.json``, and the reference's, ``estimate.json``)."""
    card_dir = WEIGHTS.parent / "card"
    card = (WEIGHTS.parent / "MODEL_CARD.md").read_text()
    headline = card.split("## Headline:", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for file, weights, marker in (
        ("estimate_edge.json", "mask_yolo_edge.onnx", "**edge default**"),
        ("estimate.json", "mask_yolo.onnx", "reference"),
    ):
        est = json.loads((card_dir / file).read_text())
        r = est["models"][f"models/weights/{weights}"]["heldout:masks/kaggle853"]
        rows[weights] = r
        wm = next(c for c in r["classes"] if c["name"] == "without_mask")
        row = next(ln for ln in headline.splitlines() if ln.startswith(f"| {marker}"))

        for value, key in ((r["map50"], "map50"), (wm["recall"], "recall_without_mask")):
            lo, hi = r["ci"][key]
            assert f"{value:.3f}" in row
            assert f"[{lo:.2f}, {hi:.2f}]" in row
        assert f"{wm['precision']:.3f}" in row
    edge = rows["mask_yolo_edge.onnx"]
    recall = next(c for c in edge["classes"] if c["name"] == "without_mask")["recall"]
    meets = edge["map50"] >= 0.80 and recall >= 0.85
    assert ("**The edge default does not meet the bar**" in headline) is not meets
